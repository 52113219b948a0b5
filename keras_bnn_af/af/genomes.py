"""GAAF's integer genomes: gene tables and the tree a genome encodes.

`from_genome([a, b, op])` is `B_op(U_a(x), U_b(x))`; the two-unit genome
`[u1, u2, u3, u4, b1, b2]` is `B_b2(U_u3(p), U_u4(x))` with
`p = B_b1(U_u1(x), U_u2(x))` (U_u4 reads x, not p). GAAF's reference code
computes unary gene 13 as `exp(-|x| + 1e-8)`; here it is `exp(-abs(x))` (the
factor `e^(1e-8)` rounds to 1 in float32).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keras_bnn_af.af.syntax import parse
from keras_bnn_af.af.tree import Node, Var

__all__ = ["BINARY_GENES", "UNARY_GENES", "from_genome"]

#: GAAF's unary genes, index -> formula in `x` (keep the order: genomes index it).
UNARY_GENES: tuple[str, ...] = (
    "x",
    "0",
    "x^2",
    "x^3",
    "ssqrt(x)",
    "log(x)",
    "sin(x)",
    "cos(x)",
    "sigmoid(x)",
    "tan(x)",
    "atan(x)",
    "erf(x)",
    "erfc(x)",
    "exp(-abs(x))",
    "exp(-x^2)",
    "max(x, 0)",
    "min(x, 0)",
    "abs(x)",
    "-x",
    "scale(x)",
    "shift(x)",
    "param()",
)

#: GAAF's binary genes, index -> formula in `x` and `y`.
BINARY_GENES: tuple[str, ...] = (
    "x + y",
    "x - y",
    "x * y",
    "x / y",
    "ratio(x, y)",
    "max(x, y)",
    "min(x, y)",
    "x * sigmoid(y)",
    "exp(-(x - y)^2)",
    "exp(-abs(x - y))",
    "blend(x, y)",
)


def _unary_gene(index: int, operand: Node) -> Node:
    return parse(UNARY_GENES[index], variables={"x": operand})


def _binary_gene(index: int, left: Node, right: Node) -> Node:
    return parse(BINARY_GENES[index], variables={"x": left, "y": right})


def from_genome(genome: Sequence[int]) -> Node:
    """The tree of a GAAF genome: `[a, b, op]` or `[u1, u2, u3, u4, b1, b2]`.

    # Raises
        ValueError: if the genome has another length or a gene out of range.
    """
    genes = list(genome) if isinstance(genome, Sequence | np.ndarray) else None
    ranges = [len(UNARY_GENES), len(UNARY_GENES), len(BINARY_GENES)]
    if genes is not None and len(genes) == 6:
        ranges = [len(UNARY_GENES)] * 4 + [len(BINARY_GENES)] * 2
    valid = (
        genes is not None
        and len(genes) in (3, 6)
        and all(
            isinstance(g, int | np.integer) and not isinstance(g, bool) and 0 <= g < n
            for g, n in zip(genes, ranges, strict=True)
        )
    )
    if not valid:
        raise ValueError(
            f"Invalid GAAF genome {genome!r}. Expected 3 integer genes [a, b, op] with "
            f"a, b in 0..{len(UNARY_GENES) - 1} (unary) and op in "
            f"0..{len(BINARY_GENES) - 1} (binary), or 6 genes "
            "[u1, u2, u3, u4, b1, b2]. See UNARY_GENES and BINARY_GENES for the "
            "ops, e.g. [6, 0, 0] is 'sin(x) + x'."
        )
    genes = [int(g) for g in genes]
    x = Var()
    if len(genes) == 3:
        a, b, op = genes
        return _binary_gene(op, _unary_gene(a, x), _unary_gene(b, x))
    u1, u2, u3, u4, b1, b2 = genes
    inner = _binary_gene(b1, _unary_gene(u1, x), _unary_gene(u2, x))
    return _binary_gene(b2, _unary_gene(u3, inner), _unary_gene(u4, x))
