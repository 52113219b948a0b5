"""GAAF quantizer: values and pseudo-gradients against an independent NumPy reference,
serialization, training, Larq summary and LCE conversion."""

import json
import math
import tempfile
from collections import Counter

import larq as lq
import numpy as np
import pytest

from keras_bnn_af._keras import keras, tf
from keras_bnn_af.converters import op_counts
from keras_bnn_af.models import binary_conv2d, binary_convolutions
from keras_bnn_af.quantizers import available_binarizers, binarizer_factory
from keras_bnn_af.quantizers.gaaf import GAAF
from keras_bnn_af.testing import (
    binary_block_net,
    lce_check,
    randomize_batch_norm,
    real_values_with_zeros,
    sample_inputs,
)

EPS = 1e-8
CLIP = 1.3
CHANNELS = 6

# --- an independent NumPy reference --------------------------------------------------
# Written from GAAF's op list, not from keras_bnn_af.quantizers.af. At kinks the
# derivative follows TensorFlow's conventions: d|x|/dx = sign(x) (0 at 0), and
# max/min send the gradient to their first argument on ties.

_erf = np.vectorize(math.erf)
_erfc = np.vectorize(math.erfc)


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _gauss(v):
    return 2.0 / math.sqrt(math.pi) * np.exp(-(v**2))


# gene -> f(x, s) -> (U(x), dU/dx, dU/ds or None); s is the per-channel parameter.
UNARY = {
    0: lambda x, s: (x, np.ones_like(x), None),
    1: lambda x, s: (0 * x, 0 * x, None),
    2: lambda x, s: (x**2, 2 * x, None),
    3: lambda x, s: (x**3, 3 * x**2, None),
    4: lambda x, s: (
        np.sign(x) * np.sqrt(np.abs(x) + EPS),
        np.sign(x) ** 2 / (2 * np.sqrt(np.abs(x) + EPS)),
        None,
    ),
    5: lambda x, s: (np.log(np.abs(x) + EPS), np.sign(x) / (np.abs(x) + EPS), None),
    6: lambda x, s: (np.sin(x), np.cos(x), None),
    7: lambda x, s: (np.cos(x), -np.sin(x), None),
    8: lambda x, s: (_sigmoid(x), _sigmoid(x) * (1 - _sigmoid(x)), None),
    9: lambda x, s: (np.tan(x), 1 / np.cos(x) ** 2, None),
    10: lambda x, s: (np.arctan(x), 1 / (1 + x**2), None),
    11: lambda x, s: (_erf(x), _gauss(x), None),
    12: lambda x, s: (_erfc(x), -_gauss(x), None),
    # GAAF's code adds 1e-8 inside this exp; that factor rounds to 1 in float32.
    13: lambda x, s: (np.exp(-np.abs(x)), -np.sign(x) * np.exp(-np.abs(x)), None),
    14: lambda x, s: (np.exp(-(x**2)), -2 * x * np.exp(-(x**2)), None),
    15: lambda x, s: (np.maximum(x, 0), (x >= 0) * 1.0, None),
    16: lambda x, s: (np.minimum(x, 0), (x <= 0) * 1.0, None),
    17: lambda x, s: (np.abs(x), np.sign(x), None),
    18: lambda x, s: (-x, -np.ones_like(x), None),
    19: lambda x, s: (s * x, s + 0 * x, x),
    20: lambda x, s: (x + s, np.ones_like(x), np.ones_like(x)),
    21: lambda x, s: (s + 0 * x, 0 * x, np.ones_like(x)),
}

# gene -> f(a, b, s) -> (B(a, b), dB/da, dB/db, dB/ds or None).
BINARY = {
    0: lambda a, b, s: (a + b, 1 + 0 * a, 1 + 0 * a, None),
    1: lambda a, b, s: (a - b, 1 + 0 * a, -1 + 0 * a, None),
    2: lambda a, b, s: (a * b, b, a, None),
    3: lambda a, b, s: (a / (b + EPS), 1 / (b + EPS), -a / (b + EPS) ** 2, None),
    4: lambda a, b, s: (
        a / (a + b + EPS),
        (b + EPS) / (a + b + EPS) ** 2,
        -a / (a + b + EPS) ** 2,
        None,
    ),
    5: lambda a, b, s: (np.maximum(a, b), (a >= b) * 1.0, (a < b) * 1.0, None),
    6: lambda a, b, s: (np.minimum(a, b), (a <= b) * 1.0, (a > b) * 1.0, None),
    7: lambda a, b, s: (
        a * _sigmoid(b),
        _sigmoid(b),
        a * _sigmoid(b) * (1 - _sigmoid(b)),
        None,
    ),
    8: lambda a, b, s: (
        np.exp(-((a - b) ** 2)),
        -2 * (a - b) * np.exp(-((a - b) ** 2)),
        2 * (a - b) * np.exp(-((a - b) ** 2)),
        None,
    ),
    9: lambda a, b, s: (
        np.exp(-np.abs(a - b)),
        -np.sign(a - b) * np.exp(-np.abs(a - b)),
        np.sign(a - b) * np.exp(-np.abs(a - b)),
        None,
    ),
    10: lambda a, b, s: (s * a + (1 - s) * b, s + 0 * a, 1 - s + 0 * a, a - b),
}


def _check_against_reference(quantizer, x, params, reference, *, seed=0):
    """Compares outputs and d(sum(w * q(x)))/d(x, params) with the reference.

    `reference(x, params)` gives AF(x), dAF/dx and [dAF/dparam, ...] in float64.
    Points whose AF is within rounding of 0 or of +-clip are given upstream weight 0
    (their sign or STE mask is a coin toss between float32 and float64); exact
    zeros of AF are kept.
    """
    quantizer.build(x.shape)
    for weight, value in zip(quantizer.af_weights, params, strict=True):
        weight.assign(value)
    af, d_dx, d_dparams = reference(x.astype(np.float64), params)
    clip = quantizer.clip
    ambiguous = ((np.abs(af) < 1e-6) & (af != 0)) | (
        np.abs(np.abs(af) - clip) < 1e-5 * max(1.0, clip)
    )
    upstream = np.random.default_rng(seed).uniform(0.5, 1.5, x.shape)
    upstream[ambiguous] = 0.0
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = quantizer(inputs)
        loss = tf.reduce_sum(outputs * upstream.astype(np.float32))
    # A constant AF (gene 1 or 21) does not depend on x: its gradient is zero.
    gradients = tape.gradient(
        loss,
        [inputs, *quantizer.af_weights],
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    expected = np.where(af >= 0, 1.0, -1.0)
    np.testing.assert_array_equal(outputs.numpy()[~ambiguous], expected[~ambiguous])
    inside = np.abs(af) <= clip
    np.testing.assert_allclose(
        gradients[0].numpy(), upstream * inside * d_dx, rtol=1e-4, atol=1e-5
    )
    assert len(gradients[1:]) == len(d_dparams)
    for gradient, d_dparam in zip(gradients[1:], d_dparams, strict=True):
        assert gradient.shape == (x.shape[-1],)
        np.testing.assert_allclose(
            gradient.numpy(),
            (upstream * inside * d_dparam).sum(axis=0),
            rtol=1e-4,
            atol=1e-4,
        )
    return outputs.numpy(), gradients


def _channel_values(rng, count):
    """Non-default per-channel parameter values of both signs."""
    return [
        (rng.uniform(0.5, 1.5, CHANNELS) * rng.choice([-1, 1], CHANNELS)).astype(
            np.float32
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("gene", range(22))
def test_every_unary_gene_against_numpy(gene):
    x = real_values_with_zeros((24, CHANNELS), seed=gene)
    assert (x == 0).any()
    quantizer = GAAF([gene, 1, 0])  # U(x) + 0
    learnable = gene in (19, 20, 21)
    params = _channel_values(np.random.default_rng(gene), int(learnable))

    def reference(x, params):
        value, d_dx, d_ds = UNARY[gene](x, params[0] if params else None)
        return value, d_dx, [] if d_ds is None else [d_ds]

    _check_against_reference(quantizer, x, params, reference, seed=gene)


@pytest.mark.parametrize("gene", range(11))
def test_every_binary_gene_against_numpy(gene):
    x = real_values_with_zeros((24, CHANNELS), seed=100 + gene)
    quantizer = GAAF([0, 7, gene])  # B(x, cos(x))
    params = _channel_values(np.random.default_rng(gene), int(gene == 10))

    def reference(x, params):
        a, b = x, np.cos(x)
        value, d_da, d_db, d_ds = BINARY[gene](a, b, params[0] if params else None)
        d_dx = d_da * 1.0 + d_db * -np.sin(x)
        return value, d_dx, [] if d_ds is None else [d_ds]

    _check_against_reference(quantizer, x, params, reference, seed=gene)


def test_learnable_parameters_get_their_own_per_channel_gradients():
    quantizer = GAAF("blend(scale(x), shift(x)) + param() * sin(x)")
    x = real_values_with_zeros((32, CHANNELS), low=-2, high=2)
    params = _channel_values(np.random.default_rng(7), 4)

    def reference(x, params):
        blend, scale, shift, weight = params
        value = blend * scale * x + (1 - blend) * (x + shift) + weight * np.sin(x)
        d_dx = blend * scale + (1 - blend) + weight * np.cos(x)
        d_dparams = [
            scale * x - (x + shift),
            blend * x,
            (1 - blend) + 0 * x,
            np.sin(x),
        ]
        return value, d_dx, d_dparams

    _check_against_reference(quantizer, x, params, reference)
    names = [w.name.split("/")[-1] for w in quantizer.af_weights]
    assert names == ["blend_0:0", "scale_1:0", "shift_2:0", "param_3:0"]
    assert all(w.shape == (CHANNELS,) for w in quantizer.trainable_weights)


# AF, dAF/dx at 0 (TensorFlow's convention at kinks).
AT_ZERO = {
    "x": 1.0,
    "-x": -1.0,
    "sin(x)": 1.0,
    "-sin(x)": -1.0,
    "x + sin(x)": 2.0,
    "x * cos(x)": 1.0,
    "tan(x)": 1.0,
    "erf(x)": 2 / math.sqrt(math.pi),
    "min(x, 0)": 1.0,
    "max(x, 0)": 1.0,
    "abs(x)": 0.0,
    "x - x": 0.0,
    "ssqrt(x)": 0.0,
    "x^3": 0.0,
}


@pytest.mark.parametrize("formula, slope", AT_ZERO.items())
def test_exact_zero_binarizes_to_plus_one(formula, slope):
    x = tf.constant([[0.0, -0.0]])
    quantizer = GAAF(formula)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = quantizer(x)
    np.testing.assert_array_equal(outputs.numpy(), [[1.0, 1.0]])
    np.testing.assert_allclose(tape.gradient(outputs, x).numpy(), [[slope, slope]])


def _gradient(quantizer, values):
    x = tf.constant(values, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = quantizer(x)
    return outputs.numpy(), tape.gradient(outputs, [x, *quantizer.af_weights])


def test_af_exactly_at_the_clip_is_inside_and_beyond_is_outside():
    clip = np.float32(CLIP)
    above = np.nextafter(clip, np.float32(2))
    outputs, (grad,) = _gradient(GAAF("x"), [[-above, -clip, 0.0, clip, above]])
    np.testing.assert_array_equal(outputs, [[-1, -1, 1, 1, 1]])
    np.testing.assert_array_equal(grad.numpy(), [[0, 1, 1, 1, 0]])

    # s * x with s = 2 hits the clip exactly at x = 0.65 (doubling is exact).
    quantizer = GAAF("scale(x)")
    quantizer.build((None, 2))
    quantizer.af_weights[0].assign([2.0, 2.0])
    half = np.float32(0.65)
    assert half * np.float32(2) == clip
    x = [[half, np.nextafter(half, np.float32(1))], [-half, 3.0]]
    outputs, (grad_x, grad_s) = _gradient(quantizer, x)
    np.testing.assert_array_equal(grad_x.numpy(), [[2, 0], [2, 0]])
    np.testing.assert_allclose(grad_s.numpy(), [0.0, 0.0])  # 0.65 - 0.65; nothing
    _, (_, grad_s) = _gradient(quantizer, [[half, 0.1]])
    np.testing.assert_allclose(grad_s.numpy(), [half, 0.1])

    _, (grad,) = _gradient(GAAF("x", clip=0.5), [[0.5, 0.5000001, -2.0]])
    np.testing.assert_array_equal(grad.numpy(), [[1, 0, 0]])
    # sin never leaves the window |AF| <= 1.3: every input gets cos(x).
    _, (grad,) = _gradient(GAAF("sin_x"), [[10.0, -20.0, 3.0]])
    np.testing.assert_allclose(grad.numpy(), np.cos([[10.0, -20.0, 3.0]]), rtol=1e-6)


def test_identity_af_is_ste_sign_with_the_same_clip():
    values = real_values_with_zeros((8, 5), low=-2, high=2)
    ours, (ours_grad,) = _gradient(GAAF("identity", clip=1.25), values)
    x = tf.constant(values)
    with tf.GradientTape() as tape:
        tape.watch(x)
        theirs = lq.quantizers.SteSign(clip_value=1.25)(x)
    np.testing.assert_array_equal(ours, theirs.numpy())
    np.testing.assert_array_equal(ours_grad.numpy(), tape.gradient(theirs, x).numpy())


# --- construction and serialization --------------------------------------------------


@pytest.mark.parametrize(
    "spec, formula",
    [
        ("sin_x", "sin(x)"),
        ("x+sin( scale(x))", "x + sin(scale(x))"),
        ([0, 7, 2], "x * cos(x)"),
        ("[6, 0, 10]", "blend(sin(x), x)"),
        ("exp_neg_x_squared", "exp(-x^2)"),
    ],
)
def test_config_round_trip_stores_the_canonical_formula(spec, formula):
    quantizer = GAAF(spec, clip=1.1, learnable=False)
    config = quantizer.get_config()
    assert config["af"] == formula and type(config["af"]) is str
    assert config["clip"] == 1.1 and config["learnable"] is False
    json.dumps(config)
    clone = GAAF.from_config(config)
    assert clone.tree == quantizer.tree and clone.get_config() == config
    restored = lq.quantizers.deserialize(lq.quantizers.serialize(quantizer))
    assert isinstance(restored, GAAF) and restored.tree == quantizer.tree


def test_alias_and_spec_go_through_larq_and_binarizer_factory():
    assert "gaaf" in available_binarizers()
    assert lq.quantizers.get("gaaf").af == "x"
    assert lq.quantizers.get("GAAF").clip == CLIP
    from_dict = lq.quantizers.get({"class_name": "gaaf", "config": {"af": "sin_x"}})
    assert from_dict.af == "sin(x)"
    factory = binarizer_factory("gaaf:sin_x")
    first, second = factory(), factory()
    assert first is not second and first.af == second.af == "sin(x)"
    assert binarizer_factory("gaaf:x + sin(scale(x))")().af == "x + sin(scale(x))"
    assert binarizer_factory("gaaf:[0, 7, 2]")().af == "x * cos(x)"
    layer = lq.layers.QuantConv2D(2, 3, input_quantizer="gaaf")
    assert isinstance(layer.input_quantizer, GAAF)


def test_bad_af_in_a_spec_names_it():
    with pytest.raises(ValueError, match="sinn_x"):
        binarizer_factory("gaaf:sinn_x")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"clip": 0}, "clip=0; expected a finite number > 0"),
        ({"clip": -1.0}, "clip=-1.0"),
        ({"clip": float("inf")}, "clip=inf"),
        ({"clip": "1"}, "clip='1'"),
        ({"clip": True}, "clip=True"),
        ({"learnable": "yes"}, "learnable='yes'; expected True or False"),
        ({"af": 3.5}, "Cannot use 3.5"),
        ({"af": "sinn(x)"}, "unknown name 'sinn'"),
        ({"af": [0, 0, 11]}, "Invalid GAAF genome"),
    ],
)
def test_bad_arguments_are_refused(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        GAAF(**kwargs)


def test_per_channel_parameters_need_a_known_channel_axis():
    with pytest.raises(ValueError, match="without a known last axis"):
        GAAF("scale(x)").build((None, None))
    GAAF("sin(x)").build((None, None))  # nothing per channel: fine


def test_one_instance_cannot_serve_two_layers():
    quantizer = GAAF("scale(x)")
    inputs = keras.Input((4, 4, 3))
    lq.layers.QuantConv2D(3, 3, input_quantizer=quantizer)(inputs)
    with pytest.raises(ValueError, match="already used by layer"):
        lq.layers.QuantConv2D(3, 3, input_quantizer=quantizer)(inputs)


# --- models --------------------------------------------------------------------------


def _gaaf_net(*specs):
    """Float conv, then one binary conv per binarizer spec, then a dense head."""
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    for width, spec in zip((5, 4, 3)[: len(specs)], specs, strict=True):
        x = binary_conv2d(width, 3, binarizer_factory(spec)())(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def _quantizers(model):
    return [
        layer.input_quantizer
        for layer in model.layers
        if isinstance(layer, lq.layers.QuantConv2D)
    ]


def _randomize_parameters(model, seed=0):
    rng = np.random.default_rng(seed)
    for quantizer in _quantizers(model):
        for weight in quantizer.af_weights:
            weight.assign(rng.uniform(-1.5, 1.5, weight.shape).astype(np.float32))


def test_h5_round_trip_without_custom_objects(tmp_path):
    learnable = {"class_name": "GAAF", "config": {"af": "x + sin(scale(x)) + shift(x)"}}
    frozen = {"class_name": "GAAF", "config": {"af": "shift(x)", "learnable": False}}
    model = _gaaf_net(learnable, frozen, "gaaf:sin_x")
    _randomize_parameters(model)
    inputs = sample_inputs(model)
    path = tmp_path / "gaaf.h5"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored.predict(inputs, verbose=0), model(inputs))
    for ours, theirs in zip(_quantizers(model), _quantizers(restored), strict=True):
        assert type(theirs) is GAAF and theirs.get_config() == ours.get_config()
        for weight, other in zip(ours.af_weights, theirs.af_weights, strict=True):
            np.testing.assert_array_equal(weight.numpy(), other.numpy())
    assert not _quantizers(restored)[1].trainable_weights


def test_parameters_train_per_channel_unless_frozen():
    model = _gaaf_net(
        "gaaf:x + sin(scale(x))",
        {"class_name": "GAAF", "config": {"af": "shift(x)", "learnable": False}},
    )
    learnable, frozen = _quantizers(model)
    trainable_ids = {id(w) for w in model.trainable_weights}
    assert id(learnable.af_weights[0]) in trainable_ids
    assert id(frozen.af_weights[0]) not in trainable_ids
    assert learnable.af_weights[0].shape == (4,) and frozen.af_weights[0].shape == (5,)
    before = [q.af_weights[0].numpy().copy() for q in (learnable, frozen)]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, 6, 3)).astype(np.float32)
    y = rng.normal(size=(16, 2)).astype(np.float32)
    model.compile(keras.optimizers.Adam(0.05), loss="mse")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    scale = learnable.af_weights[0].numpy()
    assert not np.allclose(scale, before[0]) and len(np.unique(scale)) > 1
    np.testing.assert_array_equal(frozen.af_weights[0].numpy(), before[1])


def test_larq_summary_reports_binary_convs_as_one_bit(capsys):
    model = _gaaf_net("gaaf:x_plus_sin_scale_x", "gaaf:sin_x")
    lq.models.summary(model)
    rows = [
        line for line in capsys.readouterr().out.splitlines() if "quant_conv" in line
    ]
    assert len(rows) == 2 and all(row.split()[2] == "1" for row in rows)


def test_preactivation_is_the_af_that_plots_draw():
    from keras_bnn_af.plots import binarizer_curves

    curves = binarizer_curves("gaaf:x_times_cos_x")
    x = curves["x"]
    np.testing.assert_allclose(curves["function"], x * np.cos(x), atol=1e-6)
    np.testing.assert_array_equal(curves["output"], np.where(x * np.cos(x) >= 0, 1, -1))


def test_monotone_threshold_of_a_built_quantizer():
    quantizer = GAAF("x + shift(x)")  # 2x + b >= 0  <=>  x >= -b/2
    quantizer.build((None, 4))
    quantizer.af_weights[0].assign([1.0, -2.0, 0.0, 0.5])
    thresholds = quantizer.monotone_threshold()
    np.testing.assert_array_equal(thresholds, [-0.5, 1.0, 0.0, -0.25])
    assert quantizer.is_monotone()
    x = real_values_with_zeros((64, 4))
    np.testing.assert_array_equal(
        quantizer(x).numpy(), np.where(x >= thresholds, 1.0, -1.0)
    )
    assert GAAF("sin_x").monotone_threshold() is None
    assert not GAAF("sin_x").is_monotone()
    unbuilt = GAAF("x + cos(x)")
    np.testing.assert_allclose(unbuilt.monotone_threshold(), [-0.7390851])
    unbuilt.build((None, 3))
    assert unbuilt.monotone_threshold().shape == (3,)
    with pytest.raises(ValueError, match="not built yet"):
        GAAF("scale(x)").monotone_threshold()


# --- Larq Compute Engine -------------------------------------------------------------


def _assert_lce_binarizes_every_conv(model):
    check = lce_check(model, sample_inputs(model))
    assert check.op_counts["LceBconv2d"] == check.binary_convs == 3
    # Only the stem stays a float conv. LceQuantize can be fewer than 3: for an
    # affine AF (scale(x), shift(x)) LCE folds BN + AF + sign into the previous
    # LceBconv2d's output threshold.
    assert check.op_counts["CONV_2D"] == 1 and check.op_counts["LceQuantize"] >= 1
    assert check.max_abs_diff <= 1e-3, check.max_abs_diff
    return check


def test_lce_converts_gaaf_sin_x():
    _assert_lce_binarizes_every_conv(binary_block_net("gaaf:sin_x"))


def test_lce_converts_a_learnable_gaaf_with_trained_looking_parameters():
    model = binary_block_net("gaaf:x_plus_sin_scale_x")
    _randomize_parameters(model, seed=3)
    _assert_lce_binarizes_every_conv(model)


def test_lce_runs_the_tflite_forms_of_tan_atan_erf_and_erfc():
    # tf.tan, tf.atan, tf.math.erf and tf.math.erfc would become custom ops the
    # LCE interpreter cannot run; the AF language builds them from builtins.
    spec = "gaaf:erf(shift(x)) + atan(x) * tan(x) - erfc(scale(x))"
    model = binary_block_net(spec, filters=(16, 16, 16))
    _randomize_parameters(model, seed=4)
    check = _assert_lce_binarizes_every_conv(model)
    assert not {"Tan", "Atan", "Erf", "Erfc"} & set(check.op_counts)


# Every gene once: as [u, 1, 0] (the AF is U_u(x) + 0) and as [6, 7, b] (the AF
# is B_b(sin x, cos x)).
EVERY_GENE = [[u, 1, 0] for u in range(22)] + [[6, 7, b] for b in range(11)]
BLOCKS_PER_GENE = 3


def _gene(genome):
    return (
        f"unary gene {genome[0]}"
        if genome[1:] == [1, 0]
        else f"binary gene {genome[2]}"
    )


def _one_branch_per_genome(genomes, *, width=8):
    """A shared float stem, then one branch per genome: BLOCKS_PER_GENE binary
    blocks (GAAF -> binary conv -> BatchNorm) and a global average pool, with the
    pools concatenated in genome order. Random BatchNorm statistics and AF
    parameters."""
    inputs = keras.Input((8, 8, 4))
    stem = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    stem = keras.layers.BatchNormalization()(stem)
    pools = []
    for genome in genomes:
        spec = {"class_name": "GAAF", "config": {"af": genome}}
        make = binarizer_factory(spec)
        x = stem
        for _ in range(BLOCKS_PER_GENE):
            x = binary_conv2d(width, 3, make())(x)
            x = keras.layers.BatchNormalization()(x)
        pools.append(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Concatenate()(pools))
    randomize_batch_norm(model)
    _randomize_parameters(model)
    return model


def _branch_ops(flatbuffer):
    """The ops each input of the flatbuffer's final CONCATENATION is computed
    from (one Counter per input: a branch and the shared stem), read from the
    graph's edges, not from tensor names; and the names of its custom ops."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.python import schema_util

    builtin = {
        code: name
        for name, code in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")
    }
    fb_model = schema.Model.GetRootAsModel(flatbuffer, 0)
    codes, custom = [], set()
    for index in range(fb_model.OperatorCodesLength()):
        code = fb_model.OperatorCodes(index)
        kind = schema_util.get_builtin_code_from_operator_code(code)
        if kind == schema.BuiltinOperator.CUSTOM:
            codes.append(code.CustomCode().decode())
            custom.add(codes[-1])
        else:
            codes.append(builtin[kind])
    assert fb_model.SubgraphsLength() == 1
    graph = fb_model.Subgraphs(0)
    ops = [graph.Operators(index) for index in range(graph.OperatorsLength())]
    producer = {
        op.Outputs(slot): index
        for index, op in enumerate(ops)
        for slot in range(op.OutputsLength())
    }
    (concat,) = [producer[graph.Outputs(i)] for i in range(graph.OutputsLength())]
    assert codes[ops[concat].OpcodeIndex()] == "CONCATENATION"

    def ancestors(tensor):
        seen, stack = set(), [tensor]
        while stack:
            index = producer.get(stack.pop())
            if index is not None and index not in seen:
                seen.add(index)
                stack.extend(
                    ops[index].Inputs(i) for i in range(ops[index].InputsLength())
                )
        return Counter(codes[ops[index].OpcodeIndex()] for index in seen)

    inputs = ops[concat]
    return [ancestors(inputs.Inputs(i)) for i in range(inputs.InputsLength())], custom


def _lce_flatbuffer(model):
    """What `lce.convert_keras_model(model)` converts, and the function it
    converts: `model(x, training=False)`. Saved without Keras's traces of every
    layer, which take most of `convert_keras_model`'s time here."""
    import larq_compute_engine as lce

    serve = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(model.input_shape, tf.float32)
    )
    with tempfile.TemporaryDirectory() as saved:
        model.save(saved, save_format="tf", save_traces=False, signatures=serve)
        return lce.convert_saved_model(saved), serve


def _convert(model, genomes):
    """LCE's flatbuffer of `model` and its serving function; if LCE fails,
    converts each genome's branch alone to name the genes it fails on."""
    try:
        return _lce_flatbuffer(model)
    except Exception as error:
        failing = []
        for genome in genomes:
            try:
                _lce_flatbuffer(_one_branch_per_genome([genome]))
            except Exception as alone:
                failing.append(f"{_gene(genome)} {genome}: {alone}")
        pytest.fail(f"LCE cannot convert the model: {error}\n" + "\n".join(failing))


def _branch_problems(genome, ops, custom):
    """What is wrong with a branch's ops: float convs, or custom ops that only
    LCE's converter knows (its interpreter cannot run them)."""
    problems = []
    if ops["LceBconv2d"] != BLOCKS_PER_GENE or ops["CONV_2D"] != 1:
        problems.append(
            f"{ops['LceBconv2d']} LceBconv2d and {ops['CONV_2D'] - 1} float CONV_2D "
            f"for its {BLOCKS_PER_GENE} binary convs"
        )
    foreign = sorted(name for name in ops if name in custom and name[:3] != "Lce")
    if foreign:
        problems.append(f"custom ops {foreign}")
    return f"{_gene(genome)} {genome}: " + "; ".join(problems) if problems else None


def test_lce_binarizes_every_conv_of_every_gene():
    """One LCE conversion for all 33 genes, one branch each; every check names
    the gene it fails for."""
    import larq_compute_engine as lce

    model = _one_branch_per_genome(EVERY_GENE)
    flatbuffer, serve = _convert(model, EVERY_GENE)
    per_branch, custom = _branch_ops(flatbuffer)
    assert len(per_branch) == len(EVERY_GENE)
    wrong = [
        problem
        for genome, ops in zip(EVERY_GENE, per_branch, strict=True)
        if (problem := _branch_problems(genome, ops, custom))
    ]
    assert not wrong, "LCE did not binarize these genes:\n" + "\n".join(wrong)
    # Only the stem stays a float conv (the branches' ops above overlap in it).
    totals = op_counts(flatbuffer)
    binary_convs = len(binary_convolutions(model))
    assert binary_convs == BLOCKS_PER_GENE * len(EVERY_GENE)
    assert totals["LceBconv2d"] == binary_convs and totals["CONV_2D"] == 1
    inputs = sample_inputs(model)
    interpreter = lce.testing.Interpreter(flatbuffer, num_threads=1)
    lce_outputs = np.asarray(interpreter.predict(inputs))
    keras_outputs = serve(tf.constant(inputs)).numpy()
    diffs = np.abs(keras_outputs - lce_outputs).reshape(
        len(inputs), len(EVERY_GENE), -1
    )
    off = [
        f"{_gene(genome)} {genome}: max |Keras - LCE| = {diff:.3g}"
        for genome, diff in zip(EVERY_GENE, diffs.max(axis=(0, 2)), strict=True)
        if diff > 1e-3
    ]
    assert not off, "LCE's outputs differ from Keras's:\n" + "\n".join(off)
