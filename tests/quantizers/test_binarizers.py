"""Registry-driven checks: every keras-bnn-af binarizer works as a Larq quantizer."""

import json

import larq as lq
import numpy as np
import pytest

from keras_bnn_af import training
from keras_bnn_af._keras import keras
from keras_bnn_af.models import binary_conv2d
from keras_bnn_af.quantizers import BINARIZERS, binarizer_factory
from keras_bnn_af.testing import binary_block_net, lce_check, sample_inputs

#: alias -> constructor arguments of one non-default instance.
EXAMPLES = {
    "gaaf": {"af": "x + sin(scale(x))", "clip": 1.2},
    "dithered_sign": {"kernel": "bayer4", "scale": 0.5},
    "rsign": {},
    "self_binarizing": {"sharpness": 2.5},
}


def _spec(alias):
    return {"class_name": BINARIZERS[alias].__name__, "config": EXAMPLES[alias]}


def _tiny_model(spec):
    inputs = keras.Input((6, 6, 4))
    x = binary_conv2d(8, 3, binarizer_factory(spec)())(inputs)
    x = keras.layers.BatchNormalization()(x)
    return keras.Model(inputs, x)


def test_every_registered_binarizer_has_an_example():
    assert set(BINARIZERS) == set(EXAMPLES)


@pytest.mark.parametrize("alias", sorted(EXAMPLES))
def test_config_round_trip(alias):
    cls = BINARIZERS[alias]
    quantizer = cls(**EXAMPLES[alias])
    config = quantizer.get_config()
    clone = cls.from_config(config)
    assert json.dumps(clone.get_config(), sort_keys=True) == json.dumps(
        config, sort_keys=True
    )
    x = sample_inputs(_tiny_model(alias), count=2)
    np.testing.assert_array_equal(quantizer(x).numpy(), clone(x).numpy())


@pytest.mark.parametrize("alias", sorted(EXAMPLES))
def test_alias_and_config_dict_work_where_larq_takes_a_quantizer(alias):
    cls = BINARIZERS[alias]
    assert isinstance(lq.quantizers.get(_spec(alias)), cls)
    layer = lq.layers.QuantConv2D(4, 3, input_quantizer=alias)
    assert isinstance(layer.input_quantizer, cls)
    assert cls.precision == 1


@pytest.mark.parametrize("alias", sorted(EXAMPLES))
@pytest.mark.parametrize("save_format", ["h5", "tf"])
def test_models_reload_without_custom_objects(alias, save_format, tmp_path):
    model = binary_block_net(_spec(alias), filters=(8, 8))
    x = sample_inputs(model, count=4)
    path = tmp_path / ("model.h5" if save_format == "h5" else "saved_model")
    model.save(path, save_format=save_format)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(
        model.predict(x, verbose=0), reloaded.predict(x, verbose=0)
    )
    assert {
        type(c.input_quantizer)
        for c in reloaded.layers
        if hasattr(c, "input_quantizer") and c.input_quantizer
    } == {BINARIZERS[alias]}


@pytest.mark.parametrize("alias", sorted(EXAMPLES))
def test_summary_reports_the_binary_convs_as_one_bit(alias):
    model = _tiny_model(_spec(alias))
    lq.models.summary(model, print_fn=lambda *_: None)
    conv_profile = lq.models.ModelProfile(model).layer_profiles[1]
    assert conv_profile.input_precision == 1
    assert conv_profile.op_count("mac", 1) == 6 * 6 * 3 * 3 * 4 * 8


@pytest.mark.parametrize("alias", sorted(EXAMPLES))
def test_one_instance_in_two_layers_is_refused(alias):
    quantizer = BINARIZERS[alias](**EXAMPLES[alias])
    inputs = keras.Input((6, 6, 4))
    x = lq.layers.QuantConv2D(4, 3, input_quantizer=quantizer)(inputs)
    with pytest.raises(ValueError, match="belongs to one layer"):
        lq.layers.QuantConv2D(4, 3, input_quantizer=quantizer)(x)


@pytest.mark.parametrize("alias", sorted(EXAMPLES))
def test_lce_makes_one_bconv_per_binary_conv_and_matches_keras(alias):
    model = binary_block_net(_spec(alias))
    check = lce_check(model, sample_inputs(model))
    assert check.op_counts["LceBconv2d"] == check.binary_convs == 3
    assert check.max_abs_diff <= 1e-3  # float32 accumulation order only


@pytest.mark.parametrize("alias", sorted(EXAMPLES))
def test_training_accepts_each_binarizer(alias):
    config = training.TrainConfig(
        epochs=1, max_samples=64, batch_size=32, binarizer=alias
    )
    result = training.train(config, verbose=0)
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0
    sharpened = "sharpness" in result.history
    assert sharpened == (alias == "self_binarizing")
