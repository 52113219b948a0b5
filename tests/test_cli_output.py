"""What the `keras-bnn-af` command prints and writes: TensorFlow's logs hidden
unless `--verbose`, progress of long steps, and clear errors for output paths."""

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from keras_bnn_af import _quiet, cli

#: TensorFlow's import-time C++ lines on this x86 host (oneDNN is on by default).
TF_IMPORT_LINES = ("oneDNN custom operations", "cpu_feature_guard")
FLOAT_CONVERTER_SUMMARY = "Summary on the non-converted ops"


def run_cli(*args, env=None):
    """The command in a subprocess, with the caller's TF_CPP_MIN_LOG_LEVEL only."""
    script = Path(sys.executable).with_name("keras-bnn-af")
    command = (
        [str(script)] if script.exists() else [sys.executable, "-m", "keras_bnn_af.cli"]
    )
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
        timeout=300,
    )


def cli_error(capsys, *args) -> str:
    """Runs the command in this process; it must exit 2. Returns its stderr."""
    with pytest.raises(SystemExit) as raised:
        cli.main([*map(str, args)])
    assert raised.value.code == 2
    return capsys.readouterr().err


# --- TensorFlow's logs --------------------------------------------------------------


@pytest.mark.skipif(
    os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0", reason="oneDNN turned off"
)
def test_tensorflow_import_lines_show_only_with_verbose_or_a_users_log_level():
    quiet = run_cli("list")
    verbose = run_cli("list", "--verbose")
    users_level = run_cli("list", env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    for completed in (quiet, verbose, users_level):
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert "ste_sign" in completed.stdout
    assert not any(line in quiet.stderr for line in TF_IMPORT_LINES), quiet.stderr
    assert quiet.stderr == ""
    assert TF_IMPORT_LINES[0] in verbose.stderr  # so the quiet check can fail
    assert TF_IMPORT_LINES[0] in users_level.stderr


def test_quieted_restores_the_environment_and_the_loggers(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    logging.getLogger("absl").setLevel(logging.INFO)
    with _quiet.quieted():
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == _quiet.CPP_LOG_LEVEL
        assert logging.getLogger("tensorflow").level == logging.ERROR
        assert logging.getLogger("absl").level == logging.ERROR
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert logging.getLogger("absl").level == logging.INFO
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    with _quiet.quieted():
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"  # the user's level stays
    with _quiet.quieted(enabled=False):
        assert logging.getLogger("absl").level == logging.INFO


def test_quieted_hides_tensorflow_warnings_but_not_keras_bnn_afs_own():
    with _quiet.quieted(), warnings.catch_warnings(record=True) as seen:
        warnings.warn_explicit(
            "a Keras note", UserWarning, "saving_api.py", 1, module="keras.src.saving"
        )
        warnings.warn(
            "You are saving your model as an HDF5 file via `model.save()`. This "
            "file format is considered legacy.",
            UserWarning,
            stacklevel=1,
        )
        warnings.warn("LCE left 1 binary layer(s) as float ops", stacklevel=1)
    assert [str(w.message) for w in seen] == ["LCE left 1 binary layer(s) as float ops"]


def _write_to_fd_2(text: str) -> None:
    os.write(2, text.encode())


def test_native_output_is_captured_only_inside_quieted(capfd, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    with _quiet.native_output_captured():
        _write_to_fd_2("shown outside quieted\n")
    with _quiet.quieted(), _quiet.native_output_captured():
        _write_to_fd_2("converter chatter\n")
    _write_to_fd_2("after\n")
    err = capfd.readouterr().err
    assert "shown outside quieted" in err and "after" in err
    assert "converter chatter" not in err


def test_captured_output_is_shown_when_the_call_fails(capfd, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    with pytest.raises(RuntimeError, match="conversion failed"):
        with _quiet.quieted(), _quiet.native_output_captured():
            _write_to_fd_2("error: op not supported\n")
            raise RuntimeError("conversion failed")
    assert "error: op not supported" in capfd.readouterr().err


def test_a_users_info_level_keeps_native_output(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with _quiet.quieted(), _quiet.native_output_captured():
        _write_to_fd_2("MLIR says hello\n")
    assert "MLIR says hello" in capfd.readouterr().err


def test_the_float32_converter_summary_is_hidden_when_quiet(capfd, monkeypatch):
    from keras_bnn_af.converters import convert_float32, float32_twin
    from keras_bnn_af.testing import binary_block_net

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    twin = float32_twin(binary_block_net("ste_sign"))
    convert_float32(twin)
    assert FLOAT_CONVERTER_SUMMARY in capfd.readouterr().err  # TF prints it
    with _quiet.quieted():
        flatbuffer = convert_float32(twin)
    assert FLOAT_CONVERTER_SUMMARY not in capfd.readouterr().err
    assert flatbuffer[4:8] == b"TFL3"


# --- progress of long steps ---------------------------------------------------------


def test_commands_turn_progress_on(monkeypatch, tmp_path):
    from keras_bnn_af import searchers

    seen = {}

    def fake_search(config, out, **options):
        seen.update(options)
        raise SystemExit(0)

    monkeypatch.setattr(searchers, "run_search", fake_search)
    with pytest.raises(SystemExit):
        cli.main(["search", "--max-trials", "4", "--out", str(tmp_path / "s")])
    assert seen["progress"] is True


# --- output paths -------------------------------------------------------------------


def test_plot_into_a_missing_folder_is_a_clear_error(tmp_path):
    missing = tmp_path / "no" / "such"
    completed = run_cli("plot", "gaaf:sin_x", "--out", missing / "x.png")
    assert completed.returncode == 2
    assert completed.stderr.startswith("keras-bnn-af plot: error: Cannot write")
    assert f"folder {str(missing)!r} does not exist" in completed.stderr
    assert "Pass --out in an existing folder, or create it first" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["bench", "m.tflite", "--json"], "--json"),
        (["export", "run", "--out"], "--out"),
        (["export", "run", "--out", "{tmp}/m.tflite", "--report"], "--report"),
    ],
)
def test_output_files_need_an_existing_folder(command, option, tmp_path, capsys):
    missing = tmp_path / "missing"
    args = [part.format(tmp=tmp_path) for part in command]
    error = cli_error(capsys, *args, missing / "out.json")
    assert f"keras-bnn-af {command[0]}: error: Cannot write" in error
    assert f"folder {str(missing)!r} does not exist" in error
    assert f"Pass {option} in an existing folder, or create it first" in error
    assert not missing.exists() and not (tmp_path / "m.tflite").exists()


def test_an_output_file_that_is_a_folder_is_refused(tmp_path, capsys):
    error = cli_error(capsys, "plot", "ste_sign", "--out", tmp_path)
    assert f"Cannot write {str(tmp_path)!r}: it is a folder" in error


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--epochs", "1"],
        ["demo", "--epochs", "1"],
        ["search", "--max-trials", "4"],
    ],
)
def test_output_folders_refuse_a_file_in_the_way(command, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    error = cli_error(capsys, *command, "--out", blocker / "run")
    assert f"keras-bnn-af {command[0]}: error: Cannot write" in error
    assert f"{str(blocker)!r} is a file, not a folder" in error
    assert "Pass --out inside a folder" in error
    assert blocker.read_text() == "keep"


def test_output_folders_refuse_an_unwritable_parent(capsys):
    error = cli_error(capsys, "train", "--epochs", "1", "--out", "/proc/kbaf/run")
    assert "folder '/proc' is not writable" in error and "Pass --out in a" in error


def test_library_plots_refuse_a_missing_folder(tmp_path):
    from keras_bnn_af import plots

    missing = tmp_path / "missing"
    calls = [
        lambda path: plots.plot_binarizer("ste_sign", path),
        lambda path: plots.plot_history({"loss": [1.0], "accuracy": [0.5]}, path),
        lambda path: plots.plot_search_history([0.5], path),
        lambda path: plots.plot_confusion(np.eye(2, dtype=int), path),
    ]
    for draw in calls:
        with pytest.raises(ValueError, match="does not exist. Pass path in an"):
            draw(missing / "figure.png")
    assert not missing.exists()
