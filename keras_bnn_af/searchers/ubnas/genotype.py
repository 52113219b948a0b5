"""The discrete cell a search settles on, derived from α and β.

```python
genotype = derive(alphas, betas, ops, nodes=4)   # pure NumPy
genotype.to_json()  # {"nodes": 4, "normal": [["bconv_3x3", 0], ...], ...}
```

Derivation (DARTS, with PC-DARTS's edge normalisation): the weight of op `o`
on edge `i -> j` is `softmax(α_ij)_o * softmax(β_j)_i`. Node `j` keeps its two
strongest incoming edges, an edge's strength being its strongest op other
than `zero`, and each kept edge its strongest op other than `zero`.

**Collapse guard.** First-order DARTS drifts towards parameter-free ops (skip
and pooling) in normal cells as the search goes on: they train faster than
binary convs, so α favours them, and the derived cell loses its capacity
(DARTS+ and P-DARTS observe the same and cap skips at 2). `derive` keeps at
most `max_parameter_free` of them in a normal cell: above that, the weakest
ones give way to their edge's strongest binary conv. `capped` counts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from keras_bnn_af.searchers.ubnas.space import OPS, check_op, check_ops

__all__ = ["Genotype", "derive", "edge_count"]

#: Parameter-free ops a derived normal cell keeps at most, by default.
MAX_PARAMETER_FREE = 2


@dataclass(frozen=True)
class Genotype:
    """Two `(op, input)` pairs per node and cell type; inputs 0 and 1 are the
    cell's inputs, `k >= 2` is node `k - 2`. The cell's output concatenates all
    nodes. `capped`: parameter-free ops the collapse guard replaced."""

    nodes: int
    normal: tuple[tuple[str, int], ...]
    reduce: tuple[tuple[str, int], ...]
    capped: int = field(default=0, compare=False)

    def __post_init__(self):
        for kind in ("normal", "reduce"):
            pairs = tuple((op, _index(source)) for op, source in getattr(self, kind))
            object.__setattr__(self, kind, pairs)
            self._check(kind, pairs)

    def _check(self, kind: str, pairs) -> None:
        if len(pairs) != 2 * self.nodes:
            raise ValueError(
                f"Genotype {kind} cell has {len(pairs)} (op, input) pairs; expected "
                f"2 per node, {2 * self.nodes} for nodes={self.nodes}. Fix: give "
                "each node two inputs."
            )
        for index, (op, source) in enumerate(pairs):
            node = index // 2
            check_op(op)
            if op == "zero" or not 0 <= source < node + 2:
                raise ValueError(
                    f"Genotype {kind} node {node} has ({op!r}, {source}); expected "
                    f"an op other than 'zero' and an input in 0..{node + 1} (the "
                    "cell's two inputs, then earlier nodes). Fix: correct that pair."
                )

    def to_json(self) -> dict:
        return {
            "nodes": self.nodes,
            "normal": [list(pair) for pair in self.normal],
            "reduce": [list(pair) for pair in self.reduce],
            "capped": self.capped,
        }

    @classmethod
    def from_json(cls, data: dict) -> Genotype:
        try:
            return cls(
                int(data["nodes"]),
                tuple(map(tuple, data["normal"])),
                tuple(map(tuple, data["reduce"])),
                int(data.get("capped", 0)),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"Not a UBNAS genotype ({error!r}); expected "
                '{"nodes": N, "normal": [[op, input], ...], "reduce": [...]}. '
                "Fix: pass the genotype.json a `keras-bnn-af nas` run wrote."
            ) from None

    @classmethod
    def load(cls, path) -> Genotype:
        from pathlib import Path

        return cls.from_json(json.loads(Path(path).read_text()))

    def parameter_free(self, kind: str = "normal") -> int:
        return sum(OPS[op].parameter_free for op, _ in getattr(self, kind))


def edge_count(nodes: int) -> int:
    """Edges of a cell with `nodes` intermediate nodes: 2 + 3 + ... + (nodes + 1)."""
    return sum(index + 2 for index in range(nodes))


def _index(source) -> int:
    """An input index: an integer (NumPy's too), never a float or a bool."""
    if isinstance(source, bool) or not isinstance(source, (int, np.integer)):
        raise ValueError(
            f"Genotype input {source!r} is not an integer; expected the index of "
            "an input (0 and 1 the cell's inputs, k >= 2 node k - 2). Fix: "
            "write it as an integer."
        )
    return int(source)


def derive(
    alphas: dict,
    betas: dict,
    ops,
    nodes: int,
    max_parameter_free: int | None = MAX_PARAMETER_FREE,
) -> Genotype:
    """The genotype of α and β (`{"normal": array, "reduce": array}` each).

    # Arguments
        alphas: per cell type, `(edges, len(ops))` logits.
        betas: per cell type, `(edges,)` logits.
        ops: the op names α's columns stand for; must include `zero`.
        max_parameter_free: the collapse guard's cap in normal cells; None: no cap.
    """
    ops = check_ops(ops)
    if "zero" not in ops:
        raise ValueError(
            f"derive got ops {list(ops)} without 'zero'; the supernet's op list "
            "includes 'zero' (no edge). Fix: pass the ops the search ran with."
        )
    cells = {kind: _cell(alphas[kind], betas[kind], ops, nodes) for kind in alphas}
    normal, capped = _cap(cells["normal"], ops, max_parameter_free)
    return Genotype(nodes, normal, tuple(pair for pair, _ in cells["reduce"]), capped)


def _cell(alpha, beta, ops, nodes):
    """[((op, input), weights of that edge's ops)], two per node."""
    alpha, beta = np.asarray(alpha, np.float64), np.asarray(beta, np.float64)
    chosen, offset = [], 0
    zero = ops.index("zero")
    for node in range(nodes):
        incoming = node + 2
        weights = (
            _softmax(alpha[offset : offset + incoming])
            * _softmax(beta[offset : offset + incoming])[:, None]
        )
        weights[:, zero] = -np.inf
        strength = weights.max(axis=1)
        for source in sorted(np.argsort(-strength, kind="stable")[:2]):
            edge = weights[source]
            chosen.append(((ops[int(np.argmax(edge))], int(source)), edge))
        offset += incoming
    return chosen


def _cap(chosen, ops, limit):
    pairs = [pair for pair, _ in chosen]
    free = [i for i, (op, _) in enumerate(pairs) if OPS[op].parameter_free]
    if limit is None or len(free) <= limit:
        return tuple(pairs), 0
    convs = [index for index, op in enumerate(ops) if OPS[op].kind == "binary_conv"]
    if not convs:
        return tuple(pairs), 0
    weakest = sorted(free, key=lambda i: chosen[i][1].max())[: len(free) - limit]
    for index in weakest:
        edge = chosen[index][1]
        best = max(convs, key=lambda column: edge[column])
        pairs[index] = (ops[best], pairs[index][1])
    return tuple(pairs), len(weakest)


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)
