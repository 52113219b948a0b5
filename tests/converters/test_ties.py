"""Rounding ties: explained by flipped re-runs, or counted as mismatches.

The constructed net: binary inputs (9 channels) -> 1x1 binary conv -> BatchNorm
-> 1x1 binary conv -> dense. The BatchNorm puts channel 1's threshold exactly on
the accumulator value 3 (a reachable value: 9 products of +-1 sum to an odd
number), and every other channel's threshold on 0, which no sample reaches.
Keras computes channel 1 at an accumulator of 3 as -1.5e-8 (-1); LCE folds the
BatchNorm into an integer threshold and gives +1. Which samples hit that value
is computed here in NumPy, independently of both.
"""

import larq as lq
import numpy as np
import pytest

from keras_bnn_af._keras import keras
from keras_bnn_af.converters import VerificationError, export_lce, verify

CHANNELS, TIED_CHANNEL, TIED_VALUE = 9, 1, 3.0
FAST = {"float32_twin_size": False}


def _binary_conv(name):
    return lq.layers.QuantConv2D(
        CHANNELS,
        1,
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
        name=name,
    )


def _batch_norm_with_thresholds(layer, thresholds):
    """Scale, offset and statistics whose zero lies exactly at `thresholds`."""
    gamma = np.full(CHANNELS, 0.5, np.float32)
    variance = np.ones(CHANNELS, np.float32)
    mean = np.zeros(CHANNELS, np.float32)
    gamma[TIED_CHANNEL], variance[TIED_CHANNEL], mean[TIED_CHANNEL] = 1 / 7, 3, 0.2
    scale = gamma.astype(np.float64) / np.sqrt(variance + layer.epsilon)
    beta = (-(thresholds - mean.astype(np.float64)) * scale).astype(np.float32)
    layer.set_weights([gamma, beta, mean, variance])


@pytest.fixture(scope="module")
def tied_net():
    """The model, 10 samples (2 hitting the tie) and the tied positions."""
    inputs = keras.Input((1, 1, CHANNELS))
    x = _binary_conv("first")(inputs)
    norm = keras.layers.BatchNormalization(name="bn")
    x = _binary_conv("second")(norm(x))
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    kernel = np.random.default_rng(0).choice([-1.0, 1.0], (1, 1, CHANNELS, CHANNELS))
    model.get_layer("first").set_weights([kernel.astype(np.float32)])
    thresholds = np.zeros(CHANNELS)
    thresholds[TIED_CHANNEL] = TIED_VALUE
    _batch_norm_with_thresholds(norm, thresholds)

    draws = np.random.default_rng(1).standard_normal((200, 1, 1, CHANNELS))
    signs = np.where(draws >= 0, 1.0, -1.0)
    accumulators = np.einsum("nhwi,io->nhwo", signs, kernel[0, 0])
    hits = (accumulators[..., TIED_CHANNEL] == TIED_VALUE).any(axis=(1, 2))
    assert 0 < hits.sum() < len(hits) - 8  # both kinds among the draws
    chosen = np.concatenate([np.flatnonzero(~hits)[:8], np.flatnonzero(hits)[:2]])
    samples = draws[np.sort(chosen)].astype(np.float32)
    tied = [int(i) for i in np.flatnonzero(hits[np.sort(chosen)])]
    return model, samples, tied


def test_an_exact_tie_is_explained_reported_and_passes(tied_net, tmp_path):
    model, samples, tied = tied_net
    report = export_lce(model, tmp_path / "t.tflite", verify_with=samples, **FAST)
    assert report.max_abs_diff > 0.1  # the flipped bit shows in the logits
    assert report.rounding_ties == tied and report.mismatches == 0
    assert report.verified and report.allowed_ties == 2
    assert [t.sample for t in report.tied_samples] == tied
    for sample in report.tied_samples:
        assert sample.explained and sample.max_abs_diff <= 1e-5
        (tie,) = sample.flipped
        assert (tie.layer, tie.index) == ("second", (0, 0, TIED_CHANNEL))
        assert sample.binarized == ((-1.0, 1.0),)  # Keras -1, LCE +1
        assert abs(tie.value) < 1e-7 and tie.ulps < 1
    markdown = report.to_markdown()
    assert f"sample {tied[0]}: a rounding tie" in markdown
    assert f"`second` input [0, 0, {TIED_CHANNEL}]" in markdown
    assert report.to_json()["tied_samples"][0]["flipped"][0]["lce"] == 1.0


def _corrupting(monkeypatch, samples, offset):
    real = verify._run_interpreter

    def corrupted(flatbuffer, inputs, *args, **kwargs):
        outputs, interpreter = real(flatbuffer, inputs, *args, **kwargs)
        outputs = np.array(outputs)
        outputs[samples] += offset
        return outputs, interpreter

    monkeypatch.setattr(verify, "_run_interpreter", corrupted)


def test_a_corrupted_tie_sample_is_a_mismatch(tied_net, tmp_path, monkeypatch):
    # A minority (3 of 10) corrupted, among them both tie candidates: their
    # inputs sit at a threshold, yet no flip reproduces the shifted outputs.
    model, samples, tied = tied_net
    clean = next(i for i in range(len(samples)) if i not in tied)
    _corrupting(monkeypatch, [*tied, clean], 5.0)
    with pytest.raises(VerificationError, match="no side chosen") as raised:
        export_lce(model, tmp_path / "t.tflite", verify_with=samples, **FAST)
    report = raised.value.report
    assert report.mismatches == 3 and report.rounding_ties == []
    assert [(t.sample, t.explained) for t in report.tied_samples] == [
        (i, False) for i in tied
    ]
    assert "2 of them have binarizer inputs at a threshold" in str(raised.value)
    assert f"sample {tied[0]}: a mismatch" in report.to_markdown()
    assert not (tmp_path / "t.tflite").exists()


def test_a_small_shift_on_a_tie_sample_is_not_excused(tied_net, tmp_path, monkeypatch):
    # Shifted by 10x the tolerance on top of LCE's own flipped bit: the flip
    # explains the bit, not the shift.
    model, samples, tied = tied_net
    _corrupting(monkeypatch, tied[:1], 0.01)
    with pytest.raises(VerificationError) as raised:
        export_lce(model, tmp_path / "t.tflite", verify_with=samples, **FAST)
    report = raised.value.report
    assert report.mismatches == 1 and report.rounding_ties == tied[1:]
