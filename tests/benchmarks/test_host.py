import larq_compute_engine as lce
import pytest

from keras_bnn_af.benchmarks import (
    KERNELS,
    HostBenchmark,
    benchmark_tflite,
    compare_latency,
    latency_ratios,
    median_latencies,
)
from keras_bnn_af.testing import binary_block_net


@pytest.fixture(scope="module")
def flatbuffer():
    return lce.convert_keras_model(binary_block_net("ste_sign", filters=(32, 32)))


def test_auto_measures_every_configuration_and_keeps_the_fastest(flatbuffer):
    result = benchmark_tflite(flatbuffer, runs=5, trial_runs=2, warmup=1)
    assert set(result.candidates_median_ms) == set(KERNELS)
    fastest = min(result.candidates_median_ms, key=result.candidates_median_ms.get)
    assert result.kernel == fastest
    assert 0 < result.min_ms <= result.median_ms <= result.p90_ms
    assert {"kernel", "median_ms", "p90_ms", "threads"} <= set(result.to_json())


def test_a_named_configuration_is_used_as_is(flatbuffer, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(flatbuffer)
    result = benchmark_tflite(path, kernel="lce_default", runs=3, threads=2)
    assert (result.kernel, result.threads, result.runs) == ("lce_default", 2, 3)
    assert result.candidates_median_ms == {} and result.model == str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a TFLite flatbuffer"),
        (b"hello, this is not a model", "not a TFLite flatbuffer"),
        (None, "does not exist"),
    ],
)
def test_bad_model_files_are_named(content, message, tmp_path):
    path = tmp_path / "model.tflite"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        benchmark_tflite(path)
    assert str(path) in str(error.value)


def test_bad_options_are_named(flatbuffer):
    with pytest.raises(ValueError, match="Unknown kernel configuration 'fast'"):
        benchmark_tflite(flatbuffer, kernel="fast")
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        benchmark_tflite(flatbuffer, threads=0)


def test_compare_latency_times_every_model_in_interleaved_rounds(flatbuffer, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(flatbuffer)
    results = compare_latency(
        {"a": flatbuffer, "b": path}, rounds=2, runs=3, control=True
    )
    assert list(results) == ["a", "b", "a (control)"]
    # One kernel configuration for all: the fastest for the first model.
    (kernel,) = {result.kernel for result in results.values()}
    fastest = results["a"].candidates_median_ms
    assert kernel == min(fastest, key=fastest.get)
    for result in results.values():
        assert result.runs == 6 and len(result.round_medians_ms) == 2
        assert 0 < result.min_ms <= result.median_ms <= result.p90_ms
    ratios = latency_ratios(results)
    assert ratios["a"].values == (1.0, 1.0)
    a, b = results["a"].round_medians_ms, results["b"].round_medians_ms
    assert ratios["b"].values == (b[0] / a[0], b[1] / a[1])
    assert ratios["a (control)"].low <= ratios["a (control)"].high
    assert latency_ratios(results, "b")["b"].median == 1.0
    with pytest.raises(ValueError, match="'x' has no per-round medians"):
        latency_ratios({"x": HostBenchmark("x", "k", 1, 1, 1.0, 1.0, 1.0)})
    with pytest.raises(ValueError, match="rounds must be a positive integer, got 0"):
        compare_latency({"a": flatbuffer}, rounds=0)
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        compare_latency({"a": b"nope"})


def test_median_latencies_are_the_medians_of_compare_latency(flatbuffer, monkeypatch):
    from keras_bnn_af.benchmarks import host

    def fake(models, **options):
        assert options == {"rounds": 2}
        return {name: host.HostBenchmark(name, "x", 1, 2, 1.5, 2, 1) for name in models}

    monkeypatch.setattr(host, "compare_latency", fake)
    assert median_latencies({"a": flatbuffer, "b": b""}, rounds=2) == {
        "a": 1.5,
        "b": 1.5,
    }
