"""`compare_on_device` with real runs: `LocalDevice` and the host twin."""

import math

import pytest

from keras_bnn_af.benchmarks.compare import TWIN_COMMAND, TWIN_NAME, compare_on_device
from keras_bnn_af.benchmarks.devices import LocalDevice


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import larq_compute_engine as lce

    from keras_bnn_af.testing import binary_block_net

    folder = tmp_path_factory.mktemp("compare")
    a, b = folder / "tiny.tflite", folder / "tiny_wide.tflite"
    a.write_bytes(lce.convert_keras_model(binary_block_net("ste_sign", filters=(8,))))
    b.write_bytes(lce.convert_keras_model(binary_block_net("ste_sign", filters=(32,))))
    return a, b


def test_runs_interleave_with_a_control_and_give_finite_ratios(models):
    a, b = models
    lines = []
    with LocalDevice() as device:
        result = compare_on_device(
            device,
            TWIN_COMMAND,
            a,
            b,
            threads=1,
            runs=3,
            rounds=2,
            progress=lines.append,
        )
    records = result.records
    # The reference A alternates between the two A runs of a round.
    assert [r.role for r in records] == [
        *("A", "B", "A-control"),
        *("A-control", "B", "A"),
    ]
    assert [r.model_name for r in records] == ["tiny", "tiny_wide", "tiny"] * 2
    assert [r.round for r in records] == [0, 0, 0, 1, 1, 1]
    assert [r.index for r in records] == list(range(6))
    assert len({r.session for r in records}) == 1
    assert all(r.binary_name == TWIN_NAME and r.binary_sha256 is None for r in records)
    assert all(r.count == 3 and r.avg_ms > 0 and r.threads == 1 for r in records)
    assert records[0].flags == ["--num_threads=1", "--num_runs=3", "--warmup_runs=1"]
    assert records[0].device["device"] == "local"
    assert result.a_name == "tiny" and result.b_name == "tiny_wide"
    for summary in (result.a, result.b, result.a_control, result.ratio, result.control):
        assert len(summary.values) == 2
        assert all(math.isfinite(v) and v > 0 for v in summary.values)
        assert summary.low <= summary.median <= summary.high
    ms = [r.avg_ms for r in records]
    assert result.ratio.values == (ms[1] / ms[0], ms[4] / ms[5])
    assert result.control.values == (ms[2] / ms[0], ms[3] / ms[5])
    assert all(r.warnings == () for r in records)  # a command, not a file
    assert len(lines) == 6 and lines[1].startswith("round 1/2: B tiny_wide.tflite")


def test_a_single_file_runs_its_rounds_without_roles(models):
    a, _ = models
    with LocalDevice() as device:
        result = compare_on_device(device, TWIN_COMMAND, a, threads=2, runs=2, rounds=2)
    assert [r.role for r in result.records] == [None, None]
    assert result.b is None and result.ratio is None and result.control is None
    assert len(result.a.values) == 2


def test_rounds_must_be_positive(models):
    a, b = models
    with pytest.raises(ValueError, match="rounds=0; expected a positive integer"):
        compare_on_device(LocalDevice(), ["true"], a, b, threads=1, runs=1, rounds=0)
