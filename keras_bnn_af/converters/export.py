r"""Verified export to a Larq Compute Engine `.tflite` file, with a report.

```python
report = export_lce(model, "model.tflite", verify_with="mnist")
print(report.to_markdown())
report.top1_agreement, report.op_counts["LceBconv2d"], report.size_ratio
```

`export_lce` converts a Keras model with LCE's converter, runs the result in
LCE's interpreter next to the Keras model on the same samples (`verify`), and
writes the file only once the two agree. Its `ExportReport` (`report`) says
what LCE made of the model: the operator histogram, which binary layers LCE
left in float (`diagnose`, with the cause and the fix), the share of binary
MACs (`keras_bnn_af.macs`), the threshold folds (`folding`), and the file size
against the same architecture in float32 (`twins`).
"""

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_bnn_af import macs
from keras_bnn_af._errors import did_you_mean
from keras_bnn_af._files import check_output_file
from keras_bnn_af._keras import keras
from keras_bnn_af.converters.diagnose import FloatConvError, find_float_convs
from keras_bnn_af.converters.folding.thresholds import ThresholdFold, fold_thresholds
from keras_bnn_af.converters.ops import op_counts as count_ops
from keras_bnn_af.converters.report import ExportReport, op_histogram
from keras_bnn_af.converters.twins import convert_float32, float32_twin, sign_twin
from keras_bnn_af.converters.verify import (
    DEFAULT_SAMPLES,
    DEFAULT_TOLERANCE,
    VerificationError,
    compare,
    verification_samples,
)
from keras_bnn_af.models import all_layers, binary_convolutions, has_binary_input

__all__ = ["ON_FLOAT_CONV", "ON_MISMATCH", "Latency", "export_lce"]

#: `on_float_conv` choices: what they do.
ON_FLOAT_CONV = {
    "warn": "warn, and write the file",
    "raise": "raise FloatConvError, and write nothing",
}
#: `on_mismatch` choices: what they do.
ON_MISMATCH = {
    "raise": "raise VerificationError, and write nothing",
    "warn": "warn, and write the file",
}
#: Times named flatbuffers side by side: name -> median milliseconds.
Latency = Callable[[Mapping[str, bytes]], Mapping[str, float]]
#: The names `export_lce` gives `latency`.
MODEL, SIGN_TWIN = "model", "ste_sign twin"


def export_lce(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    verify_with: Any = None,
    num_samples: int | None = DEFAULT_SAMPLES,
    tolerance: float = DEFAULT_TOLERANCE,
    on_float_conv: str = "warn",
    on_mismatch: str = "raise",
    overwrite: bool = False,
    float32_twin_size: bool = True,
    fold: bool = True,
    latency: Latency | None = None,
    progress: bool = False,
) -> ExportReport:
    r"""Converts `model` with LCE, verifies the result and writes the `.tflite`.

    **Inference.** LCE's converter saves the model and traces it with
    `training=False`, and the Keras side of the verification is `model.predict`
    (also `training=False`). Binarizers that differ between training and
    inference therefore export their inference form with no preparation: a
    `SelfBinarizing` quantizer exports as the exact `larq.math.sign(x)` whatever
    its sharpness (not `tanh(v x)`), a dithered or noisy binarizer without its
    training noise. The tests check this against `model(x, training=True)`.

    **Verification.** Both models run on the samples; the report records the
    top-1 agreement (\\(\arg\max\\) over the last axis) and
    \\(\max |y_\text{Keras} - y_\text{TFLite}|\\). A sample agrees if both
    models pick the same top-1 class and differ by at most `tolerance` (default
    `1e-3`, for logits or probabilities of order 1; float32 summation order
    alone gives about 1e-5). The one exception is a *rounding tie*: LCE folds a
    BatchNorm into the binary threshold and rounds differently from Keras, so a
    binarizer input within a few float32 ulps of its threshold (measured here:
    8.9e-9 in activations of order 1) can binarize to the other sign, and one
    flipped bit moves the output of a random network by about 0.1. A differing
    sample is such a tie only if the Keras model, re-run with those inputs
    binarized to chosen sides, reproduces both its own output and the
    interpreter's (`keras_bnn_af.converters.ties`; `report.tied_samples` says
    which inputs, how far from the threshold, and which way each side went);
    also if only the top-1 class differs, by scores within `tolerance`. The
    export passes with no other differing sample and at most `MAX_TIE_SHARE`
    (20 %) of the samples as ties (see `ExportReport.allowed_ties`);
    `max_abs_diff` and `top1_agreement` still count every sample. LCE's
    interpreter runs with `num_threads=1`; if its default x86 kernels cannot
    run the model (grouped binary convs), the reference
    binary conv kernels are used and the report says so.

    **Threshold folding.** With `fold=True`, binarizers that are a per-channel
    threshold \\(\operatorname{sign}(x - t)\\) (RSign, GAAF with a monotone AF)
    are exported as a plain sign with \\(t\\) moved into the BatchNorm before
    them (`fold_thresholds`), so LCE fuses them like `ste_sign`. The folded
    model must give the same top-1 class as `model` on every verification
    sample, else the export falls back to the unfolded model and warns;
    `report.threshold_folds` lists folded and unfoldable layers with reasons.

    # Arguments
        model: a built `keras.Model` with one input and one output.
        path: the `.tflite` file to write, in an existing folder (a missing
            folder is an error, checked before converting).
        verify_with: the verification samples: None (`num_samples` seeded
            standard-normal inputs shaped for the model), a dataset name
            (`"mnist"`, `"mnist1d"`, `"tfds:<name>"`: the first `num_samples`
            test examples, scaled as in training), a NumPy array of inputs, or a
            `tf.data.Dataset` of `x` or `(x, y)` batches. Arrays and datasets are
            used whole.
        num_samples: sample count for None or a dataset name; None with a
            dataset name takes the whole test split.
        tolerance: the largest |Keras - TFLite| accepted on a sample.
        on_float_conv: when LCE leaves a binary layer in float: `"warn"` (warn
            and write the file) or `"raise"` (`FloatConvError`).
        on_mismatch: when verification fails: `"raise"` (`VerificationError`)
            or `"warn"` (warn and write the file anyway).
        overwrite: replace an existing `path`.
        float32_twin_size: measure `float32_twin_size_bytes` (costs one
            conversion).
        fold: fold threshold binarizers (see above).
        latency: None, or a callable that times named flatbuffers side by side
            on this host and returns the median milliseconds per name, e.g.
            `keras_bnn_af.benchmarks.median_latencies`. It gets the file
            (`"model"`) and the same model with `ste_sign` binarizers
            (`"ste_sign twin"`), for `af_latency_ratio` (costs a conversion and
            the timing).
        progress: report the interpreter's pass over the verification samples
            (a bar on a terminal, a few lines otherwise; `keras_bnn_af.progress`).

    # Returns
        An `ExportReport`.

    # Raises
        ValueError: `model` is not a Keras model, an option is not one of its
            values, `path` cannot be written (its folder is missing, is a file
            or is not writable), or the samples do not fit the model. Checked
            before converting.
        FileExistsError: `path` exists and `overwrite` is False.
        VerificationError: the interpreter disagrees with Keras and
            `on_mismatch="raise"`. Nothing is written.
        FloatConvError: `on_float_conv="raise"` and some binary layer stays
            float. Nothing is written.
    """
    import larq_compute_engine as lce

    _check_model(model)
    _check_options(tolerance, on_float_conv, on_mismatch, latency)
    out = _check_output_path(path, overwrite=overwrite)
    inputs, labels, source = verification_samples(
        model, verify_with, num_samples=num_samples
    )
    keras_outputs = np.asarray(model.predict(inputs, verbose=0))
    exported, folds, fold_warnings = (
        _folded(model, inputs, keras_outputs) if fold else (model, [], [])
    )
    flatbuffer = lce.convert_keras_model(exported)
    counts = count_ops(flatbuffer)
    float_convs = find_float_convs(model, counts)
    counted = macs.layer_macs(model)
    twin_size, twin_warnings = _twin_size(model) if float32_twin_size else (None, [])
    report = ExportReport(
        path=out,
        tolerance=float(tolerance),
        samples=len(inputs),
        samples_source=source,
        op_counts=op_histogram(counts),
        binary_convs_expected=len(binary_convolutions(model)),
        float_convs=float_convs,
        binary_mac_share=macs.binary_share(counted),
        lce_binary_mac_share=macs.binary_share(
            counted, float_layers={conv.layer for conv in float_convs}
        ),
        size_bytes=len(flatbuffer),
        float32_twin_size_bytes=twin_size,
        threshold_folds=folds,
        **compare(
            model,
            keras_outputs,
            flatbuffer,
            inputs,
            labels,
            tolerance,
            progress=progress,
        ),
        **(_latencies(latency, flatbuffer, model) if latency else {}),
    )
    _warn(report, _model_warnings(model) + fold_warnings + twin_warnings)
    _check_report(report, on_float_conv=on_float_conv, on_mismatch=on_mismatch)
    _write(out, flatbuffer)
    return report


def _latencies(latency: Latency, flatbuffer: bytes, model) -> dict[str, float]:
    import larq_compute_engine as lce

    twin = lce.convert_keras_model(sign_twin(model))
    timed = latency({MODEL: flatbuffer, SIGN_TWIN: twin})
    try:
        return {
            "latency_ms": float(timed[MODEL]),
            "sign_twin_latency_ms": float(timed[SIGN_TWIN]),
        }
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"latency returned {timed!r:.200}; expected median milliseconds for "
            f"{MODEL!r} and {SIGN_TWIN!r}, e.g. {{{MODEL!r}: 1.2, {SIGN_TWIN!r}: "
            "1.1}. Return a mapping with a number for each name it was given."
        ) from None


def _folded(
    model, inputs, keras_outputs
) -> tuple[keras.Model, list[ThresholdFold], list[str]]:
    """The threshold-folded model if it keeps every sample's top-1, else `model`."""
    folded, folds = fold_thresholds(model)
    if folded is model:
        return model, folds, []
    expected = keras_outputs.argmax(-1)
    changed = int(
        np.sum(np.asarray(folded.predict(inputs, verbose=0)).argmax(-1) != expected)
    )
    if not changed:
        return folded, folds, []
    reason = (
        f"folding changed the top-1 class of {changed} of {len(inputs)} "
        "verification samples, so the model was exported unfolded"
    )
    unfolded = [
        ThresholdFold(fold.layer, fold.quantizer, False, reason=reason)
        if fold.folded
        else fold
        for fold in folds
    ]
    return model, unfolded, [f"Threshold folding not applied: {reason}."]


def _twin_size(model: keras.Model) -> tuple[int | None, list[str]]:
    """The float32 twin's TFLite size, or None and the reason."""
    try:
        twin = float32_twin(model)
    except ValueError as error:
        return None, [f"No float32 twin size: {error}"]
    return len(convert_float32(twin)), []


# --- the outcome ---------------------------------------------------------------------


def _check_report(report: ExportReport, *, on_float_conv: str, on_mismatch: str):
    """Raises or warns, as the options say, for a mismatch and for float convs."""
    if not report.verified:
        if on_mismatch == "raise":
            raise VerificationError(_mismatch_message(report, "raise"), report)
        _warn(report, [_mismatch_message(report, "warn")])
    if report.float_convs:
        if on_float_conv == "raise":
            raise FloatConvError(_float_conv_message(report, "raise"), report)
        _warn(report, [_float_conv_message(report, "warn")])


def _mismatch_message(report: ExportReport, action: str) -> str:
    figures = (
        f"LCE export does not match Keras on {report.samples} samples "
        f"({report.samples_source}): top-1 agreement {report.top1_agreement:.2%}, "
        f"max |Keras - TFLite| {report.max_abs_diff:.3g}, {report.mismatches} "
        f"differing samples beyond {len(report.rounding_ties)} rounding ties"
        f"{_unexplained_text(report)}; expected every sample to agree within "
        f"{report.tolerance:g} (at most {report.allowed_ties} rounding ties)."
    )
    look = "Look for a layer LCE mis-handles (see report.op_counts and "
    if action == "raise":
        return (
            f"{figures} Nothing was written to {str(report.path)!r}. {look}"
            "report.float_convs), or pass on_mismatch='warn' (--allow-mismatch) "
            "to write it anyway."
        )
    return f"{figures} Written anyway (on_mismatch='warn'). {look}report.float_convs)."


def _unexplained_text(report: ExportReport) -> str:
    unexplained = [tied.sample for tied in report.tied_samples if not tied.explained]
    if not unexplained:
        return ""
    return (
        f" ({len(unexplained)} of them have binarizer inputs at a threshold, but "
        "no side chosen for those reproduces LCE's output: see report.tied_samples)"
    )


def _float_conv_message(report: ExportReport, action: str) -> str:
    names = ", ".join(f"{conv.layer} ({conv.reason})" for conv in report.float_convs)
    found = (
        f"LCE left {len(report.float_convs)} binary layer(s) as float ops: {names} "
        "Expected every binary layer to become a binary LCE op."
    )
    if action == "raise":
        fixes = " ".join(f"{conv.layer}: {conv.fix}" for conv in report.float_convs)
        return (
            f"on_float_conv='raise' (--strict), and {found} Nothing was written to "
            f"{str(report.path)!r}. Apply the fixes (report.float_convs): {fixes} "
            "Or pass on_float_conv='warn' (leave out --strict) to write it anyway."
        )
    return (
        f"{found} Apply the fixes in report.float_convs "
        "(on_float_conv='raise' refuses such an export)."
    )


def _warn(report: ExportReport, messages: Iterable[str]) -> None:
    for message in messages:
        report.warnings.append(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def _model_warnings(model: keras.Model) -> list[str]:
    if any(has_binary_input(layer) for layer in all_layers(model)):
        return []
    return [
        f"Model {model.name!r} has no binary layer (no Larq layer with a 1-bit "
        "input quantizer), so the export holds no binary LCE op and runs in "
        "float. Expected a BNN, e.g. keras_bnn_af.models.build('binarynet')."
    ]


# --- arguments -----------------------------------------------------------------------


def _check_model(model: Any) -> None:
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"export_lce needs a keras.Model, got {type(model).__name__} "
            f"({model!r:.80}). Pass the model itself, e.g. "
            "`keras_bnn_af.runs.load_trained_model('runs/mnist')`."
        )
    if not model.built or len(model.inputs or []) != 1 or len(model.outputs or []) != 1:
        raise ValueError(
            f"export_lce verifies models with one input and one output; model "
            f"{model.name!r} has {len(model.inputs or [])} inputs and "
            f"{len(model.outputs or [])} outputs. Export a functional or Sequential "
            "model with a single input and a single output."
        )


def _check_options(tolerance, on_float_conv, on_mismatch, latency) -> None:
    if isinstance(tolerance, bool) or not (
        isinstance(tolerance, int | float) and 0 <= tolerance < float("inf")
    ):
        raise ValueError(
            f"tolerance must be a finite number >= 0, got {tolerance!r}. Pass e.g. "
            f"tolerance={DEFAULT_TOLERANCE}."
        )
    _check_choice("on_float_conv", on_float_conv, ON_FLOAT_CONV)
    _check_choice("on_mismatch", on_mismatch, ON_MISMATCH)
    if latency is not None and not callable(latency):
        raise ValueError(
            f"latency must be None or a callable that times named flatbuffers, got "
            f"{latency!r:.80}. Pass latency=keras_bnn_af.benchmarks.median_latencies "
            "to time the file against its ste_sign twin, or leave it out."
        )


def _check_choice(name: str, value: Any, choices: Mapping[str, str]) -> None:
    if isinstance(value, str) and value in choices:
        return
    hint = did_you_mean(value, choices) if isinstance(value, str) else ""
    expected = " or ".join(f"{key!r} ({what})" for key, what in choices.items())
    raise ValueError(
        f"{name}={value!r} is not an option; expected {expected}.{hint} Pass "
        f"e.g. {name}={next(iter(choices))!r}."
    )


def _check_output_path(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuses an existing file (unless `overwrite`) and a path it cannot write."""
    out = check_output_file(path, "path")
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"{str(out)!r} already exists. Pass another output path, or "
            "overwrite=True (--overwrite) to replace it."
        )
    return out


def _write(out: Path, flatbuffer: bytes) -> None:
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    partial.write_bytes(flatbuffer)
    partial.replace(out)  # atomic: never a half-written model at `out`
