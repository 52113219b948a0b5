import larq as lq
import numpy as np
import pytest

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.models import binary_convolutions
from keras_bnn_af.quantizers import binarizer_factory
from keras_bnn_af.quantizers.rsign import RSign
from keras_bnn_af.testing import (
    binary_block_net,
    lce_check,
    randomize_batch_norm,
    real_values_with_zeros,
    sample_inputs,
)

#: Dyadic thresholds, so alpha, alpha + 1 and alpha - 1 are exact in float32.
ALPHA = np.array([0.0, 0.25, -0.5, 0.75, -1.25], np.float32)


def inputs_with_edges():
    """(4, 6, 5) values with zeros, +-1, and x = alpha, alpha +- 1 per channel."""
    x = real_values_with_zeros((4, 6, 5), seed=7)
    x[0, 0], x[0, 1], x[0, 2] = ALPHA, ALPHA + 1, ALPHA - 1
    # Just below alpha. Not a subnormal: TensorFlow's CPU kernels flush those to
    # zero, so sign(0 - 1e-45) is +1 there (and in every larq.math.sign).
    below = np.nextafter(ALPHA, np.float32(-9))
    x[1, 0] = np.where(ALPHA == 0, -np.finfo(np.float32).tiny, below)
    x[1, 1] = ALPHA + np.float32(0.5)
    return x


def built_rsign(alpha=ALPHA):
    quantizer = RSign()
    quantizer.build((None, alpha.shape[0]))
    quantizer.alpha.assign(alpha)
    return quantizer


def test_forward_is_sign_of_x_minus_alpha_with_ties_to_plus_one():
    x = inputs_with_edges()
    y = built_rsign()(x).numpy()
    u = x - ALPHA  # float32, as in the quantizer
    np.testing.assert_array_equal(y, np.where(u >= 0, 1.0, -1.0))
    assert (y[0, 0] == 1).all() and (y[1, 0] == -1).all()  # at and just below alpha


def test_pseudo_gradients_of_x_and_alpha():
    x = tf.constant(inputs_with_edges())
    upstream = np.random.default_rng(8).normal(size=x.shape).astype(np.float32)
    quantizer = built_rsign()
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(quantizer(x) * upstream)
    grad_x, grad_alpha = tape.gradient(loss, [x, quantizer.alpha])
    u = x.numpy() - ALPHA
    expected_x = upstream * np.maximum(0.0, 2.0 - 2.0 * np.abs(u))
    np.testing.assert_allclose(grad_x.numpy(), expected_x, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(grad_x.numpy()[0, 1:3], 0.0)  # |x - alpha| == 1
    np.testing.assert_allclose(
        grad_alpha.numpy(), -expected_x.sum(axis=(0, 1)), rtol=1e-5, atol=1e-6
    )


def test_alpha_is_a_trainable_per_channel_weight_of_the_layer():
    layer = lq.layers.QuantConv2D(4, 3, input_quantizer="rsign")
    layer.build((None, 6, 6, 5))
    layer(tf.zeros((1, 6, 6, 5)))
    alpha = layer.input_quantizer.alpha
    assert alpha.shape == (5,) and not np.any(alpha.numpy())
    assert any(w is alpha for w in layer.trainable_weights)
    layer.trainable = False
    assert any(w is alpha for w in layer.non_trainable_weights)
    assert any(w is alpha for w in layer.weights)


def test_one_training_step_moves_alpha_against_its_gradient():
    inputs = keras.Input((6, 6, 5))
    x = lq.layers.QuantConv2D(4, 3, input_quantizer="rsign", use_bias=False)(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = sample_inputs(model, 8)
    y = np.ones((8, 4), np.float32)
    alpha = model.layers[1].input_quantizer.alpha
    before = alpha.numpy()
    with tf.GradientTape() as tape:  # the loss `fit` minimizes: the batch's MSE
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
    gradient = tape.gradient(loss, alpha).numpy()
    assert np.all(np.abs(gradient) > 1e-4), gradient  # every channel gets a push
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)  # one step
    step = alpha.numpy() - before
    np.testing.assert_array_equal(np.sign(step), -np.sign(gradient))
    np.testing.assert_allclose(step, -0.1 * gradient, rtol=1e-4, atol=1e-7)


def test_unknown_channel_axis_is_refused():
    with pytest.raises(ValueError, match="known last"):
        RSign().build(tf.TensorShape([None, None]))


def test_config_round_trip_and_aliases():
    quantizer = RSign(alpha_initializer=keras.initializers.Constant(0.5), name="rs")
    config = quantizer.get_config()
    assert config["name"] == "rs"
    clone = RSign.from_config(config)
    clone.build((None, 3))
    np.testing.assert_array_equal(clone.alpha.numpy(), [0.5, 0.5, 0.5])
    revived = lq.quantizers.get(lq.quantizers.serialize(quantizer))
    assert isinstance(revived, RSign) and revived is not quantizer
    assert isinstance(lq.quantizers.get("rsign"), RSign)
    factory = binarizer_factory("rsign")
    assert isinstance(factory(), RSign) and factory() is not factory()
    assert RSign.precision == 1


def test_reusing_one_instance_in_two_layers_is_refused():
    shared = RSign()
    inputs = keras.Input((6, 6, 4))
    x = lq.layers.QuantConv2D(4, 3, input_quantizer=shared)(inputs)
    with pytest.raises(ValueError, match="already used by layer") as error:
        lq.layers.QuantConv2D(4, 3, input_quantizer=shared)(x)
    assert "'rsign'" in str(error.value)  # the fix: pass the alias instead


@pytest.mark.parametrize("fmt", ["h5", "tf"])
def test_model_saves_and_reloads_without_custom_objects(tmp_path, fmt):
    model = binary_block_net("rsign", input_shape=(6, 6, 4), filters=(8, 8))
    rng = np.random.default_rng(9)
    for conv in binary_convolutions(model):
        alpha = conv.input_quantizer.alpha
        alpha.assign(rng.normal(0, 0.5, alpha.shape).astype(np.float32))
    path = str(tmp_path / ("model.h5" if fmt == "h5" else "saved"))
    model.save(path, save_format=fmt)
    loaded = keras.models.load_model(path)
    for old, new in zip(
        binary_convolutions(model), binary_convolutions(loaded), strict=True
    ):
        assert isinstance(new.input_quantizer, RSign)
        np.testing.assert_array_equal(
            new.input_quantizer.alpha.numpy(), old.input_quantizer.alpha.numpy()
        )
    x = sample_inputs(model, 4)
    np.testing.assert_array_equal(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )


def test_lce_folds_the_thresholds_into_the_binary_convolutions():
    model = binary_block_net("rsign")
    rng = np.random.default_rng(10)
    for conv in binary_convolutions(model):
        alpha = conv.input_quantizer.alpha
        alpha.assign(rng.normal(0, 0.5, alpha.shape).astype(np.float32))
    randomize_batch_norm(model, seed=0)
    check = lce_check(model, sample_inputs(model))
    assert check.op_counts["LceBconv2d"] == check.binary_convs == 3
    # Exactly the ops of the plain ste_sign network: the first `x - alpha` folds
    # into the float conv + BatchNorm before the one LceQuantize, the others into
    # the output thresholds of the bit-packed binary convolutions.
    assert dict(check.op_counts) == {
        "CONV_2D": 1,
        "LceQuantize": 1,
        "LceBconv2d": 3,
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
    }
    assert check.max_abs_diff <= 1e-3
