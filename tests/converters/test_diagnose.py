"""Binary layers LCE leaves in float: each known cause, and the probe."""

import pytest

from keras_bnn_af._keras import keras
from keras_bnn_af.converters import diagnose, find_float_convs


@pytest.mark.parametrize(
    "options, cause",
    [
        ({"input_quantizer": "dorefa_quantizer"}, "2-bit"),
        ({"kernel_quantizer": None, "kernel_constraint": None}, "no kernel quantizer"),
        ({"groups": 2}, "16 input channels per group"),
    ],
)
def test_each_known_cause_is_diagnosed(options, cause, binary_conv):
    inputs = keras.Input((6, 6, 32))
    model = keras.Model(inputs, binary_conv("conv", **options)(inputs))
    (found,) = find_float_convs(model, {"LceBconv2d": 0})
    assert found.layer == "conv" and cause in found.reason


def test_a_zero_in_the_quantized_kernel_is_diagnosed(binary_conv, tf_sign):
    inputs = keras.Input((6, 6, 32))
    layer = binary_conv("conv", kernel_quantizer=tf_sign, kernel_constraint=None)
    model = keras.Model(inputs, layer(inputs))
    kernel = layer.get_weights()[0]
    kernel[0, 0, 0, 0] = 0.0
    layer.set_weights([kernel])
    (found,) = find_float_convs(model, {"LceBconv2d": 0})
    assert "not +-s per output channel" in found.reason


def test_an_unexplained_float_conv_is_found_by_converting_layers_alone(
    binary_conv, monkeypatch
):
    monkeypatch.setattr(diagnose, "_conv2d_cause", lambda layer: None)
    inputs = keras.Input((6, 6, 32))
    x = binary_conv("fused")(inputs)
    model = keras.Model(inputs, binary_conv("unfused", pad_values=0.5)(x))
    (found,) = find_float_convs(model, {"LceBconv2d": 1})
    assert found.layer == "unfused" and "on its own" in found.reason
    assert "keras_bnn_af.converters.diagnose" in found.fix


def test_all_causes_are_diagnosed_only_when_bconvs_are_missing(binary_conv, tf_sign):
    inputs = keras.Input((6, 6, 32))
    model = keras.Model(inputs, binary_conv("c", input_quantizer=tf_sign)(inputs))
    assert find_float_convs(model, {"LceBconv2d": 1}) == []
