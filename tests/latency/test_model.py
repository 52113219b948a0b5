"""`LatencyModel`: fit and calibrate against known coefficients, predict and
explain on a converted net, guesses warned about, profiles saved and loaded."""

import json

import larq_compute_engine as lce
import numpy as np
import pytest

from keras_bnn_af.latency import (
    LatencyModel,
    LatencySample,
    LatencyWarning,
    graph_features,
    profile_names,
    read_graph,
    samples_from_records,
)
from keras_bnn_af.latency.graph import Graph, Op, TensorInfo
from keras_bnn_af.latency.model import GROUPS
from keras_bnn_af.testing import binary_block_net

TRUE = {
    "graph_count": 0.05,
    "bconv_count": 0.01,
    "bconv_macs": 0.4,
    "conv_macs": 2.0,
    "elementwise_sin_kelems": 0.02,
}


def _samples(count=30, *, threads=1, scale=None, seed=0):
    """Nets with random work and latencies from `TRUE` (times `scale` per group)."""
    rng = np.random.default_rng(seed)
    samples = []
    for index in range(count):
        features = {
            "graph_count": 1.0,
            "bconv_count": float(rng.integers(2, 9)),
            "bconv_macs": float(rng.uniform(0.5, 40)),
            "conv_macs": float(rng.uniform(0.01, 2)),
        }
        if index % 3 == 0:
            features["elementwise_sin_kelems"] = float(rng.uniform(1, 50))
        coefficients = dict(TRUE)
        for feature in coefficients:
            if scale:
                coefficients[feature] *= scale[_truth_group(feature)]
        latency = sum(coefficients[f] * v for f, v in features.items())
        samples.append(LatencySample(f"net{index}", features, threads, latency))
    return samples


def _truth_group(feature):
    if feature == "bconv_macs":
        return "binary"
    return "overhead" if feature.endswith("_count") else "float"


def test_fit_recovers_the_coefficients_of_exact_latencies():
    model = LatencyModel.fit(_samples(), name="synthetic")
    for feature, value in TRUE.items():
        assert model.coefficients[1][feature] == pytest.approx(value, rel=1e-6)
    assert model.fit_error[1] == {
        "samples": 30,
        "median_abs_error": 0.0,
        "within_10pct": 1.0,
    }
    # Features never seen non-zero get no coefficient at all.
    assert "dense_macs" not in model.coefficients[1]


def test_fit_keeps_coefficients_non_negative_and_minimizes_relative_error():
    samples = _samples()
    factors = np.random.default_rng(1).uniform(0.8, 1.2, len(samples))
    noisy = [
        LatencySample(s.name, s.features, s.threads, s.latency_ms * factor)
        for s, factor in zip(samples, factors, strict=True)
    ]
    model = LatencyModel.fit(noisy, name="noisy")
    assert all(value >= 0 for value in model.coefficients[1].values())
    assert model.fit_error[1]["median_abs_error"] < 0.15


def test_calibrate_recovers_device_scales_per_group():
    host = LatencyModel.fit(_samples(), name="host")
    scale = {"binary": 0.5, "float": 3.0, "overhead": 2.0}
    device = _samples(8, threads=4, scale=scale, seed=5)
    calibrated = host.calibrate(device, name="device", groups=3)
    assert set(calibrated.coefficients) == {4}  # from host's 1-thread coefficients
    scales = calibrated.fit_error[4]["scales"]
    assert scales == pytest.approx(scale, rel=1e-6)
    one = host.calibrate(device, name="device", groups=1)
    assert list(one.fit_error[4]["scales"]) == ["all"]
    assert one.fit_error[4]["median_abs_error"] > 0.01  # one factor cannot fit it
    with pytest.raises(ValueError, match=r"groups=4; expected 1, 2 or 3"):
        host.calibrate(device, name="x", groups=4)
    assert set(GROUPS) == {1, 2, 3}


@pytest.fixture(scope="module")
def tflite():
    return lce.convert_keras_model(binary_block_net("ste_sign", filters=(32, 32)))


def test_predict_is_the_sum_of_explain_and_of_the_features(tflite):
    features = graph_features(tflite)
    coefficients = {feature: 0.1 * (i + 1) for i, feature in enumerate(features)}
    model = LatencyModel("toy", {1: coefficients})
    expected = sum(coefficients[f] * v for f, v in features.items())
    costs = model.explain(tflite)
    assert model.predict(tflite) == pytest.approx(expected)
    assert sum(cost.ms for cost in costs) == pytest.approx(expected)
    assert costs[0].op == "graph" and costs[0].index == -1
    assert [cost.op for cost in costs[1:]] == [op.name for op in read_graph(tflite).ops]
    assert model.predict_features(features) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"threads=4; expected one of \[1\]"):
        model.predict(tflite, threads=4)


def test_a_keras_model_is_converted_as_export_lce_would():
    net = binary_block_net("rsign", filters=(32,))  # folds into a plain sign
    model = LatencyModel(
        "toy", {1: dict.fromkeys(graph_features(lce.convert_keras_model(net)), 1.0)}
    )
    costs = model.explain(net)
    ops = [cost.op for cost in costs]
    assert "LceBconv2d" in ops and "SUB" not in ops  # rsign's threshold folded


def _op(name, elements=100):
    tensor = TensorInfo("t", (1, elements), "float32", False)
    return Op(name, (tensor,), (tensor,), {})


def test_unseen_features_and_unknown_ops_are_priced_with_a_warning_naming_them():
    graph = Graph(
        ops=(_op("SIN"), _op("COS"), _op("RESHAPE"), _op("MYSTERY_OP", 2000)),
        inputs=(),
        outputs=(),
    )
    coefficients = {
        "graph_count": 0.0,
        "elementwise_count": 0.0,
        "elementwise_sin_kelems": 2.0,
        "elementwise_add_kelems": 4.0,
        "movement_count": 0.0,
    }
    model = LatencyModel("partial", {1: coefficients})
    with pytest.warns(LatencyWarning) as caught:
        costs = model.explain(graph)
    message = str(caught[0].message)
    assert "op 1 COS (no coefficient: elementwise_cos_kelems)" in message
    assert "op 2 RESHAPE (no coefficient: movement_kelems)" in message
    assert "op 3 MYSTERY_OP (unknown op, priced as data movement" in message
    assert "Fix: fit or calibrate the profile" in message
    by_op = {cost.op: cost for cost in costs}
    assert by_op["SIN"].ms == pytest.approx(0.2) and not by_op["SIN"].note
    assert by_op["COS"].ms == pytest.approx(0.3)  # the mean elementwise coefficient
    assert by_op["MYSTERY_OP"].features == {
        "movement_count": 1.0,
        "movement_kelems": 2.0,
    }


def test_save_and_load_round_trip_and_unknown_profiles_name_the_available(tmp_path):
    model = LatencyModel.fit(_samples(), name="mine", device={"device": "x"})
    path = model.save(tmp_path / "mine.json")
    loaded = LatencyModel.load(path)
    assert loaded == model
    assert json.loads(path.read_text())["schema"] == 1
    with pytest.raises(ValueError) as error:
        LatencyModel.load("raspberry")
    message = str(error.value)
    assert "'raspberry'" in message and "LatencyModel.save" in message
    for name in profile_names():
        assert name in message


def test_bad_samples_are_refused():
    with pytest.raises(ValueError, match="No samples to fit"):
        LatencyModel.fit([], name="x")
    bad = LatencySample("broken", {"graph_count": 1.0}, 1, float("nan"))
    with pytest.raises(ValueError, match="'broken' has latency_ms=nan"):
        LatencyModel.fit([bad], name="x")


def test_predicting_from_a_file_does_not_import_tensorflow(tflite, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "m.tflite"
    path.write_bytes(tflite)
    LatencyModel("toy", {1: {"bconv_macs": 1.0}}).save(tmp_path / "toy.json")
    code = (
        "import sys, warnings\n"
        "from keras_bnn_af.latency import LatencyModel\n"
        "warnings.simplefilter('ignore')\n"
        f"model = LatencyModel.load({str(tmp_path / 'toy.json')!r})\n"
        f"ms = model.predict({str(path)!r})\n"
        "assert ms > 0, ms\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_calibrate_reads_benchmark_records_of_a_device(tflite, tmp_path):
    # Real runs of the host twin through the device code path, as `bench
    # --device local --results` records them.
    from keras_bnn_af.benchmarks.compare import TWIN_COMMAND, compare_on_device
    from keras_bnn_af.benchmarks.devices import LocalDevice

    small, wide = tmp_path / "small.tflite", tmp_path / "wide.tflite"
    small.write_bytes(tflite)
    wide.write_bytes(
        lce.convert_keras_model(binary_block_net("ste_sign", filters=(64, 64)))
    )
    with LocalDevice() as device:
        records = compare_on_device(
            device, TWIN_COMMAND, small, wide, threads=1, runs=3, rounds=2
        ).records
    samples = samples_from_records(records)
    assert sorted(s.name for s in samples) == ["small", "wide"]
    for sample in samples:  # the median over the A and A-control runs of a file
        runs = [
            r.avg_ms for r in records if r.model_path.endswith(sample.name + ".tflite")
        ]
        assert sample.latency_ms == pytest.approx(float(np.median(runs)))
    base = LatencyModel("base", {1: dict.fromkeys(graph_features(tflite), 0.01)})
    calibrated = base.calibrate(records, name="local", groups=1)
    assert calibrated.fit_error[1]["samples"] == 2
    assert calibrated.fit_error[1]["scales"]["all"] > 0
    wide.unlink()
    with pytest.raises(ValueError, match="'wide' names the model file .* no longer"):
        samples_from_records(records)
