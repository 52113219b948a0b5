r"""Verification of an LCE flatbuffer against its Keras model, with rounding ties.

```python
inputs, labels, source = verification_samples(model, "mnist", num_samples=256)
figures = compare(model, model.predict(inputs), flatbuffer, inputs, labels, 1e-3)
figures["top1_agreement"], figures["rounding_ties"], figures["mismatches"]
```

Both models run on the same samples. A sample agrees if both pick the same
top-1 class (\\(\arg\max\\) over the last axis) and differ by at most the
tolerance. The one exception is a *rounding tie*: LCE folds a BatchNorm into
the binary threshold and rounds differently from Keras, so a binarizer input
within a few float32 ulps of its threshold (measured here: 8.9e-9 in
activations of order 1) can binarize to the other sign, and one flipped bit
moves the output of a random network by about 0.1. A differing sample is such a
tie only if the Keras model, re-run with some of its binarizer inputs at a
threshold flipped to the other side, reproduces the interpreter's output within
the tolerance (`keras_bnn_af.converters.ties`); also if only the top-1 class
differs, by scores within the tolerance. At most `MAX_TIE_SHARE` of the samples
may be ties (`allowed_ties`).
"""

from typing import TYPE_CHECKING, Any

import numpy as np

from keras_bnn_af import data
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.converters.ties import explain_ties
from keras_bnn_af.progress import track

if TYPE_CHECKING:
    from keras_bnn_af.converters.report import ExportReport

__all__ = [
    "DEFAULT_SAMPLES",
    "DEFAULT_TOLERANCE",
    "MAX_TIE_SHARE",
    "SAMPLE_SEED",
    "VerificationError",
    "allowed_ties",
    "compare",
    "verification_samples",
]

#: Largest max |Keras - TFLite| accepted, for outputs of order 1 (logits or
#: probabilities); float32 accumulation order alone gives about 1e-5 here.
DEFAULT_TOLERANCE = 1e-3
#: Largest share of verification samples that may differ by rounding ties.
MAX_TIE_SHARE = 0.2
#: Verification samples drawn when none are given, or taken from a dataset name.
DEFAULT_SAMPLES = 256
#: The seed of the default standard-normal verification inputs.
SAMPLE_SEED = 0


class VerificationError(ValueError):
    """The TFLite model does not compute what the Keras model computes.

    `report` holds the figures; nothing was written.
    """

    def __init__(self, message: str, report: "ExportReport"):
        super().__init__(message)
        self.report = report


def allowed_ties(samples: int) -> int:
    """At most `MAX_TIE_SHARE` of the samples, rounded down, may be ties.

    Each tie is reproduced by a flipped re-run, yet many of them point at a
    systematic cause rather than rounding: one binary channel whose threshold
    sits at a common accumulator value (measured: 6.6e-6 from the value 0)
    makes many samples ties at once, and a real miscompile shows on tie-free
    samples too (the DitheredSign bias bug changed most of them). So most
    samples must be tie-free and agree.
    """
    return int(samples * MAX_TIE_SHARE)


# --- verification samples ------------------------------------------------------------


def verification_samples(
    model: keras.Model, verify_with: Any, *, num_samples: int | None = DEFAULT_SAMPLES
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The inputs (float32), labels (or None) and a description of the samples.

    See `export_lce` for the accepted `verify_with`.

    # Raises
        ValueError: an unknown kind of samples, no samples, or a shape that does
            not match the model input.
    """
    if num_samples is not None and (
        isinstance(num_samples, bool) or not isinstance(num_samples, int)
    ):
        num_samples = -1
    if num_samples is not None and num_samples < 1:
        raise ValueError(
            f"num_samples must be a positive integer or None, got {num_samples!r}. "
            f"Pass e.g. num_samples={DEFAULT_SAMPLES}."
        )
    labels = None
    if verify_with is None:
        count = num_samples or DEFAULT_SAMPLES
        shape = (count, *(dim or 1 for dim in model.input_shape[1:]))
        rng = np.random.default_rng(SAMPLE_SEED)
        inputs = rng.standard_normal(shape).astype(np.float32)
        source = f"seeded standard-normal inputs, seed {SAMPLE_SEED}"
    elif isinstance(verify_with, str):
        inputs, labels = _dataset_samples(verify_with, num_samples)
        source = f"{verify_with} test[:{len(inputs)}]"
    elif isinstance(verify_with, tf.data.Dataset):
        inputs, labels = _collect(verify_with)
        source = "tf.data.Dataset"
    elif isinstance(verify_with, np.ndarray | tf.Tensor):
        inputs = np.asarray(verify_with)
        source = "array"
    else:
        raise ValueError(
            f"verify_with must be None, a dataset name, a NumPy array or a "
            f"tf.data.Dataset; got {type(verify_with).__name__}. Pass e.g. "
            "verify_with='mnist' or an array of inputs."
        )
    _check_sample_shape(model, inputs, from_dataset=isinstance(verify_with, str))
    return inputs.astype(np.float32), labels, source


def _dataset_samples(name: str, num_samples: int | None):
    data.check_name(name)
    if name.startswith(data.TFDS_PREFIX):
        splits = data.load(name, batch_size=256, max_samples=num_samples)
        return _collect(splits.test)
    arrays = data.load_arrays(name)
    inputs = arrays.x_test[:num_samples]
    return np.asarray(data.scale_images(inputs)), arrays.y_test[:num_samples]


def _collect(dataset: tf.data.Dataset):
    """Concatenates the `x` (and `y`) of every batch of `dataset`."""
    inputs, labels = [], []
    for element in dataset.as_numpy_iterator():
        if isinstance(element, tuple) and len(element) >= 2:
            inputs.append(np.asarray(element[0]))
            labels.append(np.asarray(element[1]))
        else:
            inputs.append(np.asarray(element))
    if not inputs:
        raise ValueError(
            "verify_with is an empty tf.data.Dataset; expected batches of inputs "
            "or (inputs, labels). Pass a dataset with at least one batch."
        )
    if any(batch.ndim == 0 for batch in inputs):
        raise ValueError(
            "verify_with yields scalars; expected batches of model inputs. "
            "Batch the dataset, e.g. `dataset.batch(64)`."
        )
    return np.concatenate(inputs), np.concatenate(labels) if labels else None


def _check_sample_shape(model, inputs: np.ndarray, *, from_dataset: bool) -> None:
    expected = tuple(model.input_shape[1:])
    received = tuple(inputs.shape[1:])
    fits = (
        inputs.ndim == len(expected) + 1
        and len(inputs) > 0
        and all(
            want is None or want == got
            for want, got in zip(expected, received, strict=True)
        )
    )
    if not fits:
        wanted = ", ".join("N" if dim is None else str(dim) for dim in expected)
        raise ValueError(
            f"Verification samples have shape {inputs.shape}, but model "
            f"{model.name!r} takes inputs of shape (N, {wanted}) (N samples). "
            + (
                "Verify with the dataset the model was trained on."
                if from_dataset
                else "Pass samples shaped like the model input, e.g. add the "
                "channel axis with x[..., None], or batch a dataset of single "
                "examples."
            )
        )


# --- comparison ----------------------------------------------------------------------


def compare(
    model,
    keras_outputs,
    flatbuffer: bytes,
    inputs,
    labels,
    tolerance,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Top-1 agreement, max |difference|, ties (explained or not) and
    mismatches (`ExportReport` fields), and the accuracies when `labels` fit.
    `progress` reports the interpreter's pass over the samples
    (`keras_bnn_af.progress.track`)."""
    lce_outputs, interpreter = _run_interpreter(flatbuffer, inputs, progress)
    lce_outputs = lce_outputs.reshape(keras_outputs.shape)
    keras_top1 = keras_outputs.argmax(-1)
    lce_top1 = lce_outputs.argmax(-1)
    diff = np.abs(keras_outputs - lce_outputs).reshape(len(inputs), -1).max(-1)
    agree = (keras_top1 == lce_top1).reshape(len(inputs), -1).all(-1)
    close = diff <= tolerance
    differing = np.flatnonzero(~close)
    tied = explain_ties(model, inputs, keras_outputs, lce_outputs, differing, tolerance)
    ties = [sample.sample for sample in tied if sample.explained]
    ties += [int(i) for i in np.flatnonzero(close & ~agree)]  # top-1 ties
    result = {
        "top1_agreement": float(np.mean(keras_top1 == lce_top1)),
        "max_abs_diff": float(diff.max()),
        "rounding_ties": sorted(ties),
        "tied_samples": tied,
        "mismatches": int(np.sum(~(agree & close))) - len(ties),
        "interpreter": interpreter,
    }
    if labels is not None and labels.shape == keras_top1.shape:
        result["keras_accuracy"] = float(np.mean(keras_top1 == labels))
        result["lce_accuracy"] = float(np.mean(lce_top1 == labels))
    return result


def _run_interpreter(
    flatbuffer: bytes, inputs, progress: bool = False
) -> tuple[np.ndarray, str]:
    """LCE's outputs, with its default kernels or, failing that, the reference ones.

    The optimized x86 kernels reject grouped binary convs ("not supported with
    this kernel"); the reference kernels run them. The interpreter takes one
    sample at a time, so with `progress` it is handed them through `track`.
    """
    import larq_compute_engine as lce

    def predict(interpreter) -> np.ndarray:
        samples = track(inputs, "verifying on LCE's interpreter", enabled=progress)
        return np.asarray(interpreter.predict(samples))

    try:
        return predict(lce.testing.Interpreter(flatbuffer, num_threads=1)), "default"
    except RuntimeError:
        interpreter = lce.testing.Interpreter(
            flatbuffer, num_threads=1, use_reference_bconv=True
        )
        return predict(interpreter), "use_reference_bconv"
