r"""Verified export to a Larq Compute Engine `.tflite` file, with a report.

```python
report = export_lce(model, "model.tflite", verify_with="mnist")
print(report.to_markdown())
report.top1_agreement, report.op_counts["LceBconv2d"], report.size_ratio
```

`export_lce` converts a Keras model with LCE's converter, runs the result in
LCE's interpreter next to the Keras model on the same samples, and writes the
file only once the two agree. Its `ExportReport` says what LCE made of the
model: the operator histogram, which binary layers LCE left in float
(`float_convs`, with the cause and the fix), the share of binary MACs, and the
file size against the same architecture in float32.

**Silent float convs.** A `QuantConv2D` whose input quantizer is 1-bit is meant
to become one `LceBconv2d`. LCE 0.16 (target `"arm"`) leaves it as a float
`CONV_2D`, without any message, when (each checked with LCE here):

- the input quantizer's forward pass does not end in `larq.math.sign(...)` or
  `tf.where(cond, 1.0, -1.0)` (e.g. a function returning `tf.sign(x)`);
- the input quantizer is multi-bit (e.g. `dorefa_quantizer`);
- the quantized kernel is not \\(\pm s_o\\) per output channel \\(o\\) (within
  LCE's 0.5 %): no kernel quantizer, a multi-bit one, or a `tf.sign` that maps a
  zero weight to 0;
- `padding="same"` with a `pad_values` other than 0.0 or 1.0 (also for 1x1
  kernels). `pad_values=0.0` is *not* such a case: LCE still builds an
  `LceBconv2d` ("same-zero" padding on the ARM target), but the binary conv
  before it loses its bit-packed output (one more `LceQuantize`);
- `groups > 1` with a number of input channels per group that is not a multiple
  of 32.

Other binary layers never become binary ops: `QuantDense` (LCE:
`LceQuantize -> LceDequantize -> FULLY_CONNECTED`), `QuantDepthwiseConv2D`,
`QuantSeparableConv2D`, `QuantConv1D`, `QuantConv3D` and the transposed convs;
they are listed too, with the usual rewrite.
"""

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import larq as lq
import numpy as np

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.converters.folding import ThresholdFold, fold_thresholds, sign_twin
from keras_bnn_af.converters.ops import op_counts as count_ops
from keras_bnn_af.models import all_layers, binary_convolutions

__all__ = [
    "ExportReport",
    "FloatConv",
    "FloatConvError",
    "VerificationError",
    "export_lce",
    "find_float_convs",
    "float32_twin",
    "load_trained_model",
    "run_dataset",
    "verification_samples",
    "write_report",
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
#: Operators every report lists, with 0 when absent.
KEY_OPS = (
    "LceBconv2d",
    "LceQuantize",
    "LceDequantize",
    "LceBMaxPool2d",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
)
#: Float elementwise TFLite operators: what an activation function before the
#: sign leaves between binary convs (an `ste_sign` network has none of them).
ELEMENTWISE_OPS = frozenset(
    (
        "ABS ADD CAST CEIL COS DIV ELU EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD GELU "
        "GREATER GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND "
        "LOGICAL_NOT LOGICAL_OR LOGISTIC MAXIMUM MINIMUM MUL NEG NOT_EQUAL POW PRELU "
        "RELU RELU6 RELU_N1_TO_1 ROUND RSQRT SELECT SELECT_V2 SIGN SIN SQRT SQUARE "
        "SQUARED_DIFFERENCE SUB TANH"
    ).split()
)
_QUANTIZER_KEYS = (
    "input_quantizer",
    "kernel_quantizer",
    "depthwise_quantizer",
    "pointwise_quantizer",
)
_IDENTITY_OPS = ("Identity", "IdentityN")
_DENSE_FIX = (
    "Replace it with Reshape((1, 1, -1)) -> 1x1 QuantConv2D -> Flatten, as the "
    "classifiers of keras_bnn_af.models do."
)
_DEPTHWISE_FIX = (
    "Keep this layer full precision (no quantizers), or use a QuantConv2D "
    "instead (1x1, or grouped with a multiple of 32 input channels per group)."
)
_CONV1D_FIX = (
    "Reshape the signal to (length, 1, channels) once and use a (k, 1) "
    "QuantConv2D, as keras_bnn_af.models.conv1d does."
)
_OTHER_FIX = (
    "LCE binarizes only QuantConv2D: rewrite the layer as a QuantConv2D, or keep "
    "it full precision."
)
_NOT_CONV2D_FIXES = {
    lq.layers.QuantDense: _DENSE_FIX,
    lq.layers.QuantDepthwiseConv2D: _DEPTHWISE_FIX,
    lq.layers.QuantSeparableConv2D: _DEPTHWISE_FIX,
    lq.layers.QuantSeparableConv1D: _DEPTHWISE_FIX,
    lq.layers.QuantConv1D: _CONV1D_FIX,
}


class VerificationError(ValueError):
    """The TFLite model does not compute what the Keras model computes.

    `report` holds the figures; nothing was written.
    """

    def __init__(self, message: str, report: "ExportReport"):
        super().__init__(message)
        self.report = report


class FloatConvError(ValueError):
    """`strict=True` and LCE left binary layers in float; `report` names them."""

    def __init__(self, message: str, report: "ExportReport"):
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class FloatConv:
    """A binary layer that LCE left as a float op, with the cause and the fix.

    # Attributes
        layer: the Keras layer name (None if the layer could not be identified).
        layer_type: its class name, e.g. `"QuantConv2D"`.
        reason: why LCE did not make it a binary op.
        fix: how to change the model so that it does.
    """

    layer: str | None
    layer_type: str
    reason: str
    fix: str

    def to_json(self) -> dict[str, str | None]:
        return {
            "layer": self.layer,
            "layer_type": self.layer_type,
            "reason": self.reason,
            "fix": self.fix,
        }


@dataclass
class ExportReport:
    r"""What an LCE export produced, and how closely it matches Keras.

    # Attributes
        path: the `.tflite` file (written only if the export succeeded).
        top1_agreement: share of samples where \\(\arg\max\\) over the last axis
            is the same in Keras and in LCE's interpreter.
        max_abs_diff: \\(\max |y_\text{Keras} - y_\text{TFLite}|\\) over all
            samples and outputs.
        tolerance: the largest difference accepted on a sample.
        rounding_ties: indices of the samples that differ only through a
            rounding tie: a binarizer input within rounding error of its
            threshold (which LCE, folding BatchNorm into the threshold, may
            binarize to the other sign), or two top scores within `tolerance`.
        mismatches: samples that differ (top-1, or by more than `tolerance`)
            for any other reason.
        samples: number of verification samples.
        samples_source: where they came from, e.g. `"mnist test[:256]"`.
        op_counts: operator histogram of the flatbuffer (every `KEY_OPS` entry
            present, 0 when absent).
        binary_convs_expected: `QuantConv2D` layers with an input quantizer.
        float_convs: binary layers LCE left in float (see the module docstring).
        binary_mac_share: binary MACs / all MACs, from `lq.models.ModelProfile`
            with the MACs Larq attributes to quantizer-internal weights (an
            RSign threshold, a GAAF scale) left out.
        lce_binary_mac_share: the same without the MACs of `float_convs`: what
            LCE actually runs as binary.
        size_bytes: size of the `.tflite` file.
        float32_twin_size_bytes: size of the same architecture with every
            quantizer replaced by the identity, converted by the standard
            TFLite converter (float32, no optimizations); None if not measured.
        size_ratio: `float32_twin_size_bytes / size_bytes`, or None.
        keras_accuracy, lce_accuracy: top-1 accuracy of each model when the
            samples have labels, else None.
        interpreter: the LCE interpreter options used for verification.
        threshold_folds: one `ThresholdFold` per binary layer whose input
            quantizer is not a plain sign: folded into a BatchNorm or a
            threshold, or left as it is and why (see `fold_thresholds`).
        latency_ms, sign_twin_latency_ms: host latency (median, LCE's Python
            interpreter, fastest kernels, measured side by side) of the file and
            of the same model with every binarizer replaced by `ste_sign`; None
            unless `export_lce(..., latency=True)`.
        af_latency_ratio: `latency_ms / sign_twin_latency_ms`, the inference
            cost of the binarizers, or None.
        verified: no mismatch, and at most `allowed_ties` rounding ties.
        warnings: anything the caller should know (also issued as warnings).
    """

    path: Path
    top1_agreement: float
    max_abs_diff: float
    tolerance: float
    samples: int
    samples_source: str
    op_counts: dict[str, int]
    binary_convs_expected: int
    float_convs: list[FloatConv]
    binary_mac_share: float
    lce_binary_mac_share: float
    size_bytes: int
    float32_twin_size_bytes: int | None
    rounding_ties: list[int] = field(default_factory=list)
    mismatches: int = 0
    keras_accuracy: float | None = None
    lce_accuracy: float | None = None
    interpreter: str = "default"
    threshold_folds: list[ThresholdFold] = field(default_factory=list)
    latency_ms: float | None = None
    sign_twin_latency_ms: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def allowed_ties(self) -> int:
        """At most `MAX_TIE_SHARE` of the samples, rounded down, may be ties.

        A tie is an explanation, not a proof: a sample with some binarizer
        input at its threshold could also differ for a real reason. What LCE
        mis-handles shows on tie-free samples too (the DitheredSign bias bug
        changed most of them), so most samples must be tie-free and agree.
        One binary channel whose threshold sits at a common accumulator value
        (measured: 6.6e-6 from the value 0) makes many samples ties at once.
        """
        return int(self.samples * MAX_TIE_SHARE)

    @property
    def verified(self) -> bool:
        """No mismatch beyond rounding ties, and at most `allowed_ties` of those."""
        return self.mismatches == 0 and len(self.rounding_ties) <= self.allowed_ties

    @property
    def folded_layers(self) -> list[str]:
        """Binary layers whose binarizer was exported as a plain sign."""
        return [fold.layer for fold in self.threshold_folds if fold.folded]

    @property
    def unfoldable_layers(self) -> list[str]:
        """Binary layers whose binarizer LCE runs as it is (float work)."""
        return [fold.layer for fold in self.threshold_folds if not fold.folded]

    @property
    def af_latency_ratio(self) -> float | None:
        if not (self.latency_ms and self.sign_twin_latency_ms):
            return None
        return self.latency_ms / self.sign_twin_latency_ms

    @property
    def size_ratio(self) -> float | None:
        if not self.float32_twin_size_bytes:
            return None
        return self.float32_twin_size_bytes / self.size_bytes

    @property
    def binary_convs_found(self) -> int:
        """Number of `LceBconv2d` operators in the flatbuffer."""
        return self.op_counts.get("LceBconv2d", 0)

    @property
    def elementwise_ops(self) -> dict[str, int]:
        """The float elementwise operators of `op_counts` (see `ELEMENTWISE_OPS`)."""
        return {
            name: count
            for name, count in sorted(self.op_counts.items())
            if name in ELEMENTWISE_OPS and count
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable dict of every field and derived figure."""
        return {
            "path": str(self.path),
            "top1_agreement": self.top1_agreement,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "verified": self.verified,
            "mismatches": self.mismatches,
            "rounding_ties": list(self.rounding_ties),
            "allowed_ties": self.allowed_ties,
            "samples": self.samples,
            "samples_source": self.samples_source,
            "keras_accuracy": self.keras_accuracy,
            "lce_accuracy": self.lce_accuracy,
            "interpreter": self.interpreter,
            "op_counts": dict(self.op_counts),
            "elementwise_ops": self.elementwise_ops,
            "binary_convs_expected": self.binary_convs_expected,
            "binary_convs_found": self.binary_convs_found,
            "float_convs": [conv.to_json() for conv in self.float_convs],
            "threshold_folds": [fold.to_json() for fold in self.threshold_folds],
            "folded_layers": self.folded_layers,
            "unfoldable_layers": self.unfoldable_layers,
            "latency_ms": self.latency_ms,
            "sign_twin_latency_ms": self.sign_twin_latency_ms,
            "af_latency_ratio": self.af_latency_ratio,
            "binary_mac_share": self.binary_mac_share,
            "lce_binary_mac_share": self.lce_binary_mac_share,
            "size_bytes": self.size_bytes,
            "float32_twin_size_bytes": self.float32_twin_size_bytes,
            "size_ratio": self.size_ratio,
            "warnings": list(self.warnings),
        }

    def to_markdown(self) -> str:
        """A summary table, the operator histogram, float convs and warnings."""
        lines = [f"### LCE export: `{self.path}`", "", "| | |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in self._summary_rows()]
        lines += ["", "| operator | count |", "|---|---:|"]
        lines += [f"| {name} | {count} |" for name, count in self._sorted_ops()]
        if self.float_convs:
            lines += ["", "**Binary layers LCE left in float**", ""]
            lines += [
                f"- `{conv.layer}` ({conv.layer_type}): {conv.reason} Fix: {conv.fix}"
                for conv in self.float_convs
            ]
        if self.threshold_folds:
            lines += ["", "**Threshold folding**", ""]
            lines += [f"- {_fold_text(fold)}" for fold in self.threshold_folds]
        if self.warnings:
            lines += ["", "**Warnings**", ""]
            lines += [f"- {message}" for message in self.warnings]
        return "\n".join(lines) + "\n"

    def _summary_rows(self) -> list[tuple[str, str]]:
        status = "passed" if self.verified else "**FAILED**"
        rows = [
            (
                "verification",
                f"{status} on {self.samples} samples ({self.samples_source}), "
                f"LCE interpreter `{self.interpreter}`",
            ),
            ("top-1 agreement", f"{self.top1_agreement:.2%}"),
            (
                "max abs diff",
                f"{self.max_abs_diff:.3g} (tolerance {self.tolerance:g})",
            ),
            (
                "differing samples",
                f"{self.mismatches} mismatches, {len(self.rounding_ties)} rounding "
                f"ties (at most {self.allowed_ties} allowed)",
            ),
        ]
        if self.keras_accuracy is not None:
            rows.append(
                (
                    "accuracy Keras / LCE",
                    f"{self.keras_accuracy:.2%} / {self.lce_accuracy:.2%}",
                )
            )
        rows += [
            (
                "binary convs",
                f"{self.binary_convs_found} LceBconv2d for "
                f"{self.binary_convs_expected} binary QuantConv2D",
            ),
            (
                "binary MAC share",
                f"{self.binary_mac_share:.2%} (as run by LCE: "
                f"{self.lce_binary_mac_share:.2%})",
            ),
            ("size", _size_text(self.size_bytes)),
        ]
        if self.float32_twin_size_bytes:
            rows.append(
                (
                    "float32 twin",
                    f"{_size_text(self.float32_twin_size_bytes)} "
                    f"({self.size_ratio:.1f}x the LCE file)",
                )
            )
        elementwise = ", ".join(f"{k} {v}" for k, v in self.elementwise_ops.items())
        rows.append(("float elementwise ops", elementwise or "none"))
        if self.af_latency_ratio is not None:
            rows.append(
                (
                    "host latency",
                    f"{self.latency_ms:.3g} ms; {self.af_latency_ratio:.2f}x the same "
                    f"model with ste_sign ({self.sign_twin_latency_ms:.3g} ms)",
                )
            )
        return rows

    def _sorted_ops(self) -> list[tuple[str, int]]:
        key_ops = [(name, self.op_counts.get(name, 0)) for name in KEY_OPS]
        others = sorted(
            (name, count)
            for name, count in self.op_counts.items()
            if name not in KEY_OPS
        )
        return key_ops + others


def _fold_text(fold: ThresholdFold) -> str:
    if not fold.folded:
        return f"`{fold.layer}` ({fold.quantizer}): not folded: {fold.reason}."
    if fold.into == "threshold":
        return (
            f"`{fold.layer}` ({fold.quantizer}): folded into a threshold sign(x - t) "
            f"(no BatchNorm to absorb it: {fold.reason})."
        )
    return f"`{fold.layer}` ({fold.quantizer}): folded into `{fold.into}`."


def export_lce(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    verify_with: Any = None,
    num_samples: int | None = DEFAULT_SAMPLES,
    tolerance: float = DEFAULT_TOLERANCE,
    strict: bool = False,
    allow_mismatch: bool = False,
    overwrite: bool = False,
    float_twin: bool = True,
    fold: bool = True,
    latency: bool = False,
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
    sample is such a tie if, in Keras, some binary layer's input
    \\(a\\) binarizes differently at \\(a \pm 16\,\epsilon_{32} \max|a|\\);
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
        path: the `.tflite` file to write. Missing folders are created.
        verify_with: the verification samples: None (`num_samples` seeded
            standard-normal inputs shaped for the model), a dataset name
            (`"mnist"`, `"mnist1d"`, `"tfds:<name>"`: the first `num_samples`
            test examples, scaled as in training), a NumPy array of inputs, or a
            `tf.data.Dataset` of `x` or `(x, y)` batches. Arrays and datasets are
            used whole.
        num_samples: sample count for None or a dataset name; None with a
            dataset name takes the whole test split.
        tolerance: the largest |Keras - TFLite| accepted on a sample.
        strict: raise `FloatConvError` if any binary layer stays float.
        allow_mismatch: write the file and only warn when verification fails.
        overwrite: replace an existing `path`.
        float_twin: measure `float32_twin_size_bytes` (costs one conversion).
        fold: fold threshold binarizers (see above).
        latency: time the file against its `ste_sign` twin on this host
            (`af_latency_ratio`; costs a conversion and a few seconds).

    # Returns
        An `ExportReport`.

    # Raises
        ValueError: `model` is not a Keras model, `path` cannot be written,
            or the samples do not fit the model. Checked before converting.
        FileExistsError: `path` exists and `overwrite` is False.
        VerificationError: the interpreter disagrees with Keras and
            `allow_mismatch` is False. Nothing is written.
        FloatConvError: `strict` and some binary layer stays float. Nothing is
            written.
    """
    import larq_compute_engine as lce

    _check_model(model)
    if isinstance(tolerance, bool) or not (
        isinstance(tolerance, int | float) and 0 <= tolerance < float("inf")
    ):
        raise ValueError(
            f"tolerance must be a finite number >= 0, got {tolerance!r}. Pass e.g. "
            f"tolerance={DEFAULT_TOLERANCE}."
        )
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
    comparison = _compare(model, keras_outputs, flatbuffer, inputs, labels, tolerance)
    twin_size, twin_warnings = _twin_size(model) if float_twin else (None, [])
    report = ExportReport(
        path=out,
        tolerance=float(tolerance),
        samples=len(inputs),
        samples_source=source,
        op_counts=_histogram(counts),
        binary_convs_expected=len(binary_convolutions(model)),
        float_convs=float_convs,
        **_mac_shares(model, float_convs),
        size_bytes=len(flatbuffer),
        float32_twin_size_bytes=twin_size,
        threshold_folds=folds,
        **comparison,
        **(_latencies(flatbuffer, model) if latency else {}),
    )
    _warn(report, _model_warnings(model) + fold_warnings + twin_warnings)
    _check_report(report, strict=strict, allow_mismatch=allow_mismatch)
    _write(out, flatbuffer)
    return report


def _latencies(flatbuffer: bytes, model: keras.Model) -> dict[str, float]:
    import larq_compute_engine as lce

    from keras_bnn_af.benchmarks import compare_latency

    twin = lce.convert_keras_model(sign_twin(model))
    result = compare_latency({"model": flatbuffer, "ste_sign twin": twin})
    return {
        "latency_ms": result["model"].median_ms,
        "sign_twin_latency_ms": result["ste_sign twin"].median_ms,
    }


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


# --- inputs and outputs --------------------------------------------------------------


def _check_model(model: Any) -> None:
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"export_lce needs a keras.Model, got {type(model).__name__} "
            f"({model!r:.80}). Pass the model itself, e.g. "
            "`keras.models.load_model('run/model.h5')` after `import keras_bnn_af`."
        )
    if not model.built or len(model.inputs or []) != 1 or len(model.outputs or []) != 1:
        raise ValueError(
            f"export_lce verifies models with one input and one output; model "
            f"{model.name!r} has {len(model.inputs or [])} inputs and "
            f"{len(model.outputs or [])} outputs. Export a functional or Sequential "
            "model with a single input and a single output."
        )


def _check_output_path(path: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuses an existing file (unless `overwrite`) and a folder it cannot write."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(
            f"Output path {str(out)!r} is a folder; expected a file name such as "
            f"{str(out / 'model.tflite')!r}."
        )
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"{str(out)!r} already exists. Pass another output path, or "
            "overwrite=True (--overwrite) to replace it."
        )
    folder = out.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(
            f"Cannot write {str(out)!r}: {str(folder)!r} is a file, not a folder. "
            "Pass an output path inside a folder."
        )
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"Cannot write {str(out)!r}: folder {str(folder)!r} is not writable "
            f"({error.strerror or error}). Pass an output path in a writable folder."
        ) from None
    return out


def _write(out: Path, flatbuffer: bytes) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f"{out.name}.{os.getpid()}.partial")
    partial.write_bytes(flatbuffer)
    partial.replace(out)  # atomic: never a half-written model at `out`


def load_trained_model(path: str | os.PathLike) -> keras.Model:
    """Loads what `keras-bnn-af train` saved: a run folder, `.h5` or SavedModel.

    # Raises
        ValueError: the path does not exist, or holds no loadable Keras model.
    """
    import keras_bnn_af  # noqa: F401  (registers the binarizers)
    from keras_bnn_af.training import MODEL_FILE

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
    from keras_bnn_af import data
    from keras_bnn_af.training import METRICS_FILE

    metrics = Path(path) / METRICS_FILE
    if not metrics.is_file():
        return None
    try:
        name = json.loads(metrics.read_text())["config"]["dataset"]
        data.check_name(name)
    except (ValueError, KeyError, TypeError):
        return None
    return name


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
    from keras_bnn_af import data

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


def _compare(
    model, keras_outputs, flatbuffer: bytes, inputs, labels, tolerance
) -> dict[str, Any]:
    lce_outputs, interpreter = _run_interpreter(flatbuffer, inputs)
    lce_outputs = lce_outputs.reshape(keras_outputs.shape)
    keras_top1 = keras_outputs.argmax(-1)
    lce_top1 = lce_outputs.argmax(-1)
    diff = np.abs(keras_outputs - lce_outputs).reshape(len(inputs), -1).max(-1)
    agree = (keras_top1 == lce_top1).reshape(len(inputs), -1).all(-1)
    close = diff <= tolerance
    far = np.flatnonzero(~close)
    ties = _rounding_ties(model, inputs[far], far)
    ties += [int(i) for i in np.flatnonzero(close & ~agree)]  # top-1 ties
    result = {
        "top1_agreement": float(np.mean(keras_top1 == lce_top1)),
        "max_abs_diff": float(diff.max()),
        "rounding_ties": sorted(ties),
        "mismatches": int(np.sum(~(agree & close))) - len(ties),
        "interpreter": interpreter,
    }
    if labels is not None and labels.shape == keras_top1.shape:
        result["keras_accuracy"] = float(np.mean(keras_top1 == labels))
        result["lce_accuracy"] = float(np.mean(lce_top1 == labels))
    return result


def _rounding_ties(model: keras.Model, inputs: np.ndarray, indices) -> list[int]:
    r"""The `indices` of samples where some binarizer input is a rounding tie.

    An element \\(a\\) of a binary layer's input (in Keras) is a tie if
    \\(q(a - \varepsilon) \neq q(a + \varepsilon)\\) for the layer's input
    quantizer \\(q\\) and \\(\varepsilon = 16\,\epsilon_{32} \max |a|\\)
    (the largest input of that layer and sample, \\(\epsilon_{32} = 2^{-23}\\)):
    LCE folds the preceding BatchNorm and bias into a threshold and rounds
    differently, so such an element may binarize to the other sign there.
    """
    if not len(indices):
        return []
    layers = [
        layer
        for layer in model.layers
        if _binary_input(layer) and len(layer.inbound_nodes) == 1
    ]
    if not layers:
        return []
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    activations = probe.predict(inputs, verbose=0)
    if len(layers) == 1:
        activations = [activations]
    tied = np.zeros(len(indices), bool)
    for layer, values in zip(layers, activations, strict=True):
        tied |= _ties(layer.input_quantizer, np.asarray(values, np.float32))
    return [int(i) for i in np.asarray(indices)[tied]]


def _ties(quantizer, values: np.ndarray) -> np.ndarray:
    """Per sample: does some element binarize differently at +-16 ulps of max|a|?"""
    axes = tuple(range(1, values.ndim))
    scale = np.abs(values).max(axis=axes, keepdims=True)
    epsilon = 16 * np.finfo(np.float32).eps * scale
    low = np.asarray(quantizer(tf.constant(values - epsilon)))
    high = np.asarray(quantizer(tf.constant(values + epsilon)))
    return (low != high).any(axis=axes)


def _run_interpreter(flatbuffer: bytes, inputs) -> tuple[np.ndarray, str]:
    """LCE's outputs, with its default kernels or, failing that, the reference ones.

    The optimized x86 kernels reject grouped binary convs ("not supported with
    this kernel"); the reference kernels run them.
    """
    import larq_compute_engine as lce

    try:
        interpreter = lce.testing.Interpreter(flatbuffer, num_threads=1)
        return np.asarray(interpreter.predict(inputs)), "default"
    except RuntimeError:
        interpreter = lce.testing.Interpreter(
            flatbuffer, num_threads=1, use_reference_bconv=True
        )
        return np.asarray(interpreter.predict(inputs)), "use_reference_bconv"


def _check_report(report: ExportReport, *, strict: bool, allow_mismatch: bool) -> None:
    if not report.verified:
        message = (
            f"LCE export does not match Keras on {report.samples} samples "
            f"({report.samples_source}): top-1 agreement "
            f"{report.top1_agreement:.2%}, max |Keras - TFLite| "
            f"{report.max_abs_diff:.3g}, {report.mismatches} differing samples "
            f"beyond {len(report.rounding_ties)} rounding ties; expected every "
            f"sample to agree within {report.tolerance:g} (at most "
            f"{report.allowed_ties} rounding ties). Nothing was written to "
            f"{str(report.path)!r}. Look for a layer LCE mis-handles (see "
            "report.op_counts and report.float_convs), or pass "
            "allow_mismatch=True to write it anyway."
        )
        if not allow_mismatch:
            raise VerificationError(message, report)
        _warn(report, [message])
    if strict and report.float_convs:
        names = ", ".join(
            f"{conv.layer} ({conv.reason})" for conv in report.float_convs
        )
        raise FloatConvError(
            f"strict=True, and LCE left {len(report.float_convs)} binary layer(s) "
            f"as float ops: {names}. Nothing was written to {str(report.path)!r}. "
            "Apply the fixes in report.float_convs, or pass strict=False.",
            report,
        )


def _warn(report: ExportReport, messages: Iterable[str]) -> None:
    for message in messages:
        report.warnings.append(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def _model_warnings(model: keras.Model) -> list[str]:
    if any(_binary_input(layer) for layer in all_layers(model)):
        return []
    return [
        f"Model {model.name!r} has no binary layer (no Larq layer with a 1-bit "
        "input quantizer), so the export holds no binary LCE op and runs in "
        "float. Expected a BNN, e.g. keras_bnn_af.models.build('binarynet')."
    ]


def _histogram(counts: Mapping[str, int]) -> dict[str, int]:
    histogram = {name: int(counts.get(name, 0)) for name in KEY_OPS}
    histogram.update((name, int(n)) for name, n in sorted(counts.items()))
    return histogram


def _size_text(size: int) -> str:
    return f"{size:,} bytes ({size / 1024:.1f} KiB)"


# --- silent float convs --------------------------------------------------------------


def find_float_convs(
    model: keras.Model, op_counts: Mapping[str, int]
) -> list[FloatConv]:
    """The binary layers of `model` that LCE left in float, with cause and fix.

    `op_counts` is the histogram of `model`'s LCE flatbuffer. A `QuantConv2D`
    with an input quantizer is checked for the known causes (module docstring)
    only when there are fewer `LceBconv2d` ops than such layers. If the causes
    found do not account for every missing `LceBconv2d`, the remaining layers
    are converted one at a time to find the rest. Other Larq layers with a
    1-bit input quantizer are always listed (LCE never makes them binary).
    """
    found = [
        _not_conv2d(layer)
        for layer in all_layers(model)
        if _binary_input(layer) and not isinstance(layer, lq.layers.QuantConv2D)
    ]
    convs = binary_convolutions(model)
    missing = len(convs) - op_counts.get("LceBconv2d", 0)
    if missing <= 0:
        return found
    diagnosed = {layer.name: _conv2d_cause(layer) for layer in convs}
    causes = [cause for cause in diagnosed.values() if cause is not None]
    if len(causes) < missing:
        unexplained = [layer for layer in convs if diagnosed[layer.name] is None]
        causes += _probe(unexplained, missing - len(causes))
    order = {layer.name: index for index, layer in enumerate(all_layers(model))}
    return sorted(found + causes, key=lambda conv: order.get(conv.layer, len(order)))


def _binary_input(layer) -> bool:
    quantizer = getattr(layer, "input_quantizer", None)
    return quantizer is not None and getattr(quantizer, "precision", 1) == 1


def _not_conv2d(layer) -> FloatConv:
    kind = type(layer).__name__
    fix = next(
        (fix for cls, fix in _NOT_CONV2D_FIXES.items() if isinstance(layer, cls)),
        _OTHER_FIX,
    )
    return FloatConv(
        layer.name,
        kind,
        f"LCE has no binary kernel for {kind}; it runs LceQuantize -> "
        "LceDequantize -> a float op.",
        fix,
    )


def _conv2d_cause(layer) -> FloatConv | None:
    """The first known reason why LCE keeps this binary QuantConv2D in float."""
    checks = (_input_cause, _kernel_cause, _padding_cause, _groups_cause)
    for check in checks:
        found = check(layer)
        if found is not None:
            reason, fix = found
            return FloatConv(layer.name, type(layer).__name__, reason, fix)
    return None


def _input_cause(layer) -> tuple[str, str] | None:
    quantizer = layer.input_quantizer
    name = _quantizer_name(quantizer)
    precision = getattr(quantizer, "precision", None)
    if precision is not None and precision != 1:
        return (
            f"its input quantizer {name} is {precision}-bit; LCE binarizes only "
            "1-bit inputs.",
            "Use a 1-bit input quantizer such as 'ste_sign', or keep this conv "
            "full precision.",
        )
    ending = _quantizer_ending(quantizer, layer.input_shape)
    if ending is not None and ending not in ("larq.math.sign", "tf.where"):
        return (
            f"its input quantizer {name} ends in `{ending}`, not in "
            "`larq.math.sign` or `tf.where(cond, 1, -1)`, so LCE does not turn "
            "it into LceQuantize.",
            "End the quantizer's forward pass in `lq.math.sign(...)` (which maps "
            "0 to +1), e.g. `lq.quantizers.ste_sign`.",
        )
    return None


def _kernel_cause(layer) -> tuple[str, str] | None:
    fix = (
        "Use kernel_quantizer='ste_sign' (or another sign whose output is +-s per "
        "output channel) with kernel_constraint='weight_clip'."
    )
    quantizer = layer.kernel_quantizer
    if quantizer is None:
        return "it has no kernel quantizer, so its kernel is float.", fix
    precision = getattr(quantizer, "precision", None)
    if precision is not None and precision != 1:
        name = _quantizer_name(quantizer)
        return f"its kernel quantizer {name} is {precision}-bit.", fix
    if not _is_binary_filter(_quantized_kernel(layer)):
        return (
            "its quantized kernel is not +-s per output channel (LCE allows 0.5 % "
            "deviation and s != 0), e.g. `tf.sign` maps a zero weight to 0.",
            fix,
        )
    return None


def _padding_cause(layer) -> tuple[str, str] | None:
    pad_values = float(getattr(layer, "pad_values", 0.0))
    if layer.padding == "same" and pad_values not in (0.0, 1.0):
        return (
            f'padding="same" with pad_values={pad_values:g}; LCE fuses only '
            "pad_values 1.0 (and 0.0, with a correction).",
            "Use pad_values=1.0.",
        )
    return None


def _groups_cause(layer) -> tuple[str, str] | None:
    groups = getattr(layer, "groups", 1)
    channels = layer.input_shape[-1]
    if groups > 1 and channels and (channels // groups) % 32:
        return (
            f"groups={groups} leaves {channels // groups} input channels per "
            "group; LCE's grouped binary conv needs a multiple of 32.",
            "Use groups=1, or a multiple of 32 input channels per group.",
        )
    return None


def _quantizer_name(quantizer) -> str:
    name = getattr(quantizer, "__name__", None) or type(quantizer).__name__
    return repr(name)


def _quantizer_ending(quantizer, input_shape) -> str | None:
    """The op the quantizer's inference output comes from, as LCE matches it.

    `"larq.math.sign"` for `Sign(Sign(x) + c)`, `"tf.where"` for a `Select`, else
    the TensorFlow op type (e.g. `"tf.Sign"`); None if it cannot be traced.
    """
    try:
        spec = tf.TensorSpec(input_shape, tf.float32)
        graph = tf.function(lambda x: quantizer(x)).get_concrete_function(spec)
        tensor = tf.nest.flatten(graph.structured_outputs)[0]
    except Exception:  # an arbitrary user quantizer may fail to trace alone
        return None
    while tensor.op.type in _IDENTITY_OPS:
        index = tensor.value_index if tensor.op.type == "IdentityN" else 0
        tensor = tensor.op.inputs[index]
    op = tensor.op
    if op.type in ("Select", "SelectV2"):
        return "tf.where"
    if op.type == "Sign" and op.inputs[0].op.type in ("Add", "AddV2"):
        if any(t.op.type == "Sign" for t in op.inputs[0].op.inputs):
            return "larq.math.sign"
    return f"tf.{op.type}"


def _quantized_kernel(layer) -> np.ndarray:
    with lq.context.quantized_scope(True):
        return np.asarray(keras.backend.get_value(layer.kernel))


def _is_binary_filter(kernel: np.ndarray) -> bool:
    """LCE's `IsBinaryFilter`: every value is +-|w[0, 0, 0, o]| within 0.5 %."""
    scale = np.abs(kernel[0, 0, 0])
    return bool(
        np.all(scale > 0) and np.all(np.abs(np.abs(kernel) - scale) <= 0.005 * scale)
    )


def _probe(layers: list, missing: int) -> list[FloatConv]:
    """Converts each layer alone with LCE; those without an LceBconv2d are float."""
    import larq_compute_engine as lce

    found = []
    for layer in layers:
        try:
            clone = type(layer).from_config(layer.get_config())
            inputs = keras.Input(layer.input_shape[1:])
            alone = keras.Model(inputs, clone(inputs))
            clone.set_weights(layer.get_weights())
            fused = count_ops(lce.convert_keras_model(alone))["LceBconv2d"] > 0
        except Exception:  # a layer that cannot be rebuilt alone cannot be probed
            continue
        if not fused:
            found.append(
                FloatConv(
                    layer.name,
                    type(layer).__name__,
                    "LCE left it in float when converted on its own, for no known "
                    "cause.",
                    "Simplify its quantizers and padding until it converts to an "
                    "LceBconv2d (see keras_bnn_af.converters.export's docstring).",
                )
            )
    if len(found) < missing:
        found.append(
            FloatConv(
                None,
                "QuantConv2D",
                f"{missing - len(found)} binary QuantConv2D layer(s) became float "
                "convs in the whole model although each one converts to an "
                "LceBconv2d on its own: a pattern between layers blocks fusion.",
                "Look for ops between the quantizer and the conv (e.g. a Reshape) "
                "or a shared quantizer output.",
            )
        )
    return found


# --- MACs and the float32 twin -------------------------------------------------------


def _mac_shares(model: keras.Model, float_convs: list[FloatConv]) -> dict[str, float]:
    """Binary MAC share as Larq profiles it, and as LCE runs it."""
    float_layers = {conv.layer for conv in float_convs}
    binary = total = lce_binary = 0
    for profile in _layer_profiles(lq.models.ModelProfile(model)):
        for bits, macs in _layer_macs(profile):
            total += macs
            if bits == 1:
                binary += macs
                lce_binary += 0 if profile.name in float_layers else macs
    return {
        "binary_mac_share": binary / total if total else 0.0,
        "lce_binary_mac_share": lce_binary / total if total else 0.0,
    }


def _layer_profiles(profile):
    for child in profile.layer_profiles:
        if hasattr(child, "layer_profiles"):
            yield from _layer_profiles(child)
        else:
            yield child


def _layer_macs(profile) -> list[tuple[int, int]]:
    """(precision, MACs) per weight, without quantizer-internal weights."""
    if not profile.op_profiles:  # a layer without MACs
        return []
    owned = {id(w) for w in _quantizer_weights(profile._layer)}
    weights = [p for p in profile.weight_profiles if not p.is_bias()]
    return [
        (op.precision, op.n)
        for weight, op in zip(weights, profile.op_profiles, strict=True)
        if id(weight._weight) not in owned
    ]


def _quantizer_weights(layer) -> list:
    weights = []
    for key in _QUANTIZER_KEYS:
        quantizer = getattr(layer, key, None)
        if isinstance(quantizer, keras.layers.Layer):
            weights += quantizer.weights
    return weights


def float32_twin(model: keras.Model) -> keras.Model:
    """The same architecture and weights with every Larq quantizer set to None.

    Rebuilt from `model.get_config()` with `input_quantizer`, `kernel_quantizer`,
    `depthwise_quantizer` and `pointwise_quantizer` set to None in every layer
    config, and every layer's weights (latent, i.e. real-valued) copied, except
    the quantizers' own weights (an RSign threshold, a sharpness), which the twin
    does not have.

    # Raises
        ValueError: the model cannot be rebuilt from its config (a subclassed
            model) or its weights do not fit the rebuilt layers.
    """
    try:
        config = _without_quantizers(model.get_config())
        twin = type(model).from_config(config)
    except Exception as error:  # Keras raises many types for unrebuildable models
        raise ValueError(
            f"Cannot rebuild model {model.name!r} from its config "
            f"({type(error).__name__}: {error}). Expected a functional or Sequential "
            "model; subclassed models have no float32 twin."
        ) from None
    for original, copy in zip(all_layers(model), all_layers(twin), strict=True):
        owned = {id(w) for w in _quantizer_weights(original)}
        values = [
            value
            for weight, value in zip(
                original.weights, original.get_weights(), strict=True
            )
            if id(weight) not in owned
        ]
        copy.set_weights(values)
    return twin


def _without_quantizers(config: Any) -> Any:
    if isinstance(config, dict):
        return {
            key: None if key in _QUANTIZER_KEYS else _without_quantizers(value)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [_without_quantizers(value) for value in config]
    return config


def _twin_size(model: keras.Model) -> tuple[int | None, list[str]]:
    """The float32 twin's TFLite size, or None and the reason."""
    try:
        twin = float32_twin(model)
    except ValueError as error:
        return None, [f"No float32 twin size: {error}"]
    return len(convert_float32(twin)), []


def convert_float32(model: keras.Model) -> bytes:
    """The model as a float32 TFLite flatbuffer (standard converter, batch size 1).

    The batch is fixed to 1 as in LCE's converter, so that a `Reshape` with a
    -1 gives the following conv a known channel count.
    """
    spec = tf.TensorSpec((1, *model.input_shape[1:]), model.inputs[0].dtype)
    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    return converter.convert()


def write_report(report: ExportReport, path: str | os.PathLike) -> None:
    """Writes `report.to_json()` to `path` (indented), creating its folder.

    # Raises
        ValueError: `path` cannot be written.
    """
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    except OSError as error:
        raise ValueError(
            f"Cannot write the report to {str(out)!r} ({error.strerror or error}). "
            "Pass a report path in a writable folder."
        ) from None
