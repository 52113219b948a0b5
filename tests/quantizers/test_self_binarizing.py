import copy
import math

import larq as lq
import numpy as np
import pytest

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.callbacks import SharpeningSchedule
from keras_bnn_af.models import binary_convolutions
from keras_bnn_af.quantizers import binarizer_factory
from keras_bnn_af.quantizers.self_binarizing import SelfBinarizing
from keras_bnn_af.testing import (
    binary_block_net,
    lce_check,
    randomize_batch_norm,
    real_values_with_zeros,
    sample_inputs,
)


def np_sign(x):
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


def sharpness_values(model):
    return [
        float(m.sharpness.numpy())
        for m in model.submodules
        if isinstance(m, SelfBinarizing)
    ]


# --- the quantizer ---------------------------------------------------------------


def test_inference_is_sign_with_sign_of_zero_positive():
    x = real_values_with_zeros()
    assert (x == 0).any() and (np.abs(x) == 1).any()
    quantizer = SelfBinarizing(sharpness=3.0)
    expected = np_sign(x)
    np.testing.assert_array_equal(quantizer(x).numpy(), expected)  # training=None
    np.testing.assert_array_equal(quantizer(x, training=False).numpy(), expected)


def test_training_is_tanh_with_its_true_gradient():
    x = tf.constant(real_values_with_zeros())
    upstream = np.random.default_rng(2).normal(size=x.shape).astype(np.float32)
    quantizer = SelfBinarizing(sharpness=3.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantizer(x, training=True)
        loss = tf.reduce_sum(y * upstream)
    x64 = x.numpy().astype(np.float64)
    np.testing.assert_allclose(y.numpy(), np.tanh(3.0 * x64), rtol=1e-6, atol=1e-7)
    expected = upstream * 3.0 * (1.0 - np.tanh(3.0 * x64) ** 2)
    # TensorFlow differentiates tanh as dy * v * (1 - y * y) in float32. Near
    # saturation 1 - y * y is a few float32 ulps of 1 (2**-24 each), and the
    # float32 tanh returns exactly +-1 for |v x| >= 7.9, where 1 - tanh**2 < 6e-7:
    # an absolute error below v * |dy| * 1e-6 there, far below the gradient's scale.
    error = np.abs(tape.gradient(loss, x).numpy() - expected)
    assert (error <= 1e-5 * np.abs(expected) + 3.0 * np.abs(upstream) * 1e-6).all()


def test_symbolic_training_flag_selects_the_branch():
    quantizer = SelfBinarizing(sharpness=2.0)
    x = np.array([-0.5, 0.0, 0.25], np.float32)

    @tf.function
    def run(training):
        return quantizer(x, training=training)

    np.testing.assert_allclose(run(tf.constant(True)), np.tanh(2.0 * x), rtol=1e-6)
    np.testing.assert_array_equal(run(tf.constant(False)), np_sign(x))


def _dense_model(input_v=2.0, kernel_v=3.0):
    inputs = keras.Input((5,))
    outputs = lq.layers.QuantDense(
        3,
        input_quantizer=SelfBinarizing(input_v),
        kernel_quantizer=SelfBinarizing(kernel_v),
        kernel_constraint="weight_clip",
        kernel_initializer=keras.initializers.RandomUniform(-1.0, 1.0, seed=1),
        use_bias=False,
    )(inputs)
    return keras.Model(inputs, outputs)


def test_input_and_kernel_quantizers_follow_the_training_flag_of_the_layer():
    model = _dense_model()
    layer = model.layers[-1]
    w = layer.kernel.latent_variable.numpy().astype(np.float64)
    x = real_values_with_zeros((4, 5), seed=3)
    x64 = x.astype(np.float64)
    upstream = np.random.default_rng(4).normal(size=(4, 3))
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_sum(y * upstream)
    smooth = np.tanh(2.0 * x64) @ np.tanh(3.0 * w)
    np.testing.assert_allclose(y.numpy(), smooth, rtol=1e-5, atol=1e-5)
    (grad,) = tape.gradient(loss, [layer.kernel.latent_variable])
    expected = (np.tanh(2.0 * x64).T @ upstream) * 3.0 * (1 - np.tanh(3.0 * w) ** 2)
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-4, atol=1e-5)
    binary = np_sign(x) @ np_sign(w)
    np.testing.assert_array_equal(model(x, training=False).numpy(), binary)
    np.testing.assert_array_equal(model(x).numpy(), binary)
    np.testing.assert_array_equal(model.predict(x, verbose=0), binary)


def test_fit_trains_through_tanh_and_evaluate_measures_the_binary_model():
    model = _dense_model()
    w = model.layers[-1].kernel.latent_variable.numpy().astype(np.float64)
    x = real_values_with_zeros((4, 5), seed=3)
    model.compile(keras.optimizers.SGD(0.0), "mse")
    train_loss = model.train_on_batch(x, np.zeros((4, 3), np.float32))
    smooth = np.tanh(2.0 * x.astype(np.float64)) @ np.tanh(3.0 * w)
    assert train_loss == pytest.approx(np.mean(smooth**2), rel=1e-5)
    eval_loss = model.evaluate(x, np.zeros((4, 3)), verbose=0)
    assert eval_loss == pytest.approx(np.mean((np_sign(x) @ np_sign(w)) ** 2))


def test_config_round_trip_keeps_the_current_sharpness():
    quantizer = SelfBinarizing(sharpness=2.5, name="sb")
    quantizer.sharpness.assign(4.0)
    config = quantizer.get_config()
    assert config["sharpness"] == 4.0 and config["name"] == "sb"
    clone = SelfBinarizing.from_config(config)
    assert float(clone.sharpness.numpy()) == 4.0
    revived = lq.quantizers.get(lq.quantizers.serialize(quantizer))
    assert isinstance(revived, SelfBinarizing) and revived is not quantizer
    assert float(revived.sharpness.numpy()) == 4.0
    assert SelfBinarizing.precision == 1 and not quantizer.trainable_weights
    assert quantizer.non_trainable_weights == [quantizer.sharpness]


def test_aliases_and_specs_make_new_instances():
    from_alias = lq.quantizers.get("self_binarizing")
    assert isinstance(from_alias, SelfBinarizing)
    assert float(from_alias.sharpness.numpy()) == 1.0
    factory = binarizer_factory("self_binarizing")
    assert factory() is not factory()
    spec = {"class_name": "SelfBinarizing", "config": {"sharpness": 2.0}}
    assert float(binarizer_factory(spec)().sharpness.numpy()) == 2.0


@pytest.mark.parametrize("sharpness", [0.0, -1.0, math.inf, math.nan, True, "2"])
def test_invalid_sharpness_is_refused(sharpness):
    with pytest.raises(ValueError, match="expected a finite number v > 0"):
        SelfBinarizing(sharpness=sharpness)


def test_reusing_one_instance_in_two_layers_is_refused():
    shared = SelfBinarizing()
    inputs = keras.Input((6, 6, 4))
    x = lq.layers.QuantConv2D(4, 3, input_quantizer=shared)(inputs)
    with pytest.raises(ValueError, match="already used by layer"):
        lq.layers.QuantConv2D(4, 3, input_quantizer=shared)(x)


@pytest.mark.parametrize("fmt", ["h5", "tf"])
def test_model_saves_and_reloads_without_custom_objects(tmp_path, fmt):
    inputs = keras.Input((6, 6, 3))
    x = lq.layers.QuantConv2D(
        8,
        3,
        input_quantizer="self_binarizing",
        kernel_quantizer="self_binarizing",
        kernel_constraint="weight_clip",
    )(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization()(x))
    randomize_batch_norm(model, seed=5)
    model.layers[1].input_quantizer.sharpness.assign(3.0)
    model.layers[1].kernel_quantizer.sharpness.assign(7.0)
    path = str(tmp_path / ("model.h5" if fmt == "h5" else "saved"))
    model.save(path, save_format=fmt)
    loaded = keras.models.load_model(path)
    x = sample_inputs(model, 4)
    assert sorted(sharpness_values(loaded)) == [3.0, 7.0]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x))
    np.testing.assert_array_equal(
        loaded(x, training=True).numpy(), model(x, training=True).numpy()
    )


# --- SharpeningSchedule ------------------------------------------------------------


def _fit(model, callbacks, *, epochs=1, samples=8, batch_size=2):
    x = sample_inputs(model, samples, seed=2)
    y = np.zeros((samples, *model.output_shape[1:]), np.float32)
    if model.optimizer is None:
        model.compile(keras.optimizers.SGD(0.01), "mse")
    return model.fit(
        x, y, epochs=epochs, batch_size=batch_size, callbacks=callbacks, verbose=0
    )


def _nested_model():
    """An outer model holding an inner model; 3 SelfBinarizing quantizers in all."""
    inner_in = keras.Input((5,))
    inner = keras.Model(
        inner_in,
        lq.layers.QuantDense(
            4,
            input_quantizer="self_binarizing",
            kernel_quantizer="self_binarizing",
            kernel_constraint="weight_clip",
        )(inner_in),
    )
    inputs = keras.Input((5,))
    x = inner(inputs)
    x = lq.layers.QuantDense(2, input_quantizer="self_binarizing")(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("linear", [2.0, 4.0, 6.0, 8.0, 8.0]),
        ("exponential", [2.0, 2.0 * 4 ** (1 / 3), 2.0 * 4 ** (2 / 3), 8.0, 8.0]),
    ],
)
def test_epoch_schedule_sets_every_quantizer_and_logs(schedule, expected):
    model = _nested_model()
    seen = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(sharpness_values(model))
    )
    callback = SharpeningSchedule(schedule, start=2.0, end=8.0, duration=3)
    history = _fit(model, [callback, recorder], epochs=5)
    expected32 = [float(np.float32(v)) for v in expected]
    assert seen == [[v] * 3 for v in expected32]
    np.testing.assert_array_equal(history.history["sharpness"], expected32)
    assert sharpness_values(model) == [expected32[-1]] * 3


def test_step_schedule_follows_the_global_step_across_fits():
    model = _nested_model()
    seen = []
    recorder = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: seen.append(sharpness_values(model)[0])
    )
    callback = SharpeningSchedule(
        "exponential", start=1.0, end=1000.0, duration=6, update_freq="step"
    )
    _fit(model, [callback, recorder], samples=8, batch_size=2)  # 4 steps
    _fit(model, [callback, recorder], samples=8, batch_size=2)  # steps 4..7
    expected = [float(np.float32(1000.0 ** (min(t, 6) / 6))) for t in range(8)]
    assert seen == expected
    assert sharpness_values(model) == [expected[-1]] * 3


def test_callable_schedule():
    model = _nested_model()
    history = _fit(model, [SharpeningSchedule(lambda t: 1.5 + t)], epochs=3)
    assert history.history["sharpness"] == [1.5, 2.5, 3.5]


def test_schedule_deep_copies_without_a_model():
    callback = SharpeningSchedule("linear", start=1.0, end=4.0, duration=2)
    assert callback.model is None
    _fit(_nested_model(), [callback])
    assert callback.model is not None
    clone = copy.deepcopy(callback)
    assert clone is not callback and clone.model is None
    assert (clone.schedule, clone.start, clone.end, clone.duration) == (
        "linear",
        1.0,
        4.0,
        2,
    )
    assert [clone.sharpness_at(t) for t in range(4)] == [1.0, 2.5, 4.0, 4.0]
    copy.deepcopy(SharpeningSchedule(lambda t: 2.0 + t))


def test_schedule_without_self_binarizing_quantizers_is_an_error():
    model = binary_block_net("ste_sign", input_shape=(4, 4, 2), filters=(4,))
    with pytest.raises(ValueError, match="found no SelfBinarizing quantizer"):
        _fit(model, [SharpeningSchedule("linear", end=3.0, duration=2)])


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"schedule": "cosine", "end": 2.0, "duration": 2}, "expected 'linear'"),
        ({"end": 2.0, "duration": 0}, "positive integer"),
        ({"end": 2.0}, "positive integer"),
        ({"end": -2.0, "duration": 3}, "finite sharpness"),
        ({"start": 0.0, "end": 2.0, "duration": 3}, "finite sharpness"),
        ({"schedule": lambda t: t + 1, "end": 2.0}, "Drop end"),
        ({"end": 2.0, "duration": 3, "update_freq": "batch"}, "'epoch' or 'step'"),
    ],
)
def test_invalid_schedule_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        SharpeningSchedule(**arguments)


def test_callable_returning_an_invalid_sharpness_is_named():
    with pytest.raises(ValueError, match="returned 0 for t=0"):
        _fit(_nested_model(), [SharpeningSchedule(lambda t: 0)])


# --- Larq Compute Engine -----------------------------------------------------------

FULLY_BINARY = {
    "CONV_2D": 1,
    "LceQuantize": 1,
    "LceBconv2d": 3,
    "MEAN": 1,
    "FULLY_CONNECTED": 1,
}


def test_lce_binarizes_the_inference_path():
    model = binary_block_net("self_binarizing")
    for conv in binary_convolutions(model):
        conv.input_quantizer.sharpness.assign(37.5)
    check = lce_check(model, sample_inputs(model))
    assert check.op_counts["LceBconv2d"] == check.binary_convs == 3
    assert dict(check.op_counts) == FULLY_BINARY
    assert check.max_abs_diff <= 1e-3


def test_lce_binarizes_self_binarizing_kernels():
    inputs = keras.Input((10, 10, 8))
    x = keras.layers.Conv2D(32, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    for _ in range(3):
        x = lq.layers.QuantConv2D(
            32,
            3,
            padding="same",
            pad_values=1.0,
            input_quantizer="self_binarizing",
            kernel_quantizer=SelfBinarizing(sharpness=5.0),
            kernel_constraint="weight_clip",
            use_bias=False,
        )(x)
        x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    randomize_batch_norm(model, seed=3)
    check = lce_check(model, sample_inputs(model))
    assert dict(check.op_counts) == FULLY_BINARY
    assert check.max_abs_diff <= 1e-3
