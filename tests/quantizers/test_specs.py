import larq as lq
import numpy as np
import pytest

from keras_bnn_af import models
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.quantizers import available_binarizers, binarizer_factory

SPECS = {
    "alias": "approx_sign",
    "config dict": {"class_name": "SteSign", "config": {"clip_value": 1.25}},
    "class": lq.quantizers.SwishSign,
    "factory": lambda: lq.quantizers.SteSign(clip_value=1.3),
    "instance": lq.quantizers.SteSign(clip_value=0.5),
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_every_spec_form_gives_a_new_instance_per_layer(spec):
    model = models.build("binarynet", binarizer=spec)
    quantizers = [conv.input_quantizer for conv in models.binary_convolutions(model)]
    assert len({id(q) for q in quantizers}) == len(quantizers) == 4
    assert all(isinstance(q, lq.quantizers.Quantizer) for q in quantizers)
    assert len({type(q) for q in quantizers}) == 1


def test_config_and_instance_specs_keep_their_arguments():
    from_dict = binarizer_factory(SPECS["config dict"])()
    cloned = binarizer_factory(SPECS["instance"])()
    assert from_dict.clip_value == 1.25
    assert cloned.clip_value == 0.5 and cloned is not SPECS["instance"]


def test_stateless_function_quantizer_is_shared_as_is():
    factory = binarizer_factory(lq.quantizers.ste_sign)
    assert factory() is lq.quantizers.ste_sign
    x = tf.constant([-0.5, 0.0, 2.0])
    np.testing.assert_array_equal(factory()(x).numpy(), [-1.0, 1.0, 1.0])


@pytest.mark.parametrize("spec", [3.5, None, ["ste_sign"], b"ste_sign"])
def test_spec_of_the_wrong_kind_is_named_in_the_error(spec):
    with pytest.raises(ValueError, match="Cannot use") as error:
        binarizer_factory(spec)
    message = str(error.value)
    assert repr(spec) in message
    assert "registered alias" in message and "zero-argument factory" in message


def test_unknown_alias_lists_the_registered_ones():
    with pytest.raises(ValueError, match="Unknown binarizer 'ste_sing'") as error:
        binarizer_factory("ste_sing")
    assert "ste_sign" in str(error.value) and "approx_sign" in str(error.value)


def test_alias_of_something_that_is_not_a_quantizer_is_refused():
    with pytest.raises(ValueError, match="not a Larq quantizer"):
        binarizer_factory("weight_clip")


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="Cannot build binarizer") as error:
        binarizer_factory({"class_name": "SteSign", "config": {"clip": 1.0}})
    assert "'clip'" in str(error.value)


def test_factory_returning_one_shared_instance_is_refused():
    shared = lq.quantizers.SteSign()
    with pytest.raises(ValueError, match="same instance"):
        models.build("binarynet", binarizer=lambda: shared)


def test_factory_returning_a_non_quantizer_is_refused():
    with pytest.raises(ValueError, match="not a quantizer"):
        binarizer_factory(lambda: 42)


def test_available_binarizers_are_larq_quantizer_aliases():
    names = available_binarizers()
    assert {"ste_sign", "approx_sign", "swish_sign"} <= set(names)
    objects = keras.utils.get_custom_objects()
    assert all(issubclass(objects[name], lq.quantizers.Quantizer) for name in names)
