"""AF evaluation: TensorFlow ops against the float64 NumPy reference."""

import itertools
import math

import numpy as np
import pytest

from keras_bnn_af import af
from keras_bnn_af._keras import tf
from keras_bnn_af.af.tf_ops import evaluate_tf
from keras_bnn_af.testing import real_values_with_zeros

# --- evaluation ----------------------------------------------------------------------


def _random_params(tree, channels, rng):
    return [
        rng.uniform(0.5, 1.5, channels) * rng.choice([-1.0, 1.0], channels)
        for _ in af.parameters(tree)
    ]


def _tf_and_numpy(tree, x, params):
    tf_values = evaluate_tf(tree, tf.constant(x), params).numpy()
    return tf_values, af.evaluate_numpy(tree, x, params)


def test_tf_matches_numpy_for_all_genomes_without_erf():
    # In float64 the two differ only by rounding (tan is sin/cos and atan is
    # atan2(x, 1) in TF); erf and erfc are fits, checked on their own below.
    x = real_values_with_zeros((6, 4), low=-3.5, high=3.5).astype(np.float64)
    rng = np.random.default_rng(2)
    others = [g for g in range(22) if g not in (11, 12)]
    genomes = [list(g) for g in itertools.product(others, others, range(11))]
    genomes += [[*rng.choice(others, 4), *rng.integers(0, 11, 2)] for _ in range(300)]
    for genome in genomes:
        tree = af.from_genome(genome)
        tf_values, np_values = _tf_and_numpy(tree, x, _random_params(tree, 4, rng))
        finite = np.abs(np_values) < 1e8
        np.testing.assert_allclose(
            tf_values[finite], np_values[finite], rtol=1e-7, atol=1e-9, err_msg=genome
        )
        assert np.array_equal(np.isnan(tf_values), np.isnan(np_values))


def test_tf_matches_numpy_for_the_catalog_in_float32():
    x = real_values_with_zeros((8, 3))
    rng = np.random.default_rng(3)
    for name, entry in af.catalog().items():
        tree = af.parse(entry.formula)
        params = _random_params(tree, 3, rng)
        tf_values = evaluate_tf(tree, tf.constant(x), params).numpy()
        np_values = af.evaluate_numpy(tree, x, params)
        np.testing.assert_allclose(
            tf_values, np_values, rtol=1e-5, atol=1e-6, err_msg=name
        )


# float32 gradients: exp(-a^2) inherits the rounding of a^2 (4e-6 at |a| = 9).
@pytest.mark.parametrize(
    "dtype, erf_rtol, erfc_rtol, grad_rtol",
    [("float32", 5e-7, 6e-6, 1e-5), ("float64", 1e-7, 3e-8, 1e-12)],
)
def test_erf_and_erfc_fits_are_accurate_with_exact_sign_and_gradient(
    dtype, erf_rtol, erfc_rtol, grad_rtol
):
    values = np.concatenate([np.linspace(-9.0, 9.0, 18001), [0.0, 1e-30, -1e-30]])
    x = tf.constant(values.astype(dtype))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        erf = evaluate_tf(af.parse("erf(x)"), x)
        erfc = evaluate_tf(af.parse("erfc(x)"), x)
    reference_x = x.numpy().astype(np.float64)
    erf_ref = np.array([math.erf(v) for v in reference_x])
    erfc_ref = np.array([math.erfc(v) for v in reference_x])
    np.testing.assert_allclose(erf.numpy(), erf_ref, rtol=erf_rtol, atol=1e-30)
    representable = erfc_ref > 1e-30
    np.testing.assert_allclose(
        erfc.numpy()[representable], erfc_ref[representable], rtol=erfc_rtol
    )
    np.testing.assert_array_equal(np.sign(erf.numpy()), np.sign(erf_ref))
    slope = 2 / np.sqrt(np.pi) * np.exp(-(reference_x**2))
    np.testing.assert_allclose(tape.gradient(erf, x).numpy(), slope, rtol=grad_rtol)
    np.testing.assert_allclose(tape.gradient(erfc, x).numpy(), -slope, rtol=grad_rtol)


def test_constant_af_keeps_the_input_shape():
    x = tf.zeros((2, 3))
    assert evaluate_tf(af.parse("1 + 1"), x).shape == (2, 3)
    values = evaluate_tf(af.parse("param()"), x, [np.array([1.0, 2.0, 3.0])])
    np.testing.assert_array_equal(values.numpy(), [[1, 2, 3], [1, 2, 3]])


def test_wrong_number_of_parameter_values_is_refused():
    with pytest.raises(ValueError, match="has 2 learnable parameter.s. .scale, shift"):
        af.evaluate_numpy(af.parse("scale(x) + shift(x)"), [1.0], [1.0])
