"""Fixtures shared by the converter tests: binary convs LCE may leave in float,
and export reports that take a conversion to make (made once per session)."""

import larq as lq
import pytest

from keras_bnn_af import models
from keras_bnn_af._keras import keras, tf
from keras_bnn_af.converters import export_lce
from keras_bnn_af.testing import binary_block_net


def _tf_sign(x):
    """A binarizer LCE cannot see: `tf.sign`, not `larq.math.sign`."""
    return tf.sign(x)


@pytest.fixture(scope="session")
def tf_sign():
    return _tf_sign


@pytest.fixture(scope="session")
def binary_conv():
    """`binary_conv(name, **options)`: a 32-filter 3x3 binary QuantConv2D that
    LCE fuses, unless `options` say otherwise."""

    def make(name, **options):
        config = {
            "padding": "same",
            "pad_values": 1.0,
            "input_quantizer": "ste_sign",
            "kernel_quantizer": "ste_sign",
            "kernel_constraint": "weight_clip",
            "use_bias": False,
            **options,
        }
        return lq.layers.QuantConv2D(32, 3, name=name, **config)

    return make


@pytest.fixture(scope="session")
def gaaf_report(tmp_path_factory):
    """A `gaaf:sin_x` binary block net's report (64 seeded samples)."""
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("export") / "gaaf.tflite"
    model = binary_block_net("gaaf:sin_x")
    return export_lce(model, path, num_samples=64, float32_twin_size=False)


@pytest.fixture(scope="session")
def binarynet_report(tmp_path_factory):
    """An untrained binarynet's report, verified on 32 MNIST digits."""
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("export") / "binarynet.tflite"
    model = models.build("binarynet")
    return export_lce(model, path, verify_with="mnist", num_samples=32)
