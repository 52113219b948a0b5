import json

import larq as lq
import numpy as np
import pytest

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.quantizers import available_binarizers, binarizer_factory
from keras_bnn_af.quantizers.dithered_sign import (
    DitheredSign,
    bayer_matrix,
    design_kernel,
    threshold_kernel,
)
from keras_bnn_af.testing import (
    binary_block_net,
    lce_check,
    real_values_with_zeros,
    sample_inputs,
)

# DeSign's shipped kernels, typed in from seeds.md section 4.
DESIGN_2X2 = [[0.631, 0.631], [0.3118, 0.9671]]
DESIGN_3X3 = [[0.9671, 0.631, 0.9671], [0.631, 0.3118, 0.631], [0.9671, 0.631, 0.9671]]
# Slice k of the 2x2x4 "shifting" kernel: base level indices [[1, 1], [0, 2]] + k.
SHIFTING_SLICES = [
    [[0.631, 0.631], [0.3118, 0.9671]],
    [[0.9671, 0.9671], [0.631, 1.3352]],
    [[1.3352, 1.3352], [0.9671, 1.7656]],
    [[1.7656, 1.7656], [1.3352, 2.3419]],
]
RANDOM_3D = np.random.default_rng(7).normal(size=(3, 2, 4))


def reference(x, kernel, *, scale=1.0, clip_value=1.0):
    """Forward values and STE mask, one element at a time by index arithmetic."""
    x = np.asarray(x, np.float32)
    kernel = np.asarray(kernel, np.float64)
    if kernel.ndim == 2:
        kernel = kernel[:, :, None]
    m, n, f = kernel.shape
    outputs = np.zeros_like(x)
    mask = np.zeros_like(x)
    for b, i, j, c in np.ndindex(*x.shape):
        diff = x[b, i, j, c] - np.float32(kernel[i % m, j % n, c % f] * scale)
        outputs[b, i, j, c] = 1.0 if diff >= 0 else -1.0
        mask[b, i, j, c] = clip_value is None or abs(diff) <= clip_value
    return outputs, mask


def with_ties(x, kernel, *, scale=1.0):
    """Sets every third element exactly to its threshold (float32)."""
    x = np.array(x, np.float32)
    kernel = np.asarray(kernel, np.float64)
    if kernel.ndim == 2:
        kernel = kernel[:, :, None]
    m, n, f = kernel.shape
    for b, i, j, c in np.ndindex(*x.shape):
        if (b + i + j + c) % 3 == 0:
            x[b, i, j, c] = np.float32(kernel[i % m, j % n, c % f] * scale)
    return x


def forward_and_gradient(quantizer, x, seed=0):
    upstream = np.random.default_rng(seed).normal(size=x.shape).astype(np.float32)
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = quantizer(x)
        loss = tf.reduce_sum(outputs * upstream)
    return outputs.numpy(), tape.gradient(loss, x).numpy(), upstream


KERNELS = {
    "design_2x2": DESIGN_2X2,
    "design_3x3": DESIGN_3X3,
    "design_2x2x4": np.stack(SHIFTING_SLICES, axis=-1),
    "bayer4": None,  # checked against bayer_matrix below
    "random_3d": RANDOM_3D,
}


@pytest.mark.parametrize("shape", [(2, 5, 7, 6), (1, 1, 1, 3), (2, 3, 2, 5)])
@pytest.mark.parametrize("name", KERNELS)
def test_forward_and_gradient_match_index_reference(name, shape):
    expected_kernel = KERNELS[name]
    if name == "bayer4":
        expected_kernel = (bayer_matrix(4, normalize=False) + 0.5) / 16 - 0.5
    kernel = RANDOM_3D if name == "random_3d" else name
    scale = 0.75
    x = real_values_with_zeros(shape, seed=3)
    x = with_ties(x, expected_kernel, scale=scale)
    outputs, gradient, upstream = forward_and_gradient(
        DitheredSign(kernel, scale=scale), x
    )
    expected, mask = reference(x, expected_kernel, scale=scale)
    np.testing.assert_array_equal(outputs, expected)
    np.testing.assert_array_equal(gradient, upstream * mask)


def test_ties_zeros_and_clip_edges_exactly():
    # Dyadic thresholds and offsets, so every difference is exact in float32.
    kernel = np.array([[0.0, 0.5], [-0.25, 1.0]])
    offsets = np.array([0.0, 0.5, -0.5, 0.5625, -0.5625, 0.25, -0.25, -0.0])
    thresholds = 2.0 * kernel  # scale=2
    x = np.zeros((len(offsets), 2, 2, 1), np.float32)
    x[...] = thresholds[None, :, :, None] + offsets[:, None, None, None]
    outputs, gradient, upstream = forward_and_gradient(
        DitheredSign(kernel, scale=2.0, clip_value=0.5), x
    )
    sign = np.where(offsets >= 0, 1.0, -1.0)  # -0.0 >= 0: ties give +1
    inside = (np.abs(offsets) <= 0.5).astype(np.float32)  # at the clip: passes
    np.testing.assert_array_equal(
        outputs, np.broadcast_to(sign[:, None, None, None], x.shape)
    )
    np.testing.assert_array_equal(gradient, upstream * inside[:, None, None, None])
    assert outputs[0, 0, 0, 0] == 1.0 and x[0, 0, 0, 0] == 0.0  # exact zero at T=0

    _, unclipped, upstream = forward_and_gradient(
        DitheredSign(kernel, scale=2.0, clip_value=None), x
    )
    np.testing.assert_array_equal(unclipped, upstream)


def test_functional_model_with_unknown_spatial_size():
    inputs = keras.Input((None, None, 6))
    model = keras.Model(inputs, DitheredSign("design_2x2x4")(inputs))
    kernel = np.stack(SHIFTING_SLICES, axis=-1)
    for shape in [(2, 5, 7, 6), (1, 3, 1, 6)]:
        x = with_ties(real_values_with_zeros(shape, seed=4), kernel)
        np.testing.assert_array_equal(
            model.predict(x, verbose=0), reference(x, kernel)[0]
        )


def test_graph_with_fully_dynamic_shape():
    quantizer = DitheredSign(RANDOM_3D)
    function = tf.function(
        quantizer, input_signature=[tf.TensorSpec([None, None, None, None])]
    )
    for shape in [(1, 5, 3, 7), (2, 2, 2, 2)]:
        x = with_ties(real_values_with_zeros(shape, seed=5), RANDOM_3D)
        np.testing.assert_array_equal(function(x).numpy(), reference(x, RANDOM_3D)[0])


def test_named_kernels():
    np.testing.assert_array_equal(threshold_kernel("design_2x2")[..., 0], DESIGN_2X2)
    np.testing.assert_array_equal(threshold_kernel("design_3x3")[..., 0], DESIGN_3X3)
    shifting = threshold_kernel("design_2x2x4")
    assert shifting.shape == (2, 2, 4)
    for k, expected in enumerate(SHIFTING_SLICES):
        np.testing.assert_array_equal(shifting[..., k], expected)
    assert sorted(set(shifting.ravel())) == [
        0.3118, 0.631, 0.9671, 1.3352, 1.7656, 2.3419,
    ]  # fmt: skip
    for size in (2, 4, 8):
        kernel = threshold_kernel(f"bayer{size}")
        assert kernel.shape == (size, size, 1)
        np.testing.assert_allclose(kernel[..., 0], bayer_matrix(size))


def test_bayer_matrices():
    np.testing.assert_array_equal(bayer_matrix(2, normalize=False), [[0, 2], [3, 1]])
    np.testing.assert_array_equal(
        bayer_matrix(4, normalize=False),
        [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]],
    )
    for size in (1, 2, 4, 8, 16):
        indices = bayer_matrix(size, normalize=False)
        assert sorted(indices.ravel()) == list(range(size**2))
        normalized = bayer_matrix(size)
        np.testing.assert_allclose(normalized, (indices + 0.5) / size**2 - 0.5)
        assert abs(normalized.mean()) < 1e-12 and np.abs(normalized).max() < 0.5


@pytest.mark.parametrize("size", [0, 3, 6, -4, 2.0, True])
def test_bayer_size_must_be_a_power_of_two(size):
    with pytest.raises(ValueError, match="power of two"):
        bayer_matrix(size)


@pytest.mark.parametrize(
    "kernel", ["bayer4", [[0.25, -1.0], [0.5, 2.0]], RANDOM_3D], ids=str
)
def test_config_round_trip(kernel):
    quantizer = DitheredSign(kernel, scale=0.5, clip_value=2.0)
    config = quantizer.get_config()
    assert json.loads(json.dumps(config)) == config
    expected = kernel if isinstance(kernel, str) else np.asarray(kernel).tolist()
    assert config["kernel"] == expected
    assert (config["scale"], config["clip_value"]) == (0.5, 2.0)
    clone = DitheredSign.from_config(config)
    assert clone.get_config() == config
    restored = lq.quantizers.deserialize(lq.quantizers.serialize(quantizer))
    assert isinstance(restored, DitheredSign) and restored.get_config() == config
    x = real_values_with_zeros((2, 5, 5, 4), seed=6)
    np.testing.assert_array_equal(clone(x).numpy(), quantizer(x).numpy())


def test_alias_and_spec():
    assert "dithered_sign" in available_binarizers()
    default = lq.quantizers.get("dithered_sign")
    assert isinstance(default, DitheredSign) and default.kernel == "design_2x2"
    bayer = binarizer_factory("dithered_sign:bayer4")()
    assert isinstance(bayer, DitheredSign) and bayer.kernel == "bayer4"
    np.testing.assert_array_equal(bayer.thresholds, threshold_kernel("bayer4"))
    with pytest.raises(ValueError, match="bayer5"):
        binarizer_factory("dithered_sign:bayer5")


def test_h5_round_trip_without_custom_objects(tmp_path):
    inputs = keras.Input((6, 5, 3))
    x = lq.layers.QuantConv2D(
        8,
        3,
        padding="same",
        input_quantizer=DitheredSign(RANDOM_3D, scale=0.5),
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
    )(inputs)
    x = lq.layers.QuantConv2D(
        4,
        3,
        input_quantizer=binarizer_factory("dithered_sign:design_3x3")(),
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
    )(x)
    model = keras.Model(inputs, x)
    path = tmp_path / "dithered.h5"
    model.save(path)
    reloaded = keras.models.load_model(path)
    x = real_values_with_zeros((3, 6, 5, 3), seed=8)
    np.testing.assert_array_equal(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
    )
    quantizers = [layer.input_quantizer for layer in reloaded.layers[1:]]
    assert [type(q) for q in quantizers] == [DitheredSign, DitheredSign]
    assert quantizers[0].get_config()["kernel"] == RANDOM_3D.tolist()
    assert quantizers[1].kernel == "design_3x3"


ZEROS = np.zeros((2, 2))
CHECKER = np.array([[0.0, 1.0], [1.0, 0.0]])


def test_design_kernel_max_prefers_the_busiest_binarization():
    maps = np.full((2, 4, 4, 3), 0.5)  # constant: sign gives a flat map (TV 0)
    chosen, scores = design_kernel([ZEROS, CHECKER, "bayer2"], maps, criterion="max")
    assert chosen is CHECKER  # 0.5 vs thresholds 0/1: a checkerboard
    # 4x4 checkerboard: 24 neighbour pairs, each differing by 2, over 16 pixels.
    np.testing.assert_array_equal(scores, [0.0, 3.0, 0.0])


def test_design_kernel_match_keeps_the_real_variation():
    ramp = np.tile(np.linspace(-1.0, 1.0, 8), (8, 1))[None, :, :, None]
    chosen, scores = design_kernel(["bayer2", ZEROS], ramp)
    # The ramp rescaled to [-1, 1] varies by 2 per row, like its plain sign.
    assert chosen is ZEROS and scores[1] == 0.0 and scores[0] < 0

    checker = np.indices((4, 4)).sum(axis=0) % 2 == 0
    maps = np.where(checker, 1.0, 0.0)[None, :, :, None]  # real TV: 24 / 16
    lone_minus = np.array([[0.0, 0.5], [0.0, 0.0]])  # -1 at (even, odd) pixels
    candidates = [ZEROS, np.full((2, 2), 0.5), lone_minus]
    chosen, scores = design_kernel(candidates, maps)
    assert chosen is lone_minus
    np.testing.assert_array_equal(scores, [-1.5, -1.5, 0.0])
    chosen, _ = design_kernel(candidates, maps, criterion="max")
    assert chosen is candidates[1]


def test_design_kernel_is_deterministic_and_accepts_names():
    maps = np.random.default_rng(0).normal(size=(2, 9, 9, 4))
    names = ["design_2x2", "design_3x3", "design_2x2x4", "bayer8"]
    first = design_kernel(names, maps, scale=0.5)
    second = design_kernel(names, maps, scale=0.5)
    assert first[0] == second[0] and first[0] in names
    np.testing.assert_array_equal(first[1], second[1])


@pytest.mark.parametrize(
    ("candidates", "maps", "criterion", "message"),
    [
        ([], np.zeros((1, 2, 2, 1)), "match", "no candidate"),
        (["bayer2"], np.zeros((2, 2, 1)), "match", r"shape \(2, 2, 1\)"),
        (["bayer2"], np.full((1, 2, 2, 1), np.nan), "match", "finite NHWC"),
        (["bayer2"], np.zeros((1, 2, 2, 1)), "min", "criterion='min'"),
        (["bayer3"], np.zeros((1, 2, 2, 1)), "match", "bayer3"),
    ],
)
def test_design_kernel_errors(candidates, maps, criterion, message):
    with pytest.raises(ValueError, match=message):
        design_kernel(candidates, maps, criterion=criterion)


def test_unknown_kernel_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown threshold kernel 'bayer3'") as error:
        DitheredSign("bayer3")
    for name in ("design_2x2", "design_3x3", "design_2x2x4", "bayer2", "bayer8"):
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        ([1.0, 2.0], r"shape \(2,\) and dtype float64.*1 dimensions"),
        (np.zeros((2, 2, 2, 2)), r"shape \(2, 2, 2, 2\).*4 dimensions"),
        ([[0.0, np.nan]], "NaN or infinite"),
        ([[0.0, np.inf]], "NaN or infinite"),
        (np.zeros((0, 2)), "empty"),
        ([["a", "b"]], "not real numbers"),
        ([[1.0], [1.0, 2.0]], "ragged"),
        (None, "not real numbers"),
    ],
)
def test_bad_kernel_arrays_say_what_was_received(kernel, message):
    with pytest.raises(ValueError, match=message) as error:
        DitheredSign(kernel)
    assert "(m, n) or (m, n, F)" in str(error.value)


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), "1", None])
def test_bad_scale(scale):
    with pytest.raises(ValueError, match="finite real number"):
        DitheredSign(scale=scale)


@pytest.mark.parametrize("shape", [(4, 6), (2, 4, 6), (1, 2, 3, 4, 5)])
def test_input_must_be_nhwc(shape):
    with pytest.raises(ValueError, match="expected 4-D NHWC") as error:
        DitheredSign()(tf.zeros(shape))
    assert f"rank {len(shape)}" in str(error.value)


@pytest.mark.parametrize(
    "spec",
    [
        "dithered_sign:design_2x2",
        # 3-D, non-square, F=5 does not divide the 32 channels.
        {
            "class_name": "DitheredSign",
            "config": {
                "kernel": np.random.default_rng(1).normal(size=(3, 2, 5)).tolist()
            },
        },
    ],
    ids=["design_2x2", "random_3x2x5"],
)
def test_lce_converts_to_binary_convolutions_with_the_same_outputs(spec):
    model = binary_block_net(spec)
    check = lce_check(model, sample_inputs(model))
    assert check.op_counts["LceBconv2d"] == check.binary_convs == 3
    # One LceQuantize per binary conv: the spatial thresholds are not folded
    # into the previous LceBconv2d (LCE 0.16 would fold them wrongly).
    assert check.op_counts["LceQuantize"] == check.binary_convs
    # The bound README.md states; measured 3.6e-6 (design_2x2) and 3.3e-6.
    assert check.max_abs_diff <= 1e-5


def test_design_kernel_rejects_a_non_finite_scale():
    with pytest.raises(ValueError, match="finite real number"):
        design_kernel(["bayer2"], np.zeros((1, 2, 2, 1)), scale=float("nan"))
