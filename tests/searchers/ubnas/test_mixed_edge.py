"""UBNAS supernet edges: channel shuffle, the partial-channel mixed edge against an
independent NumPy reference, op shapes, and gradient flow to α, β and the weights."""

import larq as lq
import numpy as np
import pytest

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.quantizers import binarizer_factory
from keras_bnn_af.searchers.ubnas import layers
from keras_bnn_af.searchers.ubnas.layers import Geometry
from keras_bnn_af.searchers.ubnas.space import DEFAULT_OPS
from keras_bnn_af.searchers.ubnas.supernet import MixedEdge, Supernet, channel_shuffle
from keras_bnn_af.testing import real_values_with_zeros

EDGE_OPS = ("zero", "skip", "max_pool_3x3", "bconv_3x3")
BN_EPSILON = 1e-5  # the BatchNorms of layers.make_op

# --- an independent NumPy reference ---------------------------------------------------


def _np_shuffle(x, groups):
    n, h, w, c = x.shape
    return x.reshape(n, h, w, groups, c // groups).swapaxes(-1, -2).reshape(n, h, w, c)


def _same_padding(size, kernel, stride, dilation=1):
    """TensorFlow's "same" padding: (output size, pad before, pad after)."""
    out = -(-size // stride)
    span = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + span - size, 0)
    return out, total // 2, total - total // 2


def _np_max_pool_same(x, size, stride):
    n, h, w, c = x.shape
    out_h, top, bottom = _same_padding(h, size, stride)
    out_w, left, right = _same_padding(w, size, stride)
    padded = np.pad(
        x, [(0, 0), (top, bottom), (left, right), (0, 0)], constant_values=-np.inf
    )
    out = np.empty((n, out_h, out_w, c), x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            rows = slice(i * stride, i * stride + size)
            window = padded[:, rows, j * stride : j * stride + size]
            out[:, i, j] = window.max(axis=(1, 2))
    return out


def _np_sign(x):
    """Larq's sign: +1 at 0."""
    return np.where(x >= 0, 1.0, -1.0)


def _np_binary_conv_same(x, kernel, stride):
    """sign(x) conv sign(kernel), "same" padding with +1, no bias."""
    n, h, w, _ = x.shape
    k = kernel.shape[0]
    out_h, top, bottom = _same_padding(h, k, stride)
    out_w, left, right = _same_padding(w, k, stride)
    padded = np.pad(
        _np_sign(x), [(0, 0), (top, bottom), (left, right), (0, 0)], constant_values=1.0
    )
    weights = _np_sign(kernel)
    out = np.zeros((n, out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, i * stride : i * stride + k, j * stride : j * stride + k]
            out[:, i, j] = np.einsum("nabc,abco->no", window, weights)
    return out


def _inputs(shape=(2, 6, 6, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _edge(channels, stride, partial_channels, ops=EDGE_OPS):
    return MixedEdge(
        ops,
        channels,
        stride,
        partial_channels,
        binarizer_factory("approx_sign"),
        Geometry(),
    )


# --- channel shuffle ------------------------------------------------------------------


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_channel_shuffle_matches_numpy_reshape_swap_reshape(groups):
    x = _inputs((2, 3, 5, 8))
    np.testing.assert_array_equal(
        channel_shuffle(tf.constant(x), groups).numpy(), _np_shuffle(x, groups)
    )


def test_channel_shuffle_interleaves_groups():
    x = np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8)
    shuffled = channel_shuffle(tf.constant(x), 2).numpy().ravel()
    np.testing.assert_array_equal(shuffled, [0, 4, 1, 5, 2, 6, 3, 7])


# --- the mixed edge -------------------------------------------------------------------


@pytest.mark.parametrize("partial_channels", [2, 4])
@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_edge_weights_slices_passes_through_and_shuffles(
    stride, partial_channels
):
    x = _inputs()
    channels = x.shape[-1]
    partial = channels // partial_channels
    edge = _edge(channels, stride, partial_channels)
    weights = np.array([0.1, 0.2, 0.3, 0.4], np.float32)

    out = edge(tf.constant(x), tf.constant(weights), training=False).numpy()

    sampled, passed = x[..., :partial], x[..., partial:]
    per_op = [
        layers.apply(op, tf.constant(sampled), training=False).numpy()
        for op in edge.ops
    ]
    mixed = sum(w * y for w, y in zip(weights, per_op, strict=True))
    if stride == 2:
        passed = _np_max_pool_same(passed, 2, 2)
    expected = _np_shuffle(np.concatenate([mixed, passed], axis=-1), partial_channels)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_edge_zero_and_bconv_ops_match_numpy(stride):
    x = _inputs(seed=1)
    edge = _edge(8, stride, 2)
    sampled = x[..., :4]
    zero, skip, _, bconv = edge.ops

    zero_out = layers.apply(zero, tf.constant(sampled), training=False).numpy()
    np.testing.assert_array_equal(zero_out, np.zeros((2, 6 // stride, 6 // stride, 4)))
    if stride == 1:
        skip_out = layers.apply(skip, tf.constant(sampled), training=False).numpy()
        np.testing.assert_array_equal(skip_out, sampled)

    edge(tf.constant(x), tf.ones(len(EDGE_OPS)), training=False)  # builds the layers
    conv, batch_norm = bconv
    assert isinstance(conv, lq.layers.QuantConv2D)
    assert not batch_norm.center and not batch_norm.scale  # DARTS: no affine BN
    np.testing.assert_array_equal(batch_norm.moving_mean.numpy(), np.zeros(4))
    np.testing.assert_array_equal(batch_norm.moving_variance.numpy(), np.ones(4))
    bconv_out = layers.apply(bconv, tf.constant(sampled), training=False).numpy()
    expected = _np_binary_conv_same(sampled, conv.kernel.numpy(), stride) / np.sqrt(
        1.0 + BN_EPSILON
    )
    assert bconv_out.shape == expected.shape
    np.testing.assert_allclose(bconv_out, expected, rtol=1e-5, atol=1e-4)


def test_mixed_edge_with_one_hot_weights_is_that_op_plus_pass_through():
    x = _inputs(seed=2)
    edge = _edge(8, 1, 2)
    out = edge(tf.constant(x), tf.constant([0.0, 1.0, 0.0, 0.0]), training=False)
    # skip on the first half, the second half passed: shuffle_2 of x itself
    np.testing.assert_allclose(out.numpy(), _np_shuffle(x, 2), atol=1e-6)
    out = edge(tf.constant(x), tf.constant([1.0, 0.0, 0.0, 0.0]), training=False)
    expected = _np_shuffle(np.concatenate([0 * x[..., :4], x[..., 4:]], -1), 2)
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize(
    "partial_channels, stride", [(1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2)]
)
def test_mixed_edge_ops_run_on_partial_channels(partial_channels, stride):
    x = _inputs()
    edge = _edge(8, stride, partial_channels)
    out = edge(tf.constant(x), tf.fill([len(EDGE_OPS)], 0.25), training=False)
    partial = 8 // partial_channels
    conv = edge.ops[EDGE_OPS.index("bconv_3x3")][0]
    assert tuple(conv.kernel.shape) == (3, 3, partial, partial)
    assert tuple(out.shape) == (2, 6 // stride, 6 // stride, 8)


@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_edge_with_one_group_is_the_unshuffled_mix_on_all_channels(stride):
    x = _inputs(seed=3)
    edge = _edge(8, stride, 1)
    weights = np.array([0.4, 0.3, 0.2, 0.1], np.float32)
    out = edge(tf.constant(x), tf.constant(weights), training=False).numpy()
    per_op = [
        layers.apply(op, tf.constant(x), training=False).numpy() for op in edge.ops
    ]
    np.testing.assert_allclose(
        out,
        sum(w * y for w, y in zip(weights, per_op, strict=True)),
        rtol=1e-5,
        atol=1e-5,
    )
    assert tuple(edge.ops[-1][0].kernel.shape) == (3, 3, 8, 8)


# --- gradient flow --------------------------------------------------------------------


@pytest.fixture
def supernet():
    model = Supernet(
        (8, 8, 1),
        3,
        ops=DEFAULT_OPS,
        cells=3,
        nodes=2,
        channels=8,
        partial_channels=2,
        binarizer=binarizer_factory("approx_sign"),
    )
    model(tf.zeros((1, 8, 8, 1)))
    return model


def test_supernet_splits_trainable_variables_into_architecture_and_weights(supernet):
    arch = supernet.architecture_variables
    weights = supernet.weight_variables
    assert len(arch) == 4
    assert {id(v) for v in arch}.isdisjoint(id(v) for v in weights)
    assert sorted(id(v) for v in arch + weights) == sorted(
        id(v) for v in supernet.trainable_variables
    )
    assert {tuple(v.shape) for v in arch} == {(5, len(DEFAULT_OPS)), (5,)}


def test_supernet_cross_entropy_reaches_alpha_beta_and_every_conv_kernel(supernet):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 8, 8, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    kernels = [v for v in supernet.weight_variables if "kernel" in v.name]
    quant_convs = [
        layer
        for layer in supernet.submodules
        if isinstance(layer, lq.layers.QuantConv2D)
    ]
    # per cell: 2 input convs and 4 binary convs on each of 5 edges; the 4
    # stride-2 edges of each of the 2 reduction cells add a binary 1x1 'skip'
    assert len(quant_convs) == 3 * (2 + 5 * 4) + 2 * 4
    assert {id(c.kernel) for c in quant_convs} <= {id(v) for v in kernels}
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(y, supernet(x, training=True))
        )
    arch = supernet.architecture_variables
    gradients = tape.gradient(loss, arch + kernels)
    for variable, gradient in zip(arch + kernels, gradients, strict=True):
        assert gradient is not None, variable.name
        assert np.any(gradient.numpy() != 0), variable.name


def test_approx_sign_pseudo_gradient_matches_numpy():
    x = real_values_with_zeros((6, 25), low=-1.5, high=1.5)
    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(lq.quantizers.approx_sign(variable))
    np.testing.assert_allclose(
        tape.gradient(total, variable).numpy(),
        np.maximum(2 - 2 * np.abs(x), 0),
        rtol=1e-6,
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        lq.quantizers.approx_sign(tf.constant(x)).numpy(), _np_sign(x)
    )
