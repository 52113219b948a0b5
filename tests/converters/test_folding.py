"""Threshold folding: monotone binarizers export with the operators of `ste_sign`."""

import numpy as np
import pytest

from keras_bnn_af import models
from keras_bnn_af._keras import keras
from keras_bnn_af.converters import export, export_lce, fold_thresholds
from keras_bnn_af.converters.folding import read_batch_norm
from keras_bnn_af.quantizers import af
from keras_bnn_af.testing import (
    binary_block_net,
    randomize_batch_norm,
    set_quantizer_weights,
)

FAST = {"num_samples": 64, "float32_twin_size": False}


def _binarynet(spec, seed=0):
    keras.utils.set_random_seed(seed)
    model = models.build("binarynet", binarizer=spec)
    randomize_batch_norm(model, seed=seed)
    return model


def _inputs(model, n=256, seed=1):
    shape = (n, *model.input_shape[1:])
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _binarizer_inputs(model, x):
    layers = [
        layer for layer in model.layers if getattr(layer, "input_quantizer", None)
    ]
    probe = keras.Model(model.inputs, [layer.input for layer in layers])
    return layers, [np.asarray(a) for a in probe.predict(x, verbose=0)]


@pytest.fixture(scope="module")
def ste_sign_counts(tmp_path_factory):
    path = tmp_path_factory.mktemp("fold") / "ste.tflite"
    return export_lce(_binarynet("ste_sign"), path, **FAST).op_counts


@pytest.mark.parametrize(
    "spec, low, high, varying",
    [
        ("gaaf:x_plus_sin_x", 0, 0, False),
        ("gaaf:x + sin(scale(x))", 0.2, 1.0, False),  # 1 + s cos(s x) >= 0, t = 0
        ("gaaf:x^3 + shift(x)", -0.5, 0.5, True),
        ("rsign", -0.5, 0.5, True),
    ],
)
def test_monotone_binarizers_export_with_the_operators_of_ste_sign(
    spec, low, high, varying, ste_sign_counts, tmp_path
):
    model = _binarynet(spec)
    set_quantizer_weights(model, low, high)
    report = export_lce(model, tmp_path / "m.tflite", **FAST)
    assert report.verified and report.top1_agreement == 1.0
    by_layer = {fold.layer: fold for fold in report.threshold_folds}
    assert report.folded_layers == ["conv_1", "conv_2", "classifier_0", "classifier_1"]
    assert by_layer["conv_1"].into == "batch_norm:conv_0_bn"  # through a MaxPool
    if varying:  # 3,136 thresholds after the Reshape: no BatchNorm fits
        assert by_layer["classifier_0"].into == "threshold"
        assert "Reshape" in by_layer["classifier_0"].reason
        assert report.elementwise_ops == {"SUB": 1}
    else:  # one threshold per layer passes the Reshape
        assert report.op_counts == ste_sign_counts
        assert report.elementwise_ops == {}


def test_folded_model_binarizes_exactly_like_the_original():
    """NumPy check: each layer's original binarizer output sign(AF(a)) equals the
    sign of the folded model's binarizer input (t moved into the BatchNorm)."""
    formula = "x^3 + shift(x)"  # t_c = the real root of t^3 + t + b_c
    model = _binarynet(f"gaaf:{formula}", seed=2)
    set_quantizer_weights(model, -0.5, 0.5, seed=2)
    folded, folds = fold_thresholds(model)
    assert all(fold.folded for fold in folds)
    x = _inputs(model, n=64)
    layers, originals = _binarizer_inputs(model, x)
    folded_layers, shifted = _binarizer_inputs(folded, x)
    for layer, copy, a, b in zip(
        layers, folded_layers, originals, shifted, strict=True
    ):
        if copy.input_quantizer.weights:  # after the Reshape: RSign(alpha = t)
            b = b - copy.input_quantizer.alpha.numpy()
        shift = layer.input_quantizer.af_weights[0].numpy().astype(np.float64)
        values = af.evaluate_numpy(af.parse(formula), a.astype(np.float64), [shift])
        expected = np.where(values >= 0, 1, -1)
        near = np.abs(values) < 1e-5  # float32 rounding of BN(y) - t
        assert np.array_equal(expected[~near], np.where(b >= 0, 1, -1)[~near])
        assert near.mean() < 1e-3, layer.name
    np.testing.assert_array_equal(
        model.predict(x, verbose=0).argmax(-1), folded.predict(x, verbose=0).argmax(-1)
    )


@pytest.mark.parametrize(
    "spec, low, high, reason",
    [
        ("gaaf:sin_x", 0, 0, "not non-decreasing"),
        ("gaaf:x + sin(scale(x))", 1.5, 3.0, "not non-decreasing"),  # s > 1
        ("gaaf:exp(x)", 0, 0, "threshold is infinite"),  # always +1
        ("dithered_sign:design_2x2", 0, 0, "no per-channel threshold"),
    ],
)
def test_unfoldable_binarizers_stay_and_the_report_says_why(spec, low, high, reason):
    model = binary_block_net(spec, filters=(32, 32))
    set_quantizer_weights(model, low, high)
    folded, folds = fold_thresholds(model)
    assert folded is model
    assert [fold.folded for fold in folds] == [False, False]
    assert all(reason in fold.reason for fold in folds)


def test_ste_sign_and_self_binarizing_need_no_folding():
    for spec in ("ste_sign", "self_binarizing"):
        model = binary_block_net(spec, filters=(32,))
        folded, folds = fold_thresholds(model)
        assert folded is model
        assert all(not fold.folded for fold in folds)  # listed, nothing to do


def test_a_batch_norm_feeding_two_layers_is_left_alone():
    inputs = keras.Input((8, 8, 32))
    x = keras.layers.BatchNormalization()(inputs)
    a = models.binary_conv2d(32, 3, "rsign", name="a")(x)
    b = models.binary_conv2d(32, 3, "rsign", name="b")(x)
    model = keras.Model(inputs, keras.layers.Add()([a, b]))
    set_quantizer_weights(model, -0.5, 0.5)
    folded, folds = fold_thresholds(model)
    assert [fold.into for fold in folds] == ["threshold", "threshold"]
    assert all("feeds more than one layer" in fold.reason for fold in folds)
    x = _inputs(model, n=16)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), folded.predict(x, verbose=0)
    )


def test_report_lists_folds_in_json_and_markdown(tmp_path):
    model = binary_block_net("gaaf:x_plus_sin_x", filters=(32, 32))
    report = export_lce(model, tmp_path / "m.tflite", **FAST)
    data = report.to_json()
    assert (
        data["folded_layers"] == report.folded_layers
        and len(data["folded_layers"]) == 2
    )
    assert data["unfoldable_layers"] == []
    assert data["threshold_folds"][0]["into"].startswith("batch_norm:")
    assert "**Threshold folding**" in report.to_markdown()
    unfolded = export_lce(model, tmp_path / "u.tflite", fold=False, **FAST)
    assert unfolded.threshold_folds == [] and unfolded.elementwise_ops
    assert report.elementwise_ops == {}


def test_a_fold_that_changes_top1_falls_back_with_a_warning(tmp_path, monkeypatch):
    model = binary_block_net("rsign", filters=(32,))
    set_quantizer_weights(model, -0.5, 0.5)

    def broken(original):
        folded, folds = fold_thresholds(original)
        dense = folded.layers[-1]
        kernel, bias = dense.get_weights()
        dense.set_weights([-kernel, bias])  # a different top-1 everywhere
        return folded, folds

    monkeypatch.setattr(export, "fold_thresholds", broken)
    with pytest.warns(UserWarning, match="Threshold folding not applied"):
        report = export_lce(model, tmp_path / "m.tflite", **FAST)
    assert report.verified and report.folded_layers == []
    assert "changed the top-1 class" in report.threshold_folds[0].reason


def test_a_batch_norm_without_offset_is_refused_with_the_shared_readers_reason():
    inputs = keras.Input((8, 8, 32))
    x = keras.layers.BatchNormalization(center=False, name="no_beta")(inputs)
    x = models.binary_conv2d(32, 3, "rsign", name="a")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    set_quantizer_weights(model, -0.5, 0.5)
    (fold,) = fold_thresholds(model)[1]
    assert fold.into == "threshold"  # an RSign holding t instead
    with pytest.raises(ValueError) as raised:
        read_batch_norm(model.get_layer("no_beta"), offset_required=True)
    assert fold.reason == str(raised.value)
    assert "has no offset (center=False)" in fold.reason


def test_a_batch_norm_with_non_finite_statistics_is_not_folded_into():
    model = binary_block_net("rsign", filters=(32,))
    set_quantizer_weights(model, -0.5, 0.5)
    batch_norm = model.layers[2]
    weights = batch_norm.get_weights()
    weights[3][0] = np.inf  # moving variance
    batch_norm.set_weights(weights)
    (fold,) = fold_thresholds(model)[1]
    assert fold.into == "threshold" and "non-finite" in fold.reason
