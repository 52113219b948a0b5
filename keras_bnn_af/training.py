"""Train a reference BNN on a dataset and write the run to a folder.

```python
result = train(TrainConfig(dataset="mnist", epochs=2), out_dir="runs/mnist")
result.metrics["test_accuracy"]
```

A run folder holds `model.h5`, `metrics.json` and `training_curve.png`;
writing and reading it is `keras_bnn_af.runs` (`MODEL_FILE`, `METRICS_FILE`,
`CURVE_FILE`, `OutputExistsError`, `check_output_dir` and `write_run` are also
importable from here).
"""

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import larq as lq

from keras_bnn_af import callbacks, data, macs, models, recipes
from keras_bnn_af._keras import keras
from keras_bnn_af.quantizers import binarizer_factory
from keras_bnn_af.runs import CURVE_FILE as CURVE_FILE
from keras_bnn_af.runs import METRICS_FILE as METRICS_FILE
from keras_bnn_af.runs import MODEL_FILE as MODEL_FILE
from keras_bnn_af.runs import OutputExistsError as OutputExistsError
from keras_bnn_af.runs import check_output_dir, write_run

OPTIMIZERS = ("adam", "bop")
#: The `TrainConfig` fields a dataset's recipe fills in when they are None.
RECIPE_FIELDS = ("model", "epochs", "batch_size", "learning_rate")
SHARPNESS_END = 100.0


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how; every field has a default that trains MNIST.

    `model`, `epochs`, `batch_size` and `learning_rate` left None take the
    values of the dataset's documented recipe (`keras_bnn_af.recipes`), e.g.
    conv1d with learning rate 0.01 for MNIST-1D; `from_recipe` names them.

    # Attributes
        dataset: a name `keras_bnn_af.data.load` accepts.
        model: a name `keras_bnn_af.models.build` accepts; None: the dataset's.
        binarizer: binarizer spec (alias or config dict); None is the model's own.
        epochs: passes over the training split, at least 1; None: the recipe's.
        batch_size: examples per step; None: the recipe's.
        optimizer: `"adam"`, or `"bop"` (Larq's Bop on binary weights, Adam on
            the rest).
        learning_rate: Adam's initial learning rate, decayed to 0 by a cosine;
            None: the recipe's.
        seed: seeds Python, NumPy and TensorFlow, and the training shuffle.
        max_samples: cap on every split, for quick runs.
        validation_fraction: share of the training pool held out for validation.
    """

    dataset: str = "mnist"
    model: str | None = None
    binarizer: str | dict | None = None
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str = "adam"
    learning_rate: float | None = None
    seed: int = 0
    max_samples: int | None = None
    validation_fraction: float = 0.1

    def __post_init__(self) -> None:
        data.check_name(self.dataset)
        self._apply_recipe()
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(
                f"epochs must be a positive integer, got {self.epochs!r}. "
                "Pass at least 1, e.g. epochs=3."
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"Unknown optimizer {self.optimizer!r}. Expected one of "
                f"{', '.join(map(repr, OPTIMIZERS))}."
            )
        if not self.learning_rate > 0:
            raise ValueError(
                f"learning_rate must be positive, got {self.learning_rate!r}. "
                "Pass e.g. learning_rate=1e-3."
            )
        # Fail on a bad name before any folder is made or data is loaded.
        models.check_name(self.model)
        if self.binarizer is not None:
            binarizer_factory(self.binarizer)

    def _apply_recipe(self) -> None:
        recipe = recipes.training_recipe(self.dataset, self.model)
        unset = [name for name in RECIPE_FIELDS if getattr(self, name) is None]
        for name in unset:
            object.__setattr__(self, name, getattr(recipe, name))
        object.__setattr__(self, "_from_recipe", tuple(unset))
        object.__setattr__(self, "_recipe_source", recipe.source)

    @property
    def from_recipe(self) -> dict[str, Any]:
        """The fields that took the recipe's value, and the recipe's source."""
        return {"fields": list(self._from_recipe), "source": self._recipe_source}


@dataclass
class TrainResult:
    """The trained model, its metrics (as written to `metrics.json`) and history."""

    model: keras.Model
    metrics: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)
    out_dir: Path | None = None


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    verbose: int | None = None,
) -> TrainResult:
    """Trains `config.model` on `config.dataset` and evaluates it on the test split.

    # Arguments
        config: what to train.
        out_dir: folder to write the run to, created with its missing
            parents; nothing is written if None.
        overwrite: allow `out_dir` to exist already. Only the run's own files
            in it are replaced.
        progress: show Keras's progress: a bar on a terminal, one line per
            epoch otherwise. Silent by default.
        verbose: Keras verbosity (0, 1 or 2); overrides `progress`.

    # Raises
        OutputExistsError: `out_dir` exists and `overwrite` is False (checked
            before any training).
        ValueError: `out_dir` cannot be created (a file in the way, an
            unwritable parent), also checked before any training.
    """
    out = check_output_dir(out_dir, overwrite=overwrite) if out_dir else None
    keras.utils.set_random_seed(config.seed)
    splits = data.load(
        config.dataset,
        batch_size=config.batch_size,
        max_samples=config.max_samples,
        seed=config.seed,
        validation_fraction=config.validation_fraction,
    )
    model = models.build(
        config.model,
        binarizer=config.binarizer,
        input_shape=splits.input_shape,
        num_classes=splits.num_classes,
    )
    steps = config.epochs * -(-splits.num_examples["train"] // config.batch_size)
    model.compile(
        optimizer=make_optimizer(config.optimizer, config.learning_rate, steps),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    if verbose is None:
        verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
    start = time.perf_counter()
    fit = model.fit(
        splits.train,
        validation_data=splits.validation,
        epochs=config.epochs,
        verbose=verbose,
        callbacks=method_callbacks(model, steps),
    )
    train_seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(splits.test, verbose=0)
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    metrics = {
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "val_accuracy": history["val_accuracy"][-1],
        "train_accuracy": history["accuracy"][-1],
        "train_seconds": round(train_seconds, 2),
        "seconds_per_epoch": round(train_seconds / config.epochs, 2),
        **model_statistics(model),
        "num_examples": splits.num_examples,
        "config": dataclasses.asdict(config),
        "recipe": config.from_recipe,
        "history": history,
    }
    if out is not None:
        write_run(out, model, metrics)
    return TrainResult(model=model, metrics=metrics, history=history, out_dir=out)


def method_callbacks(model: keras.Model, steps: int) -> list:
    """Callbacks a binarizer's method needs: sharpening for Self-Binarizing nets.

    `SelfBinarizing` trains through tanh(v x) and exports sign(x), so its
    sharpness v must grow during training: exponentially, step by step, from 1
    to `SHARPNESS_END` at the last step.
    """
    if not callbacks.self_binarizing_quantizers(model):
        return []
    schedule = callbacks.SharpeningSchedule(
        "exponential",
        start=1.0,
        end=SHARPNESS_END,
        duration=max(1, steps - 1),
        update_freq="step",
    )
    return [schedule]


def make_optimizer(name: str, learning_rate: float, decay_steps: int):
    """Adam with cosine decay, or Larq's Bop for binary weights with that Adam."""
    if name == "adam":
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
        return keras.optimizers.Adam(schedule)
    if name == "bop":
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
        # Larq's CaseOptimizer only accepts the legacy Keras optimizers on TF >= 2.11.
        return lq.optimizers.CaseOptimizer(
            (lq.optimizers.Bop.is_binary_variable, lq.optimizers.Bop()),
            default_optimizer=keras.optimizers.legacy.Adam(schedule),
        )
    expected = ", ".join(map(repr, OPTIMIZERS))
    raise ValueError(f"Unknown optimizer {name!r}. Expected one of {expected}.")


def model_statistics(model: keras.Model) -> dict[str, int | float]:
    """Parameter, MAC and memory counts as Larq's model summary reports them.

    MACs are those of `keras_bnn_af.macs` (without the MACs Larq attributes to
    quantizer-owned weights), so `binary_mac_ratio` is the export report's
    `binary_mac_share`, rounded to 4 digits.
    """
    profile = lq.models.ModelProfile(model)
    counted = macs.layer_macs(model)
    return {
        "params": int(model.count_params()),
        "binary_params": int(profile.weight_count(1)),
        "binary_macs": macs.count(counted, 1),
        "float_macs": macs.count(counted, 32),
        "binary_mac_ratio": round(macs.binary_share(counted), 4),
        "memory_kib": round(profile.memory / 8 / 1024, 2),
    }
