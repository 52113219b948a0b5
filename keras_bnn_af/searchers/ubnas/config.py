"""The settings of one UBNAS search, checked before any work."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from keras_bnn_af.searchers.ubnas.genotype import MAX_PARAMETER_FREE
from keras_bnn_af.searchers.ubnas.space import DEFAULT_OPS, OPS, check_ops

__all__ = ["NasConfig"]


@dataclass(frozen=True)
class NasConfig:
    """One search (`keras-bnn-af nas`); defaults: a small supernet for a CPU.

    # Arguments
        dataset: `mnist`, `mnist1d` or `tfds:<name>` (`keras_bnn_af.data`).
        epochs: search epochs in all (warm-up included).
        cells, nodes, channels: the supernet (DARTS: 8, 4, 16).
        partial_channels: `K`; each edge sees `channels / K` channels
            (PC-DARTS: 4). 1 is plain DARTS.
        ops: the candidate operations (`space.OPS`), `zero` among them.
        binarizer: the activations' binarizer (ApproxSign by default).
        batch_size: examples per step (of each update).
        max_samples: at most this many examples per split; None: all.
        warmup_epochs: weight-only epochs before α and β move; None: half the
            epochs (EBNAS starts them at epoch 25 of 50).
        patience: stop when the derived genotype has not changed for this many
            epochs after the warm-up; 0 never stops early.
        max_parameter_free: the collapse guard (`genotype.derive`); None: off.
        learning_rate: Adam's for the weights (BNNs train with Adam).
        arch_learning_rate, arch_weight_decay: Adam's for α and β (DARTS:
            3e-4, 1e-3, beta_1 0.5).
        seed: α/β initialisation, weights and the training split's shuffle.
    """

    dataset: str = "mnist"
    epochs: int = 10
    cells: int = 3
    nodes: int = 2
    channels: int = 8
    partial_channels: int = 2
    ops: tuple[str, ...] = DEFAULT_OPS
    binarizer: str = "approx_sign"
    batch_size: int = 64
    max_samples: int | None = None
    warmup_epochs: int | None = None
    patience: int = 3
    max_parameter_free: int | None = MAX_PARAMETER_FREE
    learning_rate: float = 1e-3
    arch_learning_rate: float = 3e-4
    arch_weight_decay: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "ops", check_ops(self.ops))
        if "zero" not in self.ops:
            self._refuse("ops", list(self.ops), "a list with 'zero' (no edge)")
        for name, low in (
            ("epochs", 1),
            ("cells", 3),
            ("nodes", 1),
            ("channels", 1),
            ("partial_channels", 1),
            ("batch_size", 1),
            ("patience", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                self._refuse(name, value, f"an integer >= {low}")
        if self.channels % self.partial_channels:
            self._refuse(
                "channels",
                self.channels,
                f"a multiple of partial_channels={self.partial_channels} (each edge "
                f"samples channels / K of them)",
            )
        groups = max(OPS[name].groups for name in self.ops)
        if (self.channels // self.partial_channels) % groups:
            self._refuse(
                "channels",
                self.channels,
                f"channels / partial_channels divisible by {groups}, the groups of "
                "a grouped conv among the ops",
            )
        if not 0 <= self.warmup < self.epochs:
            self._refuse(
                "warmup_epochs",
                self.warmup_epochs,
                f"0 <= warmup_epochs < epochs={self.epochs}, so that α moves at all",
            )

    @property
    def warmup(self) -> int:
        """Weight-only epochs: `warmup_epochs`, or half the epochs."""
        return self.epochs // 2 if self.warmup_epochs is None else self.warmup_epochs

    def _refuse(self, name, value, expected):
        option = "--" + name.replace("_", "-")
        raise ValueError(
            f"UBNAS {name}={value!r}; expected {expected}. Fix: change {option}."
        )

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "ops": list(self.ops)}

    @classmethod
    def from_json(cls, data: dict) -> NasConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"UBNAS settings have unknown keys {unknown}; expected some of "
                f"{sorted(known)}. Fix: remove them from config.json."
            )
        return cls(**{**data, "ops": tuple(data.get("ops", DEFAULT_OPS))})

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"
