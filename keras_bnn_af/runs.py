"""Run folders: what `keras-bnn-af train` writes, and reading it back.

```python
out = check_output_dir("runs/mnist", overwrite=False)
write_run(out, model, metrics)
model, dataset = load_trained_model("runs/mnist"), run_dataset("runs/mnist")
```

A run folder holds `model.h5` (`load_trained_model`, or `keras.models.load_model`
once `keras_bnn_af.quantizers` is imported), `metrics.json` (with the training
`config`) and `training_curve.png`.
"""

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from keras_bnn_af import data, plots, quantizers  # noqa: F401  (registers binarizers)
from keras_bnn_af._files import check_output_folder
from keras_bnn_af._keras import keras

__all__ = [
    "CURVE_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "OutputExistsError",
    "check_output_dir",
    "load_trained_model",
    "run_dataset",
    "write_run",
]

MODEL_FILE = "model.h5"
METRICS_FILE = "metrics.json"
CURVE_FILE = "training_curve.png"


class OutputExistsError(FileExistsError):
    """The output folder already exists and overwriting was not allowed."""


def check_output_dir(out_dir: str | Path, *, overwrite: bool) -> Path:
    """Refuses an existing `out_dir` unless `overwrite` is True; creates nothing.

    A new `out_dir` is created by `write_run`, with its missing parents; a file
    in the way or an unwritable parent is refused here, before any training.

    # Raises
        OutputExistsError: `out_dir` exists (or is a file) and `overwrite` is
            False.
        ValueError: `out_dir` cannot be created or written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(
            f"Output path {str(out)!r} exists and is a file, expected a folder. "
            "Pass another --out path."
        )
    if out.exists() and not overwrite:
        contents = sorted(p.name for p in out.iterdir())[:5] or "nothing"
        raise OutputExistsError(
            f"Output folder {str(out)!r} already exists (holding {contents}), "
            "and a run would overwrite it. Pass another --out folder, or "
            "--overwrite (overwrite=True) to replace the run files in it."
        )
    return check_output_folder(out, "--out")


def write_run(out: Path, model: keras.Model, metrics: dict[str, Any]) -> None:
    """Writes the model, `metrics.json` and the training curve into `out`.

    `out` is created with its missing parents.
    """
    out = check_output_folder(out, "out")
    out.mkdir(parents=True, exist_ok=True)
    # Architecture and weights only: evaluation and export need no optimizer
    # state, and metrics.json's config says how to train again. Keras calls .h5
    # legacy, but it is the format every Larq and LCE tool reloads.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        model.save(out / MODEL_FILE, include_optimizer=False)
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=_plain))
    plots.plot_history(metrics["history"], out / CURVE_FILE)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def load_trained_model(path: str | os.PathLike) -> keras.Model:
    """Loads what `keras-bnn-af train` saved: a run folder, `.h5` or SavedModel.

    The binarizers are registered (this module imports
    `keras_bnn_af.quantizers`), so no `custom_objects` are needed.

    # Raises
        ValueError: the path does not exist, or holds no loadable Keras model.
    """
    source = Path(path)
    if not source.exists():
        raise ValueError(
            f"Model {str(source)!r} does not exist. Expected a run folder written by "
            f"`keras-bnn-af train` (holding {MODEL_FILE}), a .h5 file or a "
            "SavedModel folder."
        )
    if source.is_dir() and (source / MODEL_FILE).is_file():
        source = source / MODEL_FILE
    elif source.is_dir() and not (source / "saved_model.pb").is_file():
        raise ValueError(
            f"Folder {str(source)!r} holds neither {MODEL_FILE} nor saved_model.pb. "
            "Expected a run folder written by `keras-bnn-af train` or a SavedModel "
            "folder."
        )
    try:
        model = keras.models.load_model(source, compile=False)
    except Exception as error:  # h5py, protobuf and Keras raise many types
        raise ValueError(
            f"Cannot load {str(source)!r} as a Keras model ({type(error).__name__}: "
            f"{str(error)[:200]}). Expected a .h5 file or SavedModel saved by Keras."
        ) from None
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"{str(source)!r} loads as {type(model).__name__}, not a Keras model. "
            "Expected a model saved with `model.save`."
        )
    return model


def run_dataset(path: str | os.PathLike) -> str | None:
    """The dataset a `keras-bnn-af train` run folder was trained on, if known.

    Read from the run's `metrics.json` (`config.dataset`); None for anything
    else (a model file, a folder without metrics, a dataset name `data` does
    not know).
    """
    metrics = Path(path) / METRICS_FILE
    if not metrics.is_file():
        return None
    try:
        name = json.loads(metrics.read_text())["config"]["dataset"]
        data.check_name(name)
    except (ValueError, KeyError, TypeError):
        return None
    return name
