"""`ExportReport`: its JSON (fields plus derived figures), markdown and file."""

import dataclasses
import json
from pathlib import Path

import pytest

from keras_bnn_af.converters import (
    ExportReport,
    FloatConv,
    ThresholdFold,
    report,
    write_report,
)
from keras_bnn_af.converters.ties import Tie, TiedSample

TIE = Tie("b", (0, 1, 2), 1e-8, 1e-8, 0.05, (1.0, -1.0))
TIE_JSON = {
    "layer": "b",
    "index": [0, 1, 2],
    "value": 1e-8,
    "distance": 1e-8,
    "ulps": 0.05,
    "sides": [1.0, -1.0],
}
JSON_KEYS = {
    "top1_agreement",
    "max_abs_diff",
    "op_counts",
    "size_bytes",
    "float32_twin_size_bytes",
    "size_ratio",
    "float_convs",
    "binary_convs_expected",
    "binary_mac_share",
    "verified",
}


def _report(**changes) -> ExportReport:
    figures = {
        "path": Path("m.tflite"),
        "top1_agreement": 1.0,
        "max_abs_diff": 0.0,
        "tolerance": 1e-3,
        "samples": 8,
        "samples_source": "test",
        "op_counts": {"LceBconv2d": 1},
        "binary_convs_expected": 1,
        "float_convs": [],
        "binary_mac_share": 1.0,
        "lce_binary_mac_share": 1.0,
        "size_bytes": 100,
        "float32_twin_size_bytes": None,
    }
    return ExportReport(**{**figures, **changes})


def test_histogram_shows_binary_ops_and_the_float_ops_an_af_leaves(gaaf_report):
    counts = gaaf_report.op_counts
    assert list(counts)[:7] == list(report.KEY_OPS)  # always present, 0 if absent
    assert counts["LceBconv2d"] == 3
    assert counts["LceQuantize"] == 3  # sin breaks bit-packed bconv -> bconv
    assert counts["LceDequantize"] == counts["DEPTHWISE_CONV_2D"] == 0
    assert counts["CONV_2D"] == counts["FULLY_CONNECTED"] == 1
    assert gaaf_report.elementwise_ops == {"SIN": 3}
    assert "| float elementwise ops | SIN 3 |" in gaaf_report.to_markdown()


def test_report_json_and_markdown(binarynet_report, tmp_path):
    data = binarynet_report.to_json()
    assert set(data) >= JSON_KEYS
    assert json.loads(json.dumps(data)) == data
    assert data["size_ratio"] == data["float32_twin_size_bytes"] / data["size_bytes"]
    assert data["float32_twin_size_bytes"] > data["size_bytes"]
    assert 0.5 < data["binary_mac_share"] <= 1.0
    write_report(binarynet_report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == data
    markdown = binarynet_report.to_markdown()
    assert "| LceBconv2d | 4 |" in markdown and "| LceBMaxPool2d | 2 |" in markdown
    assert "passed on 32 samples (mnist test[:32])" in markdown


def test_json_is_every_field_and_every_derived_figure():
    fields = {field.name for field in dataclasses.fields(ExportReport)}
    properties = {
        name
        for name, value in vars(ExportReport).items()
        if isinstance(value, property)
    }
    assert properties == set(report.DERIVED)  # a new property must be listed
    assert set(_report().to_json()) == fields | properties


def test_json_keys_and_values_are_those_of_the_documented_format():
    """Every key and value as the report wrote them before `to_json` was derived
    from the fields (captured from that code)."""
    full = _report(
        path=Path("out/m.tflite"),
        top1_agreement=0.75,
        max_abs_diff=0.25,
        samples_source="array",
        op_counts={"LceBconv2d": 2, "SIN": 2, "CONV_2D": 1},
        binary_convs_expected=3,
        float_convs=[FloatConv("c", "QuantConv2D", "why.", "fix.")],
        binary_mac_share=0.9,
        lce_binary_mac_share=0.6,
        float32_twin_size_bytes=400,
        rounding_ties=[3],
        tied_samples=[TiedSample(3, (TIE,), (TIE,), ((-1.0, 1.0),), True, 1e-6)],
        mismatches=1,
        keras_accuracy=0.5,
        lce_accuracy=0.25,
        threshold_folds=[
            ThresholdFold("a", "RSign", True, into="batch_norm:bn"),
            ThresholdFold("b", "GAAF", False, reason="no"),
        ],
        latency_ms=3.0,
        sign_twin_latency_ms=2.0,
        warnings=["careful"],
    )
    assert full.to_json() == {
        "path": "out/m.tflite",
        "top1_agreement": 0.75,
        "max_abs_diff": 0.25,
        "tolerance": 0.001,
        "verified": False,
        "mismatches": 1,
        "rounding_ties": [3],
        "tied_samples": [
            {
                "sample": 3,
                "explained": True,
                "max_abs_diff": 1e-6,
                "flipped": [TIE_JSON | {"keras": -1.0, "lce": 1.0}],
                "candidates": [TIE_JSON],
            }
        ],
        "allowed_ties": 1,
        "samples": 8,
        "samples_source": "array",
        "keras_accuracy": 0.5,
        "lce_accuracy": 0.25,
        "interpreter": "default",
        "op_counts": {"LceBconv2d": 2, "SIN": 2, "CONV_2D": 1},
        "elementwise_ops": {"SIN": 2},
        "binary_convs_expected": 3,
        "binary_convs_found": 2,
        "float_convs": [
            {"layer": "c", "layer_type": "QuantConv2D", "reason": "why.", "fix": "fix."}
        ],
        "threshold_folds": [
            {
                "layer": "a",
                "quantizer": "RSign",
                "folded": True,
                "into": "batch_norm:bn",
                "reason": "",
            },
            {
                "layer": "b",
                "quantizer": "GAAF",
                "folded": False,
                "into": None,
                "reason": "no",
            },
        ],
        "folded_layers": ["a"],
        "unfoldable_layers": ["b"],
        "latency_ms": 3.0,
        "sign_twin_latency_ms": 2.0,
        "af_latency_ratio": 1.5,
        "binary_mac_share": 0.9,
        "lce_binary_mac_share": 0.6,
        "size_bytes": 100,
        "float32_twin_size_bytes": 400,
        "size_ratio": 4.0,
        "warnings": ["careful"],
    }


def test_report_is_a_dataclass_with_derived_figures():
    made = _report()
    assert made.size_ratio is None and made.verified
    assert made.to_json()["size_ratio"] is None
    assert made.af_latency_ratio is None
    assert made.allowed_ties == 1  # 20 % of 8 samples, rounded down
    made.rounding_ties = [3]
    assert made.verified
    made.rounding_ties = [3, 5]
    assert not made.verified
    made.rounding_ties, made.mismatches = [], 1
    assert not made.verified


def test_write_report_names_an_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="Cannot write .* is a file, not a folder"):
        write_report(_report(), blocker / "r.json")
    with pytest.raises(ValueError, match="folder '.*/missing' does not exist"):
        write_report(_report(), tmp_path / "missing" / "r.json")
    assert not (tmp_path / "missing").exists()
