"""`track`: plain lines when not on a terminal, nothing when disabled; the long
library steps are silent unless asked for progress."""

import io

import larq_compute_engine as lce
import numpy as np
import pytest

from keras_bnn_af import progress
from keras_bnn_af.benchmarks import benchmark_tflite
from keras_bnn_af.converters import verify
from keras_bnn_af.progress import track
from keras_bnn_af.testing import binary_block_net


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_end_with_the_count_when_not_a_terminal(monkeypatch):
    stream = io.StringIO()
    assert list(track(range(10), "counting", stream=stream)) == list(range(10))
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("counting: 10/10 (")
    assert 1 <= len(lines) <= 4

    monkeypatch.setattr(progress, "LINE_INTERVAL", 0.0)  # every quarter is "long"
    stream = io.StringIO()
    list(track(iter(range(8)), "counting", total=8, stream=stream))
    counts = [line.split(" (")[0] for line in stream.getvalue().splitlines()]
    assert counts == [f"counting: {n}/8" for n in (2, 4, 6, 8)]


def test_a_terminal_gets_a_bar_that_is_erased_at_the_end():
    stream = Terminal()
    assert list(track(range(5), "drawing", stream=stream)) == list(range(5))
    text = stream.getvalue()
    assert text.startswith("\rdrawing:") and "/5 [" in text
    assert text.endswith("\r") and text.split("\r")[-2].strip() == ""  # erased


def test_disabled_returns_the_items_and_prints_nothing(capsys):
    items = [1, 2, 3]
    assert track(items, "quiet", enabled=False) is items
    assert capsys.readouterr() == ("", "")


@pytest.fixture(scope="module")
def flatbuffer():
    return lce.convert_keras_model(binary_block_net("ste_sign"))


def test_kernel_choice_is_silent_unless_asked(flatbuffer, capsys):
    options = {"runs": 1, "trial_runs": 1, "warmup": 0}
    benchmark_tflite(flatbuffer, **options)
    assert capsys.readouterr() == ("", "")
    benchmark_tflite(flatbuffer, **options, progress=True)
    assert "choosing LCE kernels: 4/4" in capsys.readouterr().err


def test_verification_progress_counts_samples_and_keeps_the_outputs(flatbuffer, capsys):
    inputs = np.random.default_rng(0).standard_normal((6, 12, 12, 8), np.float32)
    quiet, kernels = verify._run_interpreter(flatbuffer, inputs)
    assert capsys.readouterr() == ("", "")
    shown, _ = verify._run_interpreter(flatbuffer, inputs, progress=True)
    assert "verifying on LCE's interpreter: 6/6" in capsys.readouterr().err
    np.testing.assert_array_equal(quiet, shown)
    assert kernels == "default"
