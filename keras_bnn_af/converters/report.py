"""What an LCE export produced: `ExportReport`, as JSON and as markdown.

```python
report.to_json()["binary_mac_share"], report.verified
print(report.to_markdown())
write_report(report, "export.json")
```
"""

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from keras_bnn_af._files import check_output_file
from keras_bnn_af.converters.diagnose import FloatConv
from keras_bnn_af.converters.folding.thresholds import ThresholdFold
from keras_bnn_af.converters.ties import TiedSample
from keras_bnn_af.converters.verify import allowed_ties

__all__ = [
    "DERIVED",
    "ELEMENTWISE_OPS",
    "KEY_OPS",
    "ExportReport",
    "op_histogram",
    "write_report",
]

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

#: The derived figures (properties) `ExportReport.to_json` adds to its fields.
DERIVED = (
    "verified",
    "allowed_ties",
    "binary_convs_found",
    "elementwise_ops",
    "folded_layers",
    "unfoldable_layers",
    "af_latency_ratio",
    "size_ratio",
)


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
            rounding tie: binarizer inputs within rounding error of their
            threshold (which LCE, folding BatchNorm into the threshold, may
            binarize to the other sign) whose flip in Keras reproduces the
            interpreter's output, or two top scores within `tolerance`.
        tied_samples: every differing sample with binarizer inputs at a
            threshold (`keras_bnn_af.converters.ties.TiedSample`): which inputs,
            how far from the threshold, and which flips explain it, if any.
        mismatches: samples that differ (top-1, or by more than `tolerance`)
            for any other reason, tied but unexplained ones included.
        samples: number of verification samples.
        samples_source: where they came from, e.g. `"mnist test[:256]"`.
        op_counts: operator histogram of the flatbuffer (every `KEY_OPS` entry
            present, 0 when absent).
        binary_convs_expected: `QuantConv2D` layers with an input quantizer.
        float_convs: binary layers LCE left in float (see the module docstring).
        binary_mac_share: binary MACs / all MACs (`keras_bnn_af.macs`: as
            `lq.models.ModelProfile` counts them, without the MACs Larq
            attributes to quantizer-owned weights such as an RSign threshold
            or a GAAF scale); `metrics.json`'s `binary_mac_ratio` is the same.
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
            of the same model with every binarizer replaced by `ste_sign`, as
            timed by `export_lce(..., latency=...)`; None without it.
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
    tied_samples: list[TiedSample] = field(default_factory=list)
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
        """At most `MAX_TIE_SHARE` (20 %) of the samples, rounded down, may be
        ties (`keras_bnn_af.converters.verify.allowed_ties`)."""
        return allowed_ties(self.samples)

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
        """A JSON-serializable dict of every field and every `DERIVED` figure."""
        names = [f.name for f in fields(self)] + list(DERIVED)
        return {name: _plain(getattr(self, name)) for name in names}

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
        if self.tied_samples:
            lines += ["", "**Binarizer inputs at a threshold**", ""]
            lines += [f"- {_tied_text(tied)}" for tied in self.tied_samples]
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


def _tied_text(tied: TiedSample) -> str:
    def where(tie) -> str:
        return (
            f"`{tie.layer}` input {list(tie.index)} = {tie.value:.3g} "
            f"({tie.ulps:g} ulps from its threshold)"
        )

    if tied.explained:
        flips = "; ".join(
            f"{where(tie)}: Keras {keras:+g}, LCE {lce:+g}"
            for tie, (keras, lce) in zip(tied.flipped, tied.binarized, strict=True)
        )
        return (
            f"sample {tied.sample}: a rounding tie, binarized differently at "
            f"{flips}. With that, Keras reproduces LCE's output (max diff "
            f"{tied.max_abs_diff:.3g})."
        )
    shown = "; ".join(where(tie) for tie in tied.candidates[:3])
    more = len(tied.candidates) - 3
    return (
        f"sample {tied.sample}: a mismatch. {len(tied.candidates)} binarizer "
        f"input(s) at a threshold ({shown}{f'; {more} more' if more > 0 else ''}), "
        "but no side chosen for them reproduces both Keras's and LCE's output "
        f"(closest to LCE: max diff {tied.max_abs_diff:.3g})."
    )


def op_histogram(counts: Mapping[str, int]) -> dict[str, int]:
    """`counts` as plain ints, every `KEY_OPS` entry first (0 when absent)."""
    histogram = {name: int(counts.get(name, 0)) for name in KEY_OPS}
    histogram.update((name, int(n)) for name, n in sorted(counts.items()))
    return histogram


def _size_text(size: int) -> str:
    return f"{size:,} bytes ({size / 1024:.1f} KiB)"


def _plain(value: Any) -> Any:
    """`value` as JSON: paths as strings, records through their `to_json`."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def write_report(report: ExportReport, path: str | os.PathLike) -> None:
    """Writes `report.to_json()` to `path` (indented), in an existing folder.

    # Raises
        ValueError: `path` cannot be written (its folder is missing, is a file
            or is not writable).
    """
    out = check_output_file(path, "path")
    try:
        out.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    except OSError as error:
        raise ValueError(
            f"Cannot write the report to {str(out)!r} ({error.strerror or error}). "
            "Pass a report path in a writable folder."
        ) from None
