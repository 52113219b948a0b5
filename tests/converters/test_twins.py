"""Twins: one clone routine (`clone_with_quantizers`) behind the float32 twin,
the `ste_sign` twin and threshold folding, nested models included."""

import numpy as np
import pytest

from keras_bnn_af import models
from keras_bnn_af._keras import keras
from keras_bnn_af.converters import (
    clone_with_quantizers,
    convert_float32,
    float32_twin,
    sign_twin,
)
from keras_bnn_af.models import QUANTIZER_KEYS, all_layers
from keras_bnn_af.testing import (
    binary_block_net,
    randomize_batch_norm,
    sample_inputs,
    set_quantizer_weights,
)


def _nested_rsign_net() -> keras.Model:
    """float conv -> BN -> [a model of two RSign binary convs] -> pool -> dense."""
    inner_inputs = keras.Input((8, 8, 32))
    x = models.binary_conv2d(32, 3, "rsign", name="inner_a")(inner_inputs)
    x = keras.layers.BatchNormalization(name="inner_bn")(x)
    x = models.binary_conv2d(32, 3, "rsign", name="inner_b")(x)
    inner = keras.Model(inner_inputs, x, name="inner")
    set_quantizer_weights(inner, -0.5, 0.5)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(inner(x))
    model = keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))
    randomize_batch_norm(model)
    randomize_batch_norm(inner, seed=1)
    return model


def _quantizers(layer) -> list:
    return [getattr(layer, key, None) for key in QUANTIZER_KEYS]


def test_float32_twin_has_no_quantizers_and_the_latent_weights():
    model = binary_block_net("rsign", filters=(8, 8))
    twin = float32_twin(model)
    quant_layers = [layer for layer in twin.layers if hasattr(layer, "input_quantizer")]
    assert quant_layers and all(
        layer.input_quantizer is None and layer.kernel_quantizer is None
        for layer in quant_layers
    )
    original = model.get_layer(quant_layers[0].name)
    np.testing.assert_array_equal(
        quant_layers[0].get_weights()[0], original.get_weights()[0]
    )


def test_sign_twin_replaces_every_binarizer_and_keeps_the_other_weights():
    model = binary_block_net("gaaf:x + sin(scale(x))", filters=(32, 32))
    twin = sign_twin(model)
    for layer, copy in zip(model.layers, twin.layers, strict=True):
        if getattr(layer, "input_quantizer", None) is not None:
            assert type(copy.input_quantizer).__name__ == "SteSign"
            kernel, copied = layer.kernel.numpy(), copy.kernel.numpy()
            np.testing.assert_array_equal(kernel, copied)
        else:
            for a, b in zip(layer.get_weights(), copy.get_weights(), strict=True):
                np.testing.assert_array_equal(a, b)
    plain = binary_block_net("ste_sign", filters=(32,))
    assert sign_twin(plain) is plain


def test_float32_twin_of_a_nested_model_drops_every_quantizer_and_its_weights():
    model = _nested_rsign_net()
    twin = float32_twin(model)
    assert isinstance(twin.get_layer("inner"), keras.Model)
    for layer, copy in zip(all_layers(model), all_layers(twin), strict=True):
        assert _quantizers(copy) == [None] * len(QUANTIZER_KEYS)
        owned = models.quantizer_weights(layer)
        own = [w for w in layer.weights if not any(w is q for q in owned)]
        assert len(copy.weights) == len(own)
        for weight, copied in zip(own, copy.get_weights(), strict=True):
            np.testing.assert_array_equal(weight.numpy(), copied)
    assert len(convert_float32(twin)) > 0


def test_sign_twin_of_a_nested_model_is_the_model_with_zero_thresholds():
    model = _nested_rsign_net()
    twin = sign_twin(model)
    inner = twin.get_layer("inner")
    for name in ("inner_a", "inner_b"):
        quantizer = inner.get_layer(name).input_quantizer
        assert type(quantizer).__name__ == "SteSign"
    assert not any(models.quantizer_weights(layer) for layer in all_layers(twin))
    # sign(x - 0) is ste_sign's forward pass: the twin is the model with alpha = 0.
    x = sample_inputs(model, 16)
    expected_before = model.predict(x, verbose=0)
    for layer in all_layers(model):
        for weight in models.quantizer_weights(layer):
            weight.assign(np.zeros(weight.shape))
    np.testing.assert_allclose(
        twin.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5
    )
    assert np.abs(expected_before - twin.predict(x, verbose=0)).max() > 1e-3


def test_clone_sets_new_quantizer_weights_and_keeps_the_rest():
    model = binary_block_net("ste_sign", filters=(32, 32))
    name = models.binary_convolutions(model)[1].name
    replace = {name: {"input_quantizer": "rsign"}}.get
    clone = clone_with_quantizers(model, replace, weights={name: 0.25})
    changed = clone.get_layer(name)
    assert type(changed.input_quantizer).__name__ == "RSign"
    np.testing.assert_array_equal(changed.input_quantizer.alpha.numpy(), 0.25)
    for layer, copy in zip(model.layers, clone.layers, strict=True):
        if layer.name != name:
            for a, b in zip(layer.get_weights(), copy.get_weights(), strict=True):
                np.testing.assert_array_equal(a, b)
    fresh = clone_with_quantizers(model, replace).get_layer(name)
    np.testing.assert_array_equal(fresh.input_quantizer.alpha.numpy(), 0.0)


def test_a_subclassed_model_cannot_be_cloned():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(np.zeros((1, 3), np.float32))
    # Keras rebuilds it from an empty config, but unbuilt: no weights to take.
    with pytest.raises(ValueError, match="has 2 weights to copy, but its rebuilt"):
        float32_twin(model)
