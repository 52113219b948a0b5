r"""Activation-function search spaces: GAAF genomes and PANGAEA-style trees.

```python
from keras_bnn_af.searchers import GAAFHyperModel, GeneticSearch

hypermodel = GAAFHyperModel(model="conv1d", input_shape=(40, 1), num_classes=10)
tuner = GeneticSearch(hypermodel, objective="val_accuracy", max_trials=60,
                      population_size=10, seed=0, directory="runs")
tuner.search(splits.train, validation_data=splits.validation)
```

Both hypermodels build a reference model (`keras_bnn_af.models`) with
`GAAF(af)` as the input quantizer of every binary conv (one instance per layer)
and train it with Adam and a cosine decay. A trial's fitness is the best
validation accuracy over its epochs (keras-tuner's default for a `"max"`
objective); the test split is never seen. As in GAAF, a candidate whose best
validation accuracy is still below `kill_below` after `kill_after` epochs stops
early (`StopBelow`), and a candidate whose loss becomes NaN or infinite raises
`keras_tuner.errors.FailedTrialError`: the trial is FAILED and the search goes
on.

- `GAAFHyperModel`: GAAF's genome, one `Choice` per gene: unary `a`, unary `b`,
  binary `op` (`AF = op(U_a(x), U_b(x))`), and with `units=2` the two-unit
  genome `[u1, u2, u3, u4, b1, b2]` under a conditional scope.
- `TreeHyperModel` + `TreeOracle` / `TreeSearch`: PANGAEA-style evolution of
  AF trees (`keras_bnn_af.searchers.af_tree`); the tree travels as its
  canonical formula in the trial value `"af"`, so persistence and distributed
  search work as for any keras-tuner value.
"""

from __future__ import annotations

import json
import math
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import keras_tuner

from keras_bnn_af import af, models
from keras_bnn_af._keras import keras
from keras_bnn_af.quantizers import GAAF
from keras_bnn_af.searchers import af_tree, operators
from keras_bnn_af.searchers.genetic import GeneticOracle, GeneticSearch
from keras_bnn_af.searchers.latency_objective import latency_callbacks
from keras_bnn_af.training import make_optimizer

__all__ = [
    "AF_VALUE",
    "GAAFHyperModel",
    "StopBelow",
    "TreeHyperModel",
    "TreeOracle",
    "TreeSearch",
    "genome_of",
]

#: The trial value that holds a tree search's formula.
AF_VALUE = "af"
_ONE_UNIT = ("unary_a", "unary_b", "binary")
_TWO_UNITS = ("unary_1", "unary_2", "unary_3", "unary_4", "binary_1", "binary_2")


class StopBelow(keras.callbacks.Callback):
    """Stops training once `monitor` has stayed below `floor` for `patience` epochs.

    GAAF's early kill: a candidate whose best validation accuracy is still
    below 11 % (one unit) or 20 % (two units) after an epoch stops training.

    # Arguments
        monitor: the logged metric, e.g. `"val_accuracy"`.
        floor: the least best-so-far value a candidate must reach.
        patience: epochs before the first check.
    """

    def __init__(self, monitor: str = "val_accuracy", floor: float = 0.11, patience=1):
        super().__init__()
        self.monitor, self.floor, self.patience = monitor, float(floor), int(patience)
        self.best = -math.inf
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs=None):
        self.best, self.stopped_epoch = -math.inf, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and math.isfinite(value):
            self.best = max(self.best, float(value))
        if epoch + 1 >= self.patience and self.best < self.floor:
            self.stopped_epoch = epoch
            self.model.stop_training = True


def trial_seed(seed: int, values: dict[str, Any]) -> int:
    """A seed for one candidate: `seed` mixed with a stable hash of its values."""
    text = json.dumps(values, sort_keys=True, default=str)
    return (seed * 1_000_003 + zlib.crc32(text.encode())) % 2**31


def check_signal_shape(owner: str, input_shape) -> None:
    """Refuses an input shape that is neither a 1-D signal nor an image."""
    if len(input_shape) not in (2, 3):
        raise ValueError(
            f"{owner} got input_shape={tuple(input_shape)!r}; expected "
            "(length, channels) for 1-D signals, e.g. (40, 1) for MNIST-1D, or "
            "(height, width, channels), e.g. (28, 28, 1) for MNIST."
        )


class CandidateTraining:
    """How a search trains a candidate: Adam with cosine decay, early stop
    below a floor, NaN loss fails the trial, `latency_ms` reported.

    For hypermodels with `describe(hp)` that call `set_training` in their
    constructor.
    """

    def set_training(
        self,
        *,
        input_shape,
        num_classes,
        epochs,
        learning_rate,
        steps_per_epoch,
        kill_below,
        kill_after,
        seed,
        latency,
    ) -> None:
        """Keeps the data shape and the training settings every candidate uses."""
        self.input_shape = tuple(int(size) for size in input_shape)
        self.num_classes = int(num_classes)
        self.epochs = int(epochs)
        self.learning_rate = float(learning_rate)
        self.steps_per_epoch = steps_per_epoch
        self.kill_below = kill_below
        self.kill_after = int(kill_after)
        self.seed = seed
        self.latency = latency

    def compile_candidate(self, model: keras.Model) -> keras.Model:
        """Compiles `model` with Adam and cosine decay over `epochs`."""
        decay_steps = self.epochs * (self.steps_per_epoch or 100)
        model.compile(
            optimizer=make_optimizer("adam", self.learning_rate, decay_steps),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        """Trains `self.epochs` epochs; NaN or infinite loss fails the trial."""
        callbacks = list(callbacks or []) + [keras.callbacks.TerminateOnNaN()]
        callbacks += latency_callbacks(self.latency, model)
        if self.kill_below is not None:
            callbacks.append(
                StopBelow("val_accuracy", self.kill_below, self.kill_after)
            )
        kwargs.setdefault("epochs", self.epochs)
        kwargs.setdefault("verbose", 0)
        history = model.fit(*args, callbacks=callbacks, **kwargs)
        losses = history.history.get("loss", [])
        if not losses or not all(math.isfinite(loss) for loss in losses):
            raise keras_tuner.errors.FailedTrialError(
                f"{self.describe(hp)} diverged: training loss {losses[-1:]} is not "
                "finite. The trial is marked FAILED and the search goes on."
            )
        return history


class _AFHyperModel(CandidateTraining, keras_tuner.HyperModel):
    """Builds and trains a reference BNN with `GAAF(self.af(hp))` binarizers."""

    def __init__(
        self,
        *,
        model: str = "conv1d",
        input_shape: tuple[int, ...] = (40, 1),
        num_classes: int = 10,
        epochs: int = 10,
        learning_rate: float = 5e-3,
        steps_per_epoch: int | None = None,
        kill_below: float | None = 0.11,
        kill_after: int = 1,
        skip_non_viable: bool = True,
        seed: int | None = None,
        latency: Callable[[keras.Model], float] | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name, tunable=True)
        models.check_name(model)
        self.model = model
        self.skip_non_viable = bool(skip_non_viable)
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

    def af(self, hp: keras_tuner.HyperParameters) -> str:
        raise NotImplementedError

    def formula(self, values: dict[str, Any]) -> str:
        """The AF formula of a trial's values."""
        raise NotImplementedError

    def candidate_problem(self, values: dict[str, Any]) -> str | None:
        """Why a candidate is not worth training (`af.viability_problem`), or None.

        `GeneticSearch` makes this its oracle's `candidate_filter`, so an AF
        whose sign is (nearly) constant on BatchNorm-normalized inputs is
        skipped before training and costs no trial. None when
        `skip_non_viable` is False.
        """
        if not self.skip_non_viable:
            return None
        return af.viability_problem(self.formula(values))

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """The model of a trial, compiled. With `seed`, Keras's random state is
        first set from the seed and the trial's values, so a genome gets the
        same initial weights and training wherever and whenever it runs."""
        if self.seed is not None:
            keras.utils.set_random_seed(trial_seed(self.seed, hp.values))
        formula = self.af(hp)
        model = models.build(
            self.model,
            binarizer=lambda: GAAF(formula),
            input_shape=self.input_shape,
            num_classes=self.num_classes,
        )
        return self.compile_candidate(model)

    def describe(self, hp: keras_tuner.HyperParameters) -> str:
        """The candidate, for messages: `AF 'sin(x)'`."""
        return f"AF {self.af(hp)!r}"


class GAAFHyperModel(_AFHyperModel):
    r"""GAAF's search space: `AF = B_op(U_a(x), U_b(x))`, one gene per `Choice`.

    Genes (`af.UNARY_GENES`: 22 unary ops, `af.BINARY_GENES`: 11 binary ops, in
    GAAF's order): `unary_a`, `unary_b`, `binary`. With `units=2`, a `units`
    choice of 1 or 2 is searched as well, and two-unit genomes use
    `unary_1 .. unary_4, binary_1, binary_2`:
    \\(p = B_{b_1}(U_{u_1}(x), U_{u_2}(x))\\) and
    \\(AF = B_{b_2}(U_{u_3}(p), U_{u_4}(x))\\).

    # Arguments
        units: 1 (GAAF's `net_01`) or 2 (search both one- and two-unit AFs).
        model, input_shape, num_classes: the proxy network (`models.build`).
        epochs: training epochs per candidate.
        learning_rate: Adam's initial learning rate (GAAF: 5e-3), cosine decay.
        steps_per_epoch: for the decay schedule; None assumes 100.
        kill_below: stop a candidate whose best validation accuracy is below this
            after `kill_after` epochs (GAAF: 0.11); None never stops early.
        skip_non_viable: skip AFs whose sign is (nearly) constant on normalized
            inputs before training them (`candidate_problem`).
        seed: None, or seed each candidate's weights and training from this
            and its genome (`trial_seed`), so results do not depend on trial
            order, process or worker.
        latency: None, or `model -> ms` (a `latency_objective.TrialLatency`):
            every epoch's logs then carry `latency_ms`, for a latency objective.
    """

    def __init__(self, *, units: int = 1, **kwargs):
        if units not in (1, 2):
            raise ValueError(
                f"GAAFHyperModel got units={units!r}; expected 1 (genome [a, b, op]) "
                "or 2 (also the two-unit genome [u1, u2, u3, u4, b1, b2])."
            )
        super().__init__(**kwargs)
        self.units = units

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        self.af(hp)

    def af(self, hp: keras_tuner.HyperParameters) -> str:
        if self.units == 1:
            genome = [_gene(hp, name) for name in _ONE_UNIT]
        else:
            units = hp.Choice("units", [1, 2])
            with hp.conditional_scope("units", [1]):
                one = [_gene(hp, name) for name in _ONE_UNIT]
            with hp.conditional_scope("units", [2]):
                two = [_gene(hp, name) for name in _TWO_UNITS]
            genome = one if units == 1 else two
        return str(af.from_genome(genome))

    def formula(self, values: dict[str, Any]) -> str:
        return str(af.from_genome(genome_of(values)))


def _gene(hp, name: str) -> int:
    count = len(af.BINARY_GENES if name.startswith("binary") else af.UNARY_GENES)
    return hp.Choice(name, list(range(count)), ordered=False)


def genome_of(values: dict[str, Any]) -> list[int]:
    """The GAAF genome of a trial's values (`[a, b, op]` or the 6-gene form).

    # Raises
        ValueError: if `values` hold neither genome.
    """
    for names in (_ONE_UNIT, _TWO_UNITS):
        if all(values.get(name) is not None for name in names):
            return [int(values[name]) for name in names]
    raise ValueError(
        f"Trial values {dict(values)!r} hold no GAAF genome; expected the genes "
        f"{list(_ONE_UNIT)} or {list(_TWO_UNITS)}, as GAAFHyperModel declares."
    )


class TreeHyperModel(_AFHyperModel):
    """A model whose binarizers are `GAAF(formula)`, `formula` = the `"af"` value.

    The tree itself is evolved by `TreeOracle`; this hypermodel only declares the
    value (starting from `initial`) and builds the network for a formula.
    """

    def __init__(self, *, initial: str = "x", **kwargs):
        super().__init__(**kwargs)
        self.initial = af_tree.canonical(initial)

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        self.af(hp)

    def af(self, hp: keras_tuner.HyperParameters) -> str:
        return hp.Fixed(AF_VALUE, self.initial)

    def formula(self, values: dict[str, Any]) -> str:
        return values[AF_VALUE]


class TreeOracle(GeneticOracle):
    """`GeneticOracle` whose `"af"` gene is an AF tree, evolved PANGAEA-style.

    Random genomes get `af_tree.random_tree`; a child's tree is an
    `af_tree.crossover` of its parents' trees (when the crossover draw says so)
    and then one `af_tree.mutate` mutation (change / regenerate / insert /
    remove a node; add / remove / move a parameter); parents with no valid
    crossover or mutation are redrawn, as for any oracle operator. Any other
    hyperparameters evolve with the ordinary operators. Trees travel as
    canonical formulas, so equal trees are equal genomes and never trained
    twice. The tree space is saved in the oracle's state.

    # Arguments
        tree_space: vocabulary and limits (`af_tree.TreeSpace`); None for the
            default.
        **kwargs: as for `GeneticOracle`.
    """

    def __init__(self, *args, tree_space: af_tree.TreeSpace | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tree_space = tree_space or af_tree.TreeSpace()

    def _random_values(self) -> dict[str, Any]:
        values = self._others(super()._random_values())
        tree = af_tree.random_tree(self._rng, space=self.tree_space)
        return {**values, AF_VALUE: af_tree.canonical(tree)}

    def _crossover_values(self, a: dict, b: dict, order: list[str]) -> dict:
        others = self._others(a)
        if len(others) > 1:
            others = super()._crossover_values(others, self._others(b), order)
        child, _ = af_tree.crossover(
            a[AF_VALUE], b[AF_VALUE], self._rng, space=self.tree_space
        )
        return {**others, AF_VALUE: af_tree.canonical(child)}

    def _mutate_values(self, values: dict) -> dict:
        others = self._others(values)
        if others and self._rng.random() < 0.5:
            others = operators.mutate(others, self._other_space(), self._rng, (1, 1))
        tree, _ = af_tree.mutate(values[AF_VALUE], self._rng, space=self.tree_space)
        return {**others, AF_VALUE: af_tree.canonical(tree)}

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["tree_space"] = self.tree_space.to_json()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        saved = af_tree.TreeSpace.from_json(state["tree_space"])
        if saved != self.tree_space:
            warnings.warn(
                f"TreeOracle is resuming a search saved with another tree space: "
                f"{saved} (asked for {self.tree_space}). The saved space is used, "
                "so the search continues as it started. To change it, start a new "
                "project.",
                stacklevel=2,
            )
        self.tree_space = saved

    def _others(self, values: dict) -> dict:
        return {name: value for name, value in values.items() if name != AF_VALUE}

    def _other_space(self) -> keras_tuner.HyperParameters:
        space = keras_tuner.HyperParameters()
        space.merge([hp for hp in self.hyperparameters.space if hp.name != AF_VALUE])
        return space


class TreeSearch(GeneticSearch):
    """`GeneticSearch` with a `TreeOracle`: `TreeSearch(TreeHyperModel(...), ...)`.

    # Arguments
        tree_space: see `TreeOracle`.
        *args, **kwargs: as for `GeneticSearch`.
    """

    def __init__(self, *args, tree_space: af_tree.TreeSpace | None = None, **kwargs):
        self._tree_space = tree_space
        super().__init__(*args, **kwargs)

    def _make_oracle(self, **arguments) -> GeneticOracle:
        return TreeOracle(tree_space=self._tree_space, **arguments)
