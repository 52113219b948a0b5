"""The `keras-bnn-af` command, run for real as a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_bnn_af import training
from keras_bnn_af._keras import keras

QUICK = ["--max-samples", "256", "--epochs", "1", "--batch-size", "32"]


def run_cli(*args, env=None, check=True):
    script = Path(sys.executable).with_name("keras-bnn-af")
    command = (
        [str(script)] if script.exists() else [sys.executable, "-m", "keras_bnn_af.cli"]
    )
    completed = subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
        timeout=600,
    )
    if check and completed.returncode != 0:
        raise AssertionError(f"exit {completed.returncode}\n{completed.stderr[-3000:]}")
    return completed


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mnist"
    completed = run_cli(
        "train", "--dataset", "mnist", "--seed", "3", "--out", out, *QUICK
    )
    return out, completed


def test_train_writes_a_reloadable_run(trained_run):
    out, completed = trained_run
    assert "test accuracy" in completed.stdout
    assert "8/8 - " in completed.stdout  # Keras's line per epoch: not a terminal
    assert {p.name for p in out.iterdir()} >= {
        "model.h5",
        "metrics.json",
        "training_curve.png",
    }
    metrics = json.loads((out / "metrics.json").read_text())
    for key in [
        "test_accuracy",
        "val_accuracy",
        "train_seconds",
        "params",
        "binary_macs",
        "float_macs",
    ]:
        assert key in metrics, key
    assert metrics["config"]["seed"] == 3 and metrics["num_examples"]["train"] == 256
    assert metrics["binary_macs"] > metrics["float_macs"] > 0
    assert (out / "training_curve.png").read_bytes()[:4] == b"\x89PNG"

    from keras_bnn_af import data

    model = keras.models.load_model(out / "model.h5")  # no custom_objects needed
    splits = data.load("mnist", max_samples=256)
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    _, accuracy = model.evaluate(splits.test, verbose=0)
    assert accuracy == pytest.approx(metrics["test_accuracy"], abs=1e-6)


def test_train_refuses_an_existing_out_and_keeps_its_files(trained_run):
    out, _ = trained_run
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    completed = run_cli("train", "--out", out, *QUICK, check=False)
    assert completed.returncode == 2
    assert str(out) in completed.stderr and "--overwrite" in completed.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_train_overwrites_only_when_asked(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    run_cli("train", "--out", out, "--overwrite", *QUICK)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "model.h5").exists()


@pytest.mark.parametrize("epochs", ["0", "-2", "two"])
def test_train_rejects_non_positive_epochs(epochs, tmp_path):
    completed = run_cli(
        "train", "--epochs", epochs, "--out", tmp_path / "x", check=False
    )
    assert completed.returncode == 2
    assert f"--epochs: expected a positive integer, got '{epochs}'" in completed.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("option", "value", "listed"),
    [
        ("--dataset", "cifar", "'mnist', 'mnist1d', 'tfds:<name>'"),
        ("--model", "resnet", "'binarynet'"),
        ("--binarizer", "sign", "ste_sign"),
    ],
)
def test_train_names_unknown_choices_and_the_valid_ones(
    option, value, listed, tmp_path
):
    completed = run_cli("train", option, value, "--out", tmp_path / "x", check=False)
    assert completed.returncode == 2
    assert repr(value) in completed.stderr and listed in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "x").exists()


def test_train_on_unprepared_tfds_dataset_fails_fast_naming_data_dir(tmp_path):
    completed = run_cli(
        "train",
        "--dataset",
        "tfds:cifar10",
        "--out",
        tmp_path / "x",
        env={"TFDS_DATA_DIR": str(tmp_path / "tfds")},
        check=False,
    )
    assert completed.returncode == 2
    assert str(tmp_path / "tfds") in completed.stderr
    assert "tfds build cifar10" in completed.stderr
    assert not (tmp_path / "x").exists()


# 64 samples check all that more do; the full run is `make demo`. Most of the
# time goes to importing TensorFlow and converting.
def test_demo_writes_a_report_and_prints_test_accuracy(tmp_path):
    out, samples = tmp_path / "demo", 64
    completed = run_cli("demo", "--out", out, "--epochs", "1", "--max-samples", samples)
    assert "Test accuracy:" in completed.stdout
    report = (out / "report.md").read_text()
    for section in [
        "Training",
        "Evaluation",
        "Export to Larq Compute Engine",
        "Host latency",
    ]:
        assert f"## {section}" in report
    assert "LceBconv2d | 4" in report and "top-1 agreement with Keras 100.00%" in (
        completed.stdout
    )
    export = json.loads((out / "export_report.json").read_text())
    assert export["top1_agreement"] == 1.0 and export["samples"] == samples
    assert (out / "model.tflite").stat().st_size == export["size_bytes"]
    for image in ["training_curve.png", "confusion_matrix.png"]:
        assert f"]({image})" in report and (out / image).exists()
    assert (out / "model.h5").exists()
    # The story: each step, the long ones' progress (plain lines, not a terminal),
    # the results, and none of TensorFlow's chatter.
    assert "[1/4] Training" in completed.stdout and "[4/4] Timing" in completed.stdout
    assert f"verifying on LCE's interpreter: {samples}/{samples}" in completed.stderr
    assert completed.stderr.count("choosing LCE kernels: 4/4") == 1
    assert "timing side by side: 7/7" in completed.stderr
    assert "| LCE binary (control) |" in report
    for noise in ["Summary on the non-converted ops", "XNNPACK", "WARNING:"]:
        assert noise not in completed.stderr
    lines = (completed.stdout + completed.stderr).splitlines()
    assert len(lines) <= 15, "\n".join(lines)


def test_list_shows_datasets_models_and_binarizers():
    completed = run_cli("list")
    assert "mnist1d" in completed.stdout and "resnet_e18" in completed.stdout
    assert "ste_sign" in completed.stdout


def test_training_api_validates_before_touching_disk(tmp_path):
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        training.TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="Unknown optimizer 'sgd'"):
        training.TrainConfig(optimizer="sgd")
    assert not list(tmp_path.iterdir())


def test_plot_draws_a_binarizer_spec(tmp_path):
    out = tmp_path / "sin.png"
    completed = run_cli("plot", "gaaf:sin_x", "--out", out)
    assert out.read_bytes()[:4] == b"\x89PNG" and str(out) in completed.stdout
    again = run_cli("plot", "gaaf:sin_x", "--out", out, check=False)
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_bench_times_a_tflite_file_and_writes_json(tmp_path):
    import larq_compute_engine as lce

    from keras_bnn_af.testing import binary_block_net

    model_path = tmp_path / "m.tflite"
    model_path.write_bytes(lce.convert_keras_model(binary_block_net("ste_sign")))
    out = tmp_path / "bench.json"
    completed = run_cli("bench", model_path, "--runs", "3", "--json", out)
    result = json.loads(out.read_text())
    assert result["kernel"] in completed.stdout and result["median_ms"] > 0
    assert set(result["candidates_median_ms"]) >= {"lce_default", "indirect_bgemm"}
    assert "choosing LCE kernels: 4/4" in completed.stderr
    assert "XNNPACK" not in completed.stderr


def test_bench_rejects_a_file_that_is_not_tflite(tmp_path):
    bogus = tmp_path / "notes.tflite"
    bogus.write_text("not a model")
    completed = run_cli("bench", bogus, check=False)
    assert completed.returncode == 2
    assert (
        "not a TFLite flatbuffer" in completed.stderr and str(bogus) in completed.stderr
    )


def test_train_help_shows_the_recipe_of_each_dataset(capsys):
    from keras_bnn_af import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    assert "mnist1d       conv1d, 10 epochs, batch 64, lr 0.01" in text
    assert "mnist         binarynet, 3 epochs, batch 64, lr 0.001" in text
