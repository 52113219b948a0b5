import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from keras_bnn_af.benchmarks import BenchmarkLog, benchmark_model, parse_benchmark_log
from keras_bnn_af.benchmarks.logs import OpTiming, format_benchmark_log

FIXTURES = Path(__file__).parents[1] / "fixtures" / "benchmark_logs"
TWIN = [sys.executable, "-m", "keras_bnn_af.benchmarks.benchmark_model"]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# Each fixture's fields, from its `count=` and `Inference timings in us` lines
# divided by 1000 (microseconds -> milliseconds).
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "plain.txt",  # bare lines, no `Running benchmark` phase markers
            BenchmarkLog(
                count=50,
                inference_avg_ms=28.9874,
                inference_std_ms=0.388,
                inference_min_ms=28.411,
                init_ms=64.123,
                first_ms=35.21,
                warmup_avg_ms=29.6112,
                memory_overall_mb=None,
            ),
        ),
        (
            "info_memory.txt",  # `INFO: ` prefixes, p5/median/p95, memory line
            BenchmarkLog(
                count=84,
                inference_avg_ms=11.8937,
                inference_std_ms=0.251,
                inference_min_ms=11.615,
                init_ms=21.406,
                first_ms=14.517,
                warmup_avg_ms=12.2046,
                memory_overall_mb=13.0547,
            ),
        ),
    ],
)
def test_fixture_fields_are_read_exactly(name, expected):
    assert parse_benchmark_log(fixture(name)) == expected


def test_op_profile_is_the_regular_runs_run_order_table():
    log = parse_benchmark_log(fixture("op_profiling.txt"))
    # The timed phase's `count=` line, not the profile's `Timings (microseconds)`.
    assert (log.count, log.inference_avg_ms, log.inference_std_ms) == (
        941,
        1.0612,
        0.038,
    )
    assert (log.inference_min_ms, log.init_ms, log.first_ms) == (1.009, 9.817, 1.893)
    assert (log.warmup_avg_ms, log.memory_overall_mb) == (1.07835, 3.375)
    assert [op.node_type for op in log.ops] == [
        "Convolution (NHWC, F32) IGEMM",
        "LceQuantize",
        "LceBconv2d",
        "LceBMaxPool2d",
        "LceBconv2d",
        "Fully Connected (NC, F32) GEMM",
    ]
    assert log.ops[0] == OpTiming(
        node_type="Convolution (NHWC, F32) IGEMM",
        name="Delegate/Convolution (NHWC, F32) IGEMM:0",
        avg_ms=0.188,
        percent=18.27,
        times_called=1,
    )
    assert log.ops[2] == OpTiming(
        "LceBconv2d", "[sequential/quant_conv2d_1/Conv2D]:1", 0.43, 41.788, 1
    )
    assert log.ops[-1].percent == pytest.approx(6.317)
    data = json.loads(json.dumps(log.to_json()))
    assert data["ops"][1]["name"] == "[sequential/quant_conv2d/ste_sign/Sign]:0"
    assert data["count"] == 941


def test_older_layout_with_start_column_and_bare_summary():
    log = parse_benchmark_log(fixture("op_profiling_start_column.txt"))
    assert (log.count, log.inference_avg_ms, log.init_ms) == (50, 1.05206, 12.5)
    # No `First inference`: the one-run warm-up's `curr` is both first and average.
    assert (log.first_ms, log.warmup_avg_ms, log.memory_overall_mb) == (
        2.21,
        2.21,
        None,
    )
    assert log.ops == (
        OpTiming("CONV_2D", "[model/conv2d/Relu]:0", 0.398, 38.013, 1),
        OpTiming("LceQuantize", "[model/quant_conv2d/Sign]:1", 0.02, 1.91, 1),
        OpTiming("LceBconv2d", "[model/quant_conv2d/Conv2D]:2", 0.629, 60.076, 1),
    )


def test_scientific_notation_and_a_single_timed_run():
    log = parse_benchmark_log(
        "INFO: count=1 curr=3512391\n"
        "INFO: count=1 curr=2950340\n"
        "INFO: Inference timings in us: Init: 17187, First inference: 3512391, "
        "Warmup (avg): 3.51239e+06, Inference (avg): 2.95034e+06\n"
    )
    assert (log.count, log.inference_avg_ms, log.inference_min_ms) == (
        1,
        2950.34,
        2950.34,
    )
    assert (log.inference_std_ms, log.warmup_avg_ms) == (0.0, 3512.39)
    long = parse_benchmark_log(
        "count=1 curr=1\ncount=50 first=2990275 curr=2913402 min=2727568 "
        "max=3189954 avg=2.95034e+06 std=109798\n"
    )
    assert (long.inference_avg_ms, long.inference_std_ms) == (2950.34, 109.798)
    assert long.init_ms is None and long.ops == ()


@pytest.mark.parametrize(
    ("name", "quoted", "not_quoted"),
    [
        ("crash.txt", "Failed to allocate tensors!", "Graph: [model.tflite]"),
        ("missing_model.txt", "Could not open '/data/local/tmp/missing.tflite'.", None),
    ],
)
def test_logs_without_a_timed_phase_quote_their_last_lines(name, quoted, not_quoted):
    text = fixture(name)
    with pytest.raises(ValueError, match="no timed phase") as error:
        parse_benchmark_log(text)
    message = str(error.value)
    last = [line for line in text.splitlines() if line.strip()][-8:]
    assert all(line in message for line in last)
    assert quoted in message and "Benchmarking failed." in message
    assert not_quoted is None or not_quoted not in message
    assert "Check that --graph names a model that exists" in message


@pytest.mark.parametrize(
    "text",
    [
        "",
        # Killed in the timed phase: only the warm-up's `count=` line.
        "Running benchmark for at least 1 iterations\ncount=3 first=9 curr=9 min=9 "
        "max=9 avg=9 std=0\nRunning benchmark for at least 50 iterations\nKilled\n",
        # No phase markers and no summary: a lone line could be the warm-up.
        "count=3 first=9 curr=9 min=9 max=9 avg=9 std=0\nSegmentation fault\n",
    ],
)
def test_a_warm_up_alone_is_not_a_timed_phase(text):
    with pytest.raises(ValueError, match="no timed phase"):
        parse_benchmark_log(text)


def test_format_is_the_inverse_of_parse():
    warmup, timed = [1500.4, 1200.0], [1000.0, 1100.0, 900.0, 1000.0]
    text = format_benchmark_log(warmup, timed, init_us=2500.6, memory_mb=(1.5, 3.25))
    assert "INFO: count=4 first=1000 curr=1000 min=900 max=1100 avg=1000 std=70" in text
    # std = floor(sqrt(mean(t^2) - mean(t)^2)) = floor(sqrt(5000)) = 70 us
    assert parse_benchmark_log(text) == BenchmarkLog(
        count=4,
        inference_avg_ms=1.0,
        inference_std_ms=0.07,
        inference_min_ms=0.9,
        init_ms=2.501,
        first_ms=1.5,
        warmup_avg_ms=1.35,
        memory_overall_mb=3.25,
    )
    bare = format_benchmark_log([5.0], [7.0], init_us=1.0, prefix="")
    assert "count=1 curr=5\n" in bare and "INFO" not in bare
    with pytest.raises(ValueError, match="needs at least one of each"):
        format_benchmark_log([], [1.0], init_us=1.0)


class FakeInterpreter:
    input_shapes = [(1, 4)]
    input_types = [np.float32]

    def __init__(self):
        self.calls = 0

    def predict(self, inputs):
        assert inputs[0].shape == (1, 4)
        self.calls += 1


def test_flags_reach_the_interpreter(monkeypatch, capsys, tmp_path):
    graph = tmp_path / "m.tflite"
    graph.write_bytes(b"\0\0\0\0TFL3 rest of a flatbuffer")
    seen = {}

    def load(flatbuffer, **options):
        seen.update(options, flatbuffer=flatbuffer)
        seen["interpreter"] = FakeInterpreter()
        return seen["interpreter"]

    monkeypatch.setattr(benchmark_model, "load_interpreter", load)
    status = benchmark_model.main(
        [
            f"--graph={graph}",
            "--num_threads=3",
            "--num_runs",
            "4",
            "--warmup_runs=2",
            "--use_xnnpack=true",
            "--use_indirect_bgemm=1",
            "--use_reference_bconv=False",
            "--enable_op_profiling=true",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0
    assert seen["flatbuffer"] == graph.read_bytes()
    assert {k: seen[k] for k in ("num_threads", "use_xnnpack")} == {
        "num_threads": 3,
        "use_xnnpack": True,
    }
    assert (seen["use_indirect_bgemm"], seen["use_reference_bconv"]) == (True, False)
    assert seen["interpreter"].calls == 2 + 4
    assert "Running benchmark for at least 4 iterations" in out
    log = parse_benchmark_log(out + err)
    assert log.count == 4 and log.ops == ()
    assert "no per-op profile" in err and "no per-op profile" not in out


def test_bad_boolean_flags_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        benchmark_model.main(["--graph=x.tflite", "--use_xnnpack=yes"])
    assert exit_.value.code == 2
    assert "expected true or false, got 'yes'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "lines"),
    [
        (None, ["Could not open '{}'.", "Failed to mmap model {}"]),
        (b"not a model", ["The model is not a valid Flatbuffer buffer"]),
    ],
)
def test_unreadable_models_give_the_binary_error_lines(
    content, lines, capsys, tmp_path
):
    graph = tmp_path / "model.tflite"
    if content is not None:
        graph.write_bytes(content)
    assert benchmark_model.main([f"--graph={graph}"]) == 1
    err = capsys.readouterr().err
    for line in [*lines, "Benchmarking failed."]:
        assert f"ERROR: {line.format(graph)}\n" in err


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import larq_compute_engine as lce

    from keras_bnn_af.testing import binary_block_net

    path = tmp_path_factory.mktemp("twin") / "tiny.tflite"
    path.write_bytes(
        lce.convert_keras_model(binary_block_net("ste_sign", filters=(32,)))
    )
    return path


def test_round_trip_through_the_host_twin(tiny_model):
    run = subprocess.run(
        [*TWIN, f"--graph={tiny_model}", "--num_threads=2", "--num_runs=5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "INFO: Num threads: [2]" in run.stdout
    log = parse_benchmark_log(run.stdout + run.stderr)
    assert log.count == 5 and log.inference_avg_ms > 0
    assert 0 < log.inference_min_ms <= log.inference_avg_ms
    assert log.init_ms > 0 and log.first_ms > 0 and log.ops == ()


def test_twin_without_its_model_fails_as_the_binary_does(tmp_path):
    missing = tmp_path / "absent.tflite"
    run = subprocess.run(
        [*TWIN, f"--graph={missing}", "--num_threads=2", "--num_runs=5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1
    with pytest.raises(ValueError, match="no timed phase") as error:
        parse_benchmark_log(run.stdout + run.stderr)
    assert f"Could not open '{missing}'." in str(error.value)


def test_console_script_is_declared_and_installed():
    (entry,) = [
        e
        for e in metadata.entry_points(group="console_scripts")
        if e.name == "keras-bnn-af-benchmark-model"
    ]
    assert entry.load() is benchmark_model.main
    script = Path(sys.executable).parent / "keras-bnn-af-benchmark-model"
    run = subprocess.run(
        [str(script), "--graph=/nonexistent/m.tflite"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert "ERROR: Could not open '/nonexistent/m.tflite'." in run.stderr
