"""The UBNAS cell space as keras-tuner hyperparameters, for `GeneticSearch`.

```python
from keras_bnn_af.searchers import GeneticSearch
from keras_bnn_af.searchers.ubnas.hyper import CellHyperModel

hypermodel = CellHyperModel(input_shape=(40, 1), num_classes=10, nodes=2, seed=0)
tuner = GeneticSearch(hypermodel, objective="val_accuracy", max_trials=60, seed=0)
tuner.search(splits.train, validation_data=splits.validation)
genotype = hypermodel.genotype(tuner.get_best_hyperparameters()[0].values)
```

The discrete counterpart of the differentiable search (`search.run_nas`): the
same cells (`derived.build_derived`), searched by evolution instead of by α and
β. A candidate is `input -> float stem conv -> BN -> cells -> global average
pool -> dense softmax`, with reduction cells at `cells // 3` and
`2 * cells // 3` (channels doubled, stride 2) and normal cells elsewhere. In a
cell of either kind, with `s_0`, `s_1` the outputs of the two previous cells
(after binary 1 x 1 convs) and `s_{k+2}` node `k`,

    s_{j+2} = op_{j,0}(s_{i_{j,0}}) + op_{j,1}(s_{i_{j,1}}),   i_{j,b} in 0..j+1

and the cell's output concatenates `s_2 .. s_{nodes+1}`. Every `op` is one of
`ops` (`space.OPS`; every binary conv a `models.binary_conv2d`, one
`LceBconv2d` after `export_lce`).

Hyperparameters, for `kind` in (normal, reduce), node `j` in `0..nodes-1` and
branch `b` in (0, 1):

- `{kind}_{j}_{b}_op`: Choice of `ops` (unordered; default the first binary
  conv among them, else `ops[0]`);
- `{kind}_{j}_{b}_input`: Int `0..j+1`, step 1 (so a mutation draws another
  input uniformly; default `j + b`, the two latest states: a chain).

No conditional scopes: every genome has the same `8 * nodes` genes, for
`GeneticOracle`'s crossover and mutation, and every genome is a valid
`Genotype` (`genotype`), so no trial is lost to an invalid cell. The space
holds `prod_j (|ops| * (j + 2)) ** 4` genomes: about 7.5e9 for the default 7
ops and 2 nodes.

Unlike the supernet's op list, `ops` has no `zero` ("no edge"): a derived node
always has two inputs, and `Genotype` refuses `zero`. Nor is `derive`'s
collapse guard applied: a cell of parameter-free ops is a candidate like any
other, and its fitness decides. Swapping a node's two branches builds the
same function (the sum is symmetric) from differently named layers; the two
genomes are distinct to the oracle, as `architecture_key` (the genotype) is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras_tuner

from keras_bnn_af._keras import keras
from keras_bnn_af.quantizers import binarizer_factory
from keras_bnn_af.searchers.af_search import (
    CandidateTraining,
    check_signal_shape,
    trial_seed,
)
from keras_bnn_af.searchers.ubnas.derived import build_derived
from keras_bnn_af.searchers.ubnas.genotype import Genotype
from keras_bnn_af.searchers.ubnas.space import (
    DEFAULT_OPS,
    OPS,
    check_channels,
    check_ops,
)
from keras_bnn_af.searchers.ubnas.supernet import reduction_indices

__all__ = ["CELL_KINDS", "SEARCH_OPS", "CellHyperModel"]

#: The cell kinds, in gene order.
CELL_KINDS = ("normal", "reduce")
#: The default ops: the supernet's without `zero`.
SEARCH_OPS = tuple(op for op in DEFAULT_OPS if op != "zero")


class CellHyperModel(CandidateTraining, keras_tuner.HyperModel):
    """Builds and trains the derived network of one genotype per trial.

    # Arguments
        input_shape: `(length, channels)` (1-D) or `(height, width, channels)`.
        num_classes: outputs of the dense head.
        nodes: intermediate nodes per cell.
        cells: cells of the network (reductions at 1/3 and 2/3 of the depth).
        channels: the first cells' channels `C` (doubled at each reduction).
        ops: the op names a branch chooses from (`space.OPS`), without `zero`.
        binarizer: the activations' binarizer spec (`keras_bnn_af.quantizers`).
        epochs: training epochs per candidate.
        learning_rate: Adam's initial learning rate, cosine decay.
        steps_per_epoch: for the decay schedule; None assumes 100.
        kill_below: stop a candidate whose best validation accuracy is below
            this after `kill_after` epochs (`StopBelow`); None never stops early.
        seed: None, or seed each candidate's weights and training from this
            and its `architecture_key` (`trial_seed`).
        latency: None, or `model -> ms` (a `latency_objective.TrialLatency`):
            every epoch's logs then carry `latency_ms`, for a latency objective.

    # Raises
        ValueError: for a bad shape, size, binarizer or op list (unknown or
            repeated ops, `zero`, a grouped conv LCE would not fuse).
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, ...] = (40, 1),
        num_classes: int = 10,
        nodes: int = 2,
        cells: int = 3,
        channels: int = 8,
        ops=SEARCH_OPS,
        binarizer="approx_sign",
        epochs: int = 10,
        learning_rate: float = 5e-3,
        steps_per_epoch: int | None = None,
        kill_below: float | None = 0.11,
        kill_after: int = 1,
        seed: int | None = None,
        latency: Callable[[keras.Model], float] | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name, tunable=True)
        check_signal_shape("CellHyperModel", input_shape)
        sizes = {"nodes": nodes, "cells": cells, "channels": channels}
        for option, value in sizes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"CellHyperModel got {option}={value!r}; expected an integer "
                    f">= 1. Fix: pass a positive {option}."
                )
        self.ops = check_ops(ops)
        if "zero" in self.ops:
            raise ValueError(
                f"CellHyperModel got ops {list(self.ops)} with 'zero'; expected the "
                "ops of a derived cell, which has no 'zero' (every node takes two "
                "inputs; 'zero' only means 'no edge' in the supernet). Fix: drop "
                f"'zero', e.g. ops={list(SEARCH_OPS)}."
            )
        self._check_channels(cells, channels)
        binarizer_factory(binarizer)  # an unknown binarizer fails here
        self.nodes, self.cells, self.channels = nodes, cells, channels
        self.binarizer = binarizer
        self.set_training(
            input_shape=input_shape,
            num_classes=num_classes,
            epochs=epochs,
            learning_rate=learning_rate,
            steps_per_epoch=steps_per_epoch,
            kill_below=kill_below,
            kill_after=kill_after,
            seed=seed,
            latency=latency,
        )

    # --- the space ---------------------------------------------------------------

    def gene_names(self) -> list[tuple[str, str]]:
        """`(op gene, input gene)` per branch, in Genotype order per kind."""
        return [
            (f"{kind}_{node}_{branch}_op", f"{kind}_{node}_{branch}_input")
            for kind in CELL_KINDS
            for node in range(self.nodes)
            for branch in (0, 1)
        ]

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> dict:
        """Declares the space (see the module docstring); returns `hp`'s values."""
        default_op = next(
            (op for op in self.ops if OPS[op].kind == "binary_conv"), self.ops[0]
        )
        values = {}
        for index, (op, source) in enumerate(self.gene_names()):
            node, branch = divmod(index % (2 * self.nodes), 2)
            values[op] = hp.Choice(
                op, list(self.ops), ordered=False, default=default_op
            )
            values[source] = hp.Int(source, 0, node + 1, step=1, default=node + branch)
        return values

    def genotype(self, values: dict[str, Any]) -> Genotype:
        """The `Genotype` of a genome (trial values).

        # Raises
            ValueError: if a gene is missing or holds a value outside the space.
        """
        genes = [name for pair in self.gene_names() for name in pair]
        missing = [name for name in genes if name not in values]
        if missing:
            raise ValueError(
                f"Trial values lack the cell genes {missing}; expected all "
                f"{8 * self.nodes} genes CellHyperModel(nodes={self.nodes}) "
                "declares. Fix: pass a complete genome of this hypermodel's space."
            )
        cell = {kind: [] for kind in CELL_KINDS}
        for op_gene, input_gene in self.gene_names():
            op = str(values[op_gene])
            if op not in self.ops:
                raise ValueError(
                    f"Gene {op_gene} holds {op!r}; expected one of this space's ops "
                    f"{list(self.ops)}. Fix: pass a genome of this hypermodel's space."
                )
            cell[op_gene.split("_", 1)[0]].append((op, int(values[input_gene])))
        return Genotype(self.nodes, tuple(cell["normal"]), tuple(cell["reduce"]))

    def architecture_key(self, values: dict[str, Any]) -> dict[str, Any]:
        """What a genome builds: its genotype. Equal keys, equal nets and seeds."""
        data = self.genotype(values).to_json()
        return {key: data[key] for key in ("nodes", "normal", "reduce")}

    def formula(self, values: dict[str, Any]) -> str:
        """One line for leaderboards, node by node, each op's input in brackets:
        `normal: bconv_3x3(0) + skip(1), ... | reduce: ...`."""
        genotype = self.genotype(values)
        kinds = []
        for kind in CELL_KINDS:
            pairs = getattr(genotype, kind)
            nodes = [
                " + ".join(f"{op}({source})" for op, source in pairs[i : i + 2])
                for i in range(0, len(pairs), 2)
            ]
            kinds.append(f"{kind}: " + ", ".join(nodes))
        return " | ".join(kinds)

    # --- models ------------------------------------------------------------------

    def build_model(self, values: dict[str, Any]) -> keras.Model:
        """The uncompiled derived network of a genome (no seeding)."""
        return build_derived(
            self.genotype(values),
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            cells=self.cells,
            channels=self.channels,
            binarizer=self.binarizer,
        )

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """The compiled model of a trial. With `seed`, Keras's random state is
        first set from the seed and the `architecture_key`, so a network gets
        the same initial weights and training wherever it runs."""
        values = self.declare_hyperparameters(hp)
        if self.seed is not None:
            keras.utils.set_random_seed(
                trial_seed(self.seed, self.architecture_key(values))
            )
        return self.compile_candidate(self.build_model(values))

    def describe(self, hp: keras_tuner.HyperParameters) -> str:
        """The candidate, for messages: `Cell 'normal: ... | reduce: ...'`."""
        return f"Cell {self.formula(hp.values)!r}"

    def _check_channels(self, cells: int, channels: int) -> None:
        """Refuses grouped convs LCE would not fuse in some cell, before any trial."""
        for index in range(cells):
            reduction = index in reduction_indices(cells)
            channels *= 2 if reduction else 1
            kind = "reduce" if reduction else "normal"
            check_channels(self.ops, channels, f"CellHyperModel cell {index} ({kind})")
