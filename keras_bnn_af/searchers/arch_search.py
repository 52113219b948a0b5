"""Architecture search space over the reference BNN families (`models.conv1d`,
`models.binarynet`), for a hardware-aware (accuracy vs latency) search.

```python
from keras_bnn_af.searchers import GeneticSearch
from keras_bnn_af.searchers.arch_search import ArchHyperModel

hypermodel = ArchHyperModel(input_shape=(40, 1), num_classes=10, seed=0)
tuner = GeneticSearch(hypermodel, objective="val_accuracy", max_trials=60, seed=0)
```

A candidate is `input -> float stem conv -> BN -> blocks -> global average pool
-> dense softmax`, and block `i` is

    binarizer_i -> binary conv (width_i, kernel_i) -> BN -> [max pool 2]

the reference families' layout: pooling after the BatchNorm, right before the
next binarizer, which LCE runs as a binary `LceBMaxPool2d` on packed bits
(`keras_bnn_af.latency.corpus` has both placements). Every binary conv is
`models.binary_conv2d`, so LCE makes it one `LceBconv2d`. 2-D inputs
`(H, W, C)` get `k x k` kernels and 2x2 pooling; 1-D inputs `(length, C)`
(MNIST-1D) are reshaped to `(length, 1, C)` and get `(k, 1)` kernels and
`(2, 1)` pooling, as in `models.conv1d`.

Hyperparameters (Choice defaults: the `conv1d` layout, 3 blocks of 64, k3):

- `blocks`: Int 2..5, the depth;
- `stem_width`: Choice (16, 32, 64), the float stem conv's width (kernel 3 for
  2-D inputs, 5 for 1-D ones);
- for `i` in 1..5: `width_i` Choice (16, 32, 64, 128), `kernel_i` Choice
  (1, 3, 5), `binarizer_i` Choice of `BINARIZERS`, `pool_i` Boolean.

Depth is not a conditional scope: all five blocks' genes are always declared
and blocks beyond `blocks` are ignored, so every genome has the same 22 genes
for `GeneticOracle`'s crossover and mutation, and a dormant block wakes up
when a mutation raises `blocks`. A `pool_i` is skipped where the map is 1
pixel along a pooled axis. Genomes differing only in ignored genes build one
network: `architecture_key` is its identity and seeds them alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras_tuner

from keras_bnn_af import models
from keras_bnn_af._keras import keras
from keras_bnn_af.quantizers import binarizer_factory
from keras_bnn_af.searchers.af_search import (
    CandidateTraining,
    check_signal_shape,
    trial_seed,
)

__all__ = ["BINARIZERS", "FOLDABLE", "ArchBlock", "ArchHyperModel"]

#: The binarizers a block can use: threshold folding exports the first three
#: as a plain sign; `gaaf:sin_x` keeps a float SIN and `dithered_sign` float
#: SUBs before LCE's quantize (`keras_bnn_af.latency.corpus.BINARIZERS`).
BINARIZERS = (
    "ste_sign",
    "gaaf:x_plus_sin_x",
    "rsign",
    "gaaf:sin_x",
    "dithered_sign:design_2x2",
)
FOLDABLE = frozenset(BINARIZERS[:3])
MIN_BLOCKS, MAX_BLOCKS = 2, 5
STEM_WIDTHS = (16, 32, 64)
WIDTHS = (16, 32, 64, 128)
KERNELS = (1, 3, 5)


@dataclass(frozen=True)
class ArchBlock:
    """One active block: `pool` is whether it really pools (not just `pool_i`)."""

    width: int
    kernel: int
    binarizer: str
    pool: bool

    def describe(self) -> str:
        name = self.binarizer.split(":")[-1]
        return f"{self.width}-k{self.kernel}-{name}" + ("+pool" if self.pool else "")


class ArchHyperModel(CandidateTraining, keras_tuner.HyperModel):
    """Builds and trains one candidate architecture per trial.

    # Arguments
        input_shape: `(length, channels)` (1-D) or `(height, width, channels)`.
        num_classes: outputs of the dense head.
        epochs: training epochs per candidate.
        learning_rate: Adam's initial learning rate, cosine decay.
        steps_per_epoch: for the decay schedule; None assumes 100.
        kill_below: stop a candidate whose best validation accuracy is below
            this after `kill_after` epochs (`StopBelow`); None never stops early.
        seed: None, or seed each candidate's weights and training from this
            and its `architecture_key` (`trial_seed`).
        latency: None, or `model -> ms` (a `latency_objective.TrialLatency`):
            every epoch's logs then carry `latency_ms`, for a latency objective.
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, ...] = (40, 1),
        num_classes: int = 10,
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
        check_signal_shape("ArchHyperModel", input_shape)
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

    @property
    def one_dimensional(self) -> bool:
        return len(self.input_shape) == 2

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> dict:
        """Declares the space (see the module docstring); returns `hp`'s values."""
        values = {
            "blocks": hp.Int("blocks", MIN_BLOCKS, MAX_BLOCKS, default=3),
            "stem_width": hp.Choice("stem_width", STEM_WIDTHS, default=32),
        }
        for i in range(1, MAX_BLOCKS + 1):
            values[f"width_{i}"] = hp.Choice(f"width_{i}", WIDTHS, default=64)
            values[f"kernel_{i}"] = hp.Choice(f"kernel_{i}", KERNELS, default=3)
            values[f"binarizer_{i}"] = hp.Choice(
                f"binarizer_{i}", BINARIZERS, ordered=False
            )
            values[f"pool_{i}"] = hp.Boolean(f"pool_{i}", default=i < 3)
        return values

    def blocks_of(self, values: dict[str, Any]) -> list[ArchBlock]:
        """The active blocks of a genome, pooling only where the map allows."""
        blocks, size = [], self._spatial()
        for i in range(1, int(values["blocks"]) + 1):
            pool = bool(values[f"pool_{i}"]) and min(size) >= 2
            if pool:
                size = tuple(s // 2 for s in size)
            blocks.append(
                ArchBlock(
                    int(values[f"width_{i}"]),
                    int(values[f"kernel_{i}"]),
                    str(values[f"binarizer_{i}"]),
                    pool,
                )
            )
        return blocks

    def architecture_key(self, values: dict[str, Any]) -> dict[str, Any]:
        """What a genome builds, without its ignored genes: equal keys, equal nets."""
        return {
            "stem_width": int(values["stem_width"]),
            "blocks": [list(vars(block).values()) for block in self.blocks_of(values)],
        }

    def formula(self, values: dict[str, Any]) -> str:
        """One line for leaderboards, e.g. `stem32 | 64-k3-ste_sign+pool | ...`."""
        blocks = " | ".join(block.describe() for block in self.blocks_of(values))
        return f"stem{int(values['stem_width'])} | {blocks}"

    def binary_macs(self, values: dict[str, Any]) -> int:
        """Binary MACs of the blocks' convs, as `keras_bnn_af.macs` counts them."""
        total, size, channels = 0, self._spatial(), int(values["stem_width"])
        for block in self.blocks_of(values):
            kernel = block.kernel * (1 if self.one_dimensional else block.kernel)
            total += kernel * channels * block.width * math.prod(size)
            size = tuple(s // 2 for s in size) if block.pool else size
            channels = block.width
        return total

    def build_model(self, values: dict[str, Any]) -> keras.Model:
        """The uncompiled model of a genome (no seeding)."""
        one_d = self.one_dimensional
        inputs = keras.Input(self.input_shape)
        x = inputs
        if one_d:
            x = keras.layers.Reshape((self.input_shape[0], 1, -1), name="to_2d")(x)
        # The reference models' float conv + BatchNorm (momentum 0.9, eps 1e-5).
        x = models._float_conv(
            x, int(values["stem_width"]), (5, 1) if one_d else 3, name="conv_0"
        )
        for i, block in enumerate(self.blocks_of(values), start=1):
            kernel = (block.kernel, 1) if one_d else block.kernel
            binarizer = binarizer_factory(block.binarizer)()
            x = models.binary_conv2d(block.width, kernel, binarizer, name=f"conv_{i}")(
                x
            )
            x = models._batch_norm(x, name=f"conv_{i}_bn")
            if block.pool:
                x = keras.layers.MaxPool2D((2, 1) if one_d else 2, name=f"pool_{i}")(x)
        x = keras.layers.GlobalAveragePooling2D(name="average")(x)
        outputs = keras.layers.Dense(
            self.num_classes, activation="softmax", name="classifier"
        )(x)
        return keras.Model(inputs, outputs, name="arch")

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """The compiled model of a trial. With `seed`, Keras's random state is
        first set from the seed and the `architecture_key`, so a network gets
        the same initial weights and training wherever it runs."""
        values = self.declare_hyperparameters(hp)
        if self.seed is not None:
            keras.utils.set_random_seed(
                trial_seed(self.seed, self.architecture_key(values))
            )
        model = self.build_model(values)
        return self.compile_candidate(model)

    def describe(self, hp: keras_tuner.HyperParameters) -> str:
        """The candidate, for messages: `Architecture 'stem32 | ...'`."""
        return f"Architecture {self.formula(hp.values)!r}"

    def _spatial(self) -> tuple[int, ...]:
        """The stem's output size along the pooled axes."""
        return self.input_shape[:1] if self.one_dimensional else self.input_shape[:2]
