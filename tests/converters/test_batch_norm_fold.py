"""BatchNorm + sign folded into exact comparisons (`fold_batch_norm_sign`), and
the BatchNorm reader it shares with threshold folding."""

from decimal import Decimal, localcontext

import larq as lq
import numpy as np
import pytest

from keras_bnn_af._keras import keras
from keras_bnn_af.converters.folding import (
    BatchNormParameters,
    FoldedSign,
    fold_batch_norm_sign,
    read_batch_norm,
)


def _random_bn_parameters(channels, seed):
    rng = np.random.default_rng(seed)
    gamma = rng.uniform(0.05, 2.0, channels) * rng.choice([-1.0, 1.0], channels)
    gamma[:4] = [0.0, -0.0, 0.0, 0.0]
    beta = rng.normal(0.0, 1.0, channels)
    beta[:4] = [0.5, -0.5, 0.0, -0.0]  # gamma == 0: constant sign(beta)
    beta[4:6] = 0.0  # threshold exactly at the mean
    mean = rng.normal(0.0, 3.0, channels)
    variance = rng.uniform(1e-3, 30.0, channels)
    # mu and beta * sigma / gamma cancel to ~1e-11: the rounded formula for the
    # threshold is then off by many float64 ulps of the threshold.
    mean[6:8] = 3.0
    beta[6:8] = 3.0 * gamma[6:8] / np.sqrt(variance[6:8] + 1e-3) * (1 + 3e-12)
    return {
        "gamma": gamma,
        "beta": beta,
        "moving_mean": mean,
        "moving_variance": variance,
        "epsilon": 1e-3,
    }


def _bn64(x, p):
    sigma = np.sqrt(p["moving_variance"] + p["epsilon"])
    return p["gamma"] * (x - p["moving_mean"]) / sigma + p["beta"]


def _exact_sign_bn(x, p, c):
    """sign(BN(x)) for channel c in 400-digit decimal arithmetic (an independent
    reference: the float parameters are exact decimals, sqrt is correctly rounded)."""
    with localcontext() as context:
        context.prec = 400
        sigma = (Decimal(p["moving_variance"][c]) + Decimal(p["epsilon"])).sqrt()
        value = Decimal(p["gamma"][c]) * (Decimal(x) - Decimal(p["moving_mean"][c]))
        value = value / sigma + Decimal(p["beta"][c])
    return 1.0 if value >= 0 else -1.0


def test_fold_matches_float64_batch_norm_and_exact_arithmetic():
    p = _random_bn_parameters(64, seed=0)
    folded = fold_batch_norm_sign(p)
    assert np.array_equal(folded.flip, np.where(p["gamma"] < 0, -1.0, 1.0))
    assert list(folded.threshold[:4]) == [-np.inf, np.inf, -np.inf, -np.inf]
    np.testing.assert_array_equal(folded.threshold[4:6], p["moving_mean"][4:6])

    # Random x, far from thresholds in float64 terms: plain float64 NumPy agrees.
    x = np.random.default_rng(1).normal(0.0, 6.0, (500, 64))
    np.testing.assert_array_equal(folded.apply(x), np.where(_bn64(x, p) >= 0, 1, -1))

    # x exactly at the float64 threshold and at its two float64 neighbours.
    t = np.where(np.isfinite(folded.threshold), folded.threshold, 0.0)
    edges = np.stack([t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)])
    folded_edges = folded.apply(edges)
    finite = np.isfinite(folded.threshold)
    assert (folded_edges[0][finite] == 1).all()  # sign(0) = +1 at the threshold
    exact = np.array(
        [[_exact_sign_bn(v, p, c) for c, v in enumerate(row)] for row in edges]
    )
    np.testing.assert_array_equal(folded_edges, exact)
    # The rounded float64 formula may disagree only within its own rounding error.
    bn = _bn64(edges, p)
    disagree = np.where(bn >= 0, 1, -1) != folded_edges
    sigma = np.sqrt(p["moving_variance"] + p["epsilon"])
    bound = 8 * 2.0**-53 * (np.abs(p["gamma"] * (edges - p["moving_mean"]) / sigma))
    bound += 8 * 2.0**-53 * np.abs(p["beta"])
    assert (np.abs(bn[disagree]) <= bound[disagree]).all()


def test_float32_thresholds_round_outward_and_tf_matches_numpy():
    p = _random_bn_parameters(64, seed=2)
    folded = fold_batch_norm_sign(p)
    t32 = folded.threshold_for(np.float32)
    assert t32.dtype == np.float32
    finite = np.isfinite(folded.threshold)
    positive = folded.flip > 0
    assert (t32[positive & finite] >= folded.threshold[positive & finite]).all()
    assert (t32[~positive & finite] <= folded.threshold[~positive & finite]).all()
    t = np.where(np.isfinite(t32), t32, np.float32(0))
    x32 = np.concatenate(
        [
            np.stack([t, np.nextafter(t, np.float32(np.inf))]),
            np.stack([np.nextafter(t, np.float32(-np.inf))]),
            np.random.default_rng(3).normal(0, 6, (64, 64)).astype(np.float32),
        ]
    )
    in_float32 = folded.apply(x32)
    np.testing.assert_array_equal(in_float32, folded.apply(x32.astype(np.float64)))
    np.testing.assert_array_equal(folded.apply_tf(x32).numpy(), in_float32)


def test_fold_of_a_keras_layer_matches_its_float32_output_away_from_thresholds():
    layer = keras.layers.BatchNormalization()
    layer.build((None, 5, 16))
    p = _random_bn_parameters(16, seed=4)
    layer.set_weights(
        [p[k] for k in ("gamma", "beta", "moving_mean", "moving_variance")]
    )
    folded = fold_batch_norm_sign(layer)
    x = np.random.default_rng(5).normal(0, 6, (200, 5, 16)).astype(np.float32)
    keras_sign = lq.math.sign(layer(x, training=False)).numpy()
    np.testing.assert_array_equal(folded.apply(x), keras_sign)


def test_fold_refuses_bad_inputs():
    with pytest.raises(ValueError, match="missing"):
        fold_batch_norm_sign({"gamma": 1.0, "moving_mean": 0.0})
    with pytest.raises(ValueError, match="unknown"):
        fold_batch_norm_sign({"moving_mean": 0.0, "moving_variance": 1.0, "mu": 0})
    with pytest.raises(ValueError, match="positive"):
        fold_batch_norm_sign({"moving_mean": 0.0, "moving_variance": -1.0})
    with pytest.raises(ValueError, match="BatchNormalization"):
        fold_batch_norm_sign(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="not built"):
        fold_batch_norm_sign(keras.layers.BatchNormalization())
    channels_first = keras.layers.BatchNormalization(axis=1)
    channels_first.build((None, 3, 5))
    with pytest.raises(ValueError, match="last"):
        fold_batch_norm_sign(channels_first)
    folded = fold_batch_norm_sign({"moving_mean": [0.0, 1.0], "moving_variance": 1.0})
    assert isinstance(folded, FoldedSign)
    with pytest.raises(ValueError, match="2 channels"):
        folded.apply(np.zeros((3, 4)))


def test_the_old_paths_give_the_same_objects():
    from keras_bnn_af import converters, quantizers
    from keras_bnn_af.quantizers import batch_norm

    assert quantizers.fold_batch_norm_sign is fold_batch_norm_sign
    assert quantizers.FoldedSign is FoldedSign
    assert batch_norm.fold_batch_norm_sign is fold_batch_norm_sign
    assert batch_norm.FoldedSign is FoldedSign
    assert converters.fold_batch_norm_sign is fold_batch_norm_sign


def test_the_reader_fills_in_a_missing_scale_and_offset():
    layer = keras.layers.BatchNormalization(center=False, scale=False)
    layer.build((None, 4, 3))
    layer.set_weights([np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])])
    read = read_batch_norm(layer)
    assert isinstance(read, BatchNormParameters) and read.channels == 3
    np.testing.assert_array_equal(read.gamma, 1.0)
    np.testing.assert_array_equal(read.beta, 0.0)
    np.testing.assert_array_equal(read.mean, [1.0, 2.0, 3.0])
    assert read.epsilon == pytest.approx(1e-3)
    with pytest.raises(ValueError, match=r"no offset \(center=False\)"):
        read_batch_norm(layer, offset_required=True)
    # No offset, no scale: sign(BN(x)) is sign(x - mean).
    np.testing.assert_array_equal(fold_batch_norm_sign(layer).threshold, [1, 2, 3])
