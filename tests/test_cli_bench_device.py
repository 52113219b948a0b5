"""`bench --device local|ssh://...` and `report`, end to end with the host twin."""

import json

import pytest

from keras_bnn_af import cli


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import larq_compute_engine as lce

    from keras_bnn_af.testing import binary_block_net

    folder = tmp_path_factory.mktemp("bench_device")
    a, b = folder / "tiny.tflite", folder / "tiny_float32.tflite"
    a.write_bytes(lce.convert_keras_model(binary_block_net("ste_sign", filters=(8,))))
    b.write_bytes(lce.convert_keras_model(binary_block_net("ste_sign", filters=(16,))))
    return a, b


def test_bench_local_compare_appends_results_and_report_reads_them(
    models, tmp_path, capsys
):
    a, b = models
    results = tmp_path / "bench.jsonl"
    args = ["bench", str(a), "--device", "local", "--compare", str(b)]
    args += ["--threads", "1,2", "--runs", "2", "--rounds", "2", "--results"]
    assert cli.main([*args, str(results)]) == 0
    out = capsys.readouterr().out
    assert out.count("| B / A | - |") == 2
    assert out.count("| A-control / A (noise floor) | - |") == 2
    assert "| tiny (A) |" in out and "| tiny_float32 (B) |" in out
    assert "1 thread(s), 2 runs x 2 round(s)" in out
    lines = results.read_bytes().splitlines()
    assert len(lines) == 2 * 2 * 3  # threads x rounds x (A, B, A-control)
    roles = [json.loads(line)["role"] for line in lines]
    # Every round runs A, B, A; the reference A alternates (compare_on_device).
    assert roles == ["A", "B", "A-control", "A-control", "B", "A"] * 2
    first = json.loads(lines[0])
    assert first["device"]["device"] == "local" and first["threads"] == 1
    assert "count=2" in first["log"]

    before = results.read_bytes()
    assert cli.main([*args, str(results)]) == 0
    assert results.read_bytes().startswith(before)  # appended, not rewritten
    capsys.readouterr()

    report = tmp_path / "report"
    assert cli.main(["report", str(results), "--out", str(report)]) == 0
    text = (report / "report.md").read_text()
    assert "| tiny | 1 | 8 |" in text  # 2 runs of A x 2 rounds x 2 bench calls
    assert "| tiny_float32 | 2 | 4 |" in text
    assert text.count("A-control/A median") == 1
    for png in ("latency.png", "threads.png"):
        assert (report / png).read_bytes().startswith(b"\x89PNG")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", str(results), "--out", str(report)])
    assert exit_.value.code == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["report", str(results), "--out", str(report), "--overwrite"]) == 0


def test_bench_refuses_a_results_file_that_is_not_json_lines(models, tmp_path, capsys):
    a, _ = models
    results = tmp_path / "notes.md"
    results.write_text("# my notes\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", str(a), "--device", "local", "--results", str(results)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Line 1 of results file" in err and "Fix: " in err
    assert results.read_text() == "# my notes\n"


@pytest.mark.parametrize(
    ("device", "fix"),
    [
        ("pi@raspberrypi", "did you mean ssh://pi@raspberrypi?"),
        ("ssh://raspberrypi", "did you mean ssh://USER@raspberrypi?"),
        ("ssh:pi@raspberrypi:22", "did you mean ssh://pi@raspberrypi:22?"),
        ("lcoal", "did you mean local?"),
        ("ssh://pi@host:70000", "pass e.g. ssh://pi@host:22."),
        ("raspberrypi.local", "pass ssh://USER@raspberrypi.local."),
    ],
)
def test_bad_devices_exit_2_with_what_expected_fix(device, fix, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", "m.tflite", "--device", device])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --device: {device!r}" in err
    assert "Expected: host, local, ssh://user@host[:port] or adb[:SERIAL]" in err
    assert "Fix: " in err and fix in err


def test_device_options_are_refused_on_the_host(models, capsys):
    a, b = models
    for extra in (["--rounds", "2"], ["--compare", str(b), "--results", "r.jsonl"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["bench", str(a), *extra])
        assert exit_.value.code == 2
        flag = extra[-2]
        assert f"{flag} need(s) a device" in capsys.readouterr().err


def test_compare_on_the_host_interleaves_with_one_kernel_and_a_control(
    models, tmp_path, capsys
):
    a, b = models
    out = tmp_path / "compare.json"
    args = ["bench", str(a), "--compare", str(b), "--runs", "2", "--rounds", "3"]
    assert cli.main([*args, "--kernel", "lce_default", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kernel lce_default for both, 3 interleaved rounds of 2 runs" in printed
    assert "(A again, control)" in printed
    data = json.loads(out.read_text())
    assert data["files"] == {"A": str(a), "B": str(b)}
    assert set(data["results"]) == {"A", "B", "A (control)"}
    for role, result in data["results"].items():
        assert result["kernel"] == "lce_default" and result["runs"] == 6
        assert len(result["round_medians_ms"]) == 3
        ratio = data["ratios_to_a"][role]
        assert len(ratio["values"]) == 3 and ratio["low"] <= ratio["high"]
    assert data["ratios_to_a"]["A"]["values"] == [1.0, 1.0, 1.0]


def test_ssh_without_a_binary_names_where_to_put_it(
    models, tmp_path, monkeypatch, capsys
):
    a, _ = models
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", str(a), "--device", "ssh://pi@127.0.0.1:1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert ".cache/keras-bnn-af/bin" in err and "never downloads it" in err


def test_export_benchmarks_the_file_and_its_float32_twin_on_the_device(
    tmp_path, capsys
):
    """`export m.h5 --device local --compare-float32`: the verified export is run
    as A, its float32 twin (written next to it) as B, through `bench --device`'s
    code path; records appended to --results."""
    import warnings

    from keras_bnn_af._keras import keras
    from keras_bnn_af.testing import binary_block_net

    keras.utils.set_random_seed(0)
    saved = tmp_path / "m.h5"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        binary_block_net("ste_sign", filters=(8,)).save(saved)
    out, results = tmp_path / "m.tflite", tmp_path / "bench.jsonl"
    args = ["export", str(saved), "--out", str(out), "--verify-samples", "8"]
    args += ["--device", "local", "--compare-float32", "--runs", "2", "--rounds", "2"]
    assert cli.main([*args, "--results", str(results)]) == 0
    captured = capsys.readouterr()
    twin = tmp_path / "m_float32.tflite"
    assert out.is_file() and twin.is_file()
    assert f"wrote the float32 twin {twin}" in captured.out
    assert "| m (A) |" in captured.out and "| m_float32 (B) |" in captured.out
    assert "| B / A | - |" in captured.out
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [line["role"] for line in lines] == [
        *("A", "B", "A-control"),
        *("A-control", "B", "A"),
    ]
    assert [line["model_name"] for line in lines[:2]] == ["m", "m_float32"]

    # The twin is an output file: refused, before any work, without --overwrite.
    out.unlink()
    with pytest.raises(SystemExit) as exit_:
        cli.main([*args])
    assert exit_.value.code == 2
    assert f"{str(twin)!r} already exists" in capsys.readouterr().err
    assert not out.exists()


def test_export_device_options_need_a_device(tmp_path, capsys):
    args = ["export", str(tmp_path / "m.h5"), "--out", str(tmp_path / "m.tflite")]
    with pytest.raises(SystemExit) as exit_:
        cli.main([*args, "--compare-float32", "--pin-big-cores"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--pin-big-cores, --compare-float32 need(s) --device" in err
