"""AF analysis: monotonicity, fold thresholds and viability."""

import numpy as np
import pytest

from keras_bnn_af import af
from keras_bnn_af.testing import real_values_with_zeros

# --- monotonicity --------------------------------------------------------------------


@pytest.mark.parametrize(
    "formula",
    ["x", "x + sin(x)", "x + cos(x)", "atan(x)", "erf(x)", "x^3", "max(x, 0)",
     "min(x, 0)", "sigmoid(x)", "shift(x)", "x - sin(x)", "exp(x)", "ssqrt(x)"],
)  # fmt: skip
def test_monotone_afs(formula):
    assert af.is_monotone(formula).all()
    assert af.monotone_threshold(formula) is not None


@pytest.mark.parametrize(
    "formula",
    ["sin(x)", "cos(x)", "x * sigmoid(x)", "x^2", "-x", "tan(x)", "log(x)",
     "x + 1.01 * sin(x)", "x * cos(x)", "exp(-x^2)", "abs(x)", "erfc(x)"],
)  # fmt: skip
def test_non_monotone_afs(formula):
    assert not af.is_monotone(formula).any()
    assert af.monotone_threshold(formula) is None


def _assert_exact_float32_threshold(formula, params, thresholds):
    tree = af.parse(formula)
    for channel, t in enumerate(thresholds):
        if not np.isfinite(t):
            continue
        below = np.nextafter(np.float32(t), np.float32(-np.inf))
        values = [np.array([p[channel]]) for p in params or []]
        at, before = (
            af.evaluate_numpy(tree, [v], values or None)[0] for v in (t, below)
        )
        assert at >= 0 > before, (formula, channel, t)


@pytest.mark.parametrize(
    "formula, params, expected",
    [
        ("x", None, [0.0]),
        ("x + sin(x)", None, [0.0]),
        ("x + cos(x)", None, [-0.7390851]),
        ("x^3 - 8", None, [2.0]),
        ("x - 20000", None, [20000.0]),
        ("max(x, 0)", None, [-np.inf]),
        ("min(x, 0) - 1", None, [np.inf]),
        ("shift(x)", [[0.5, -2.0, 0.0]], [-0.5, 2.0, 0.0]),
        ("scale(x) - 1", [[2.0, 0.5]], [0.5, 2.0]),
        ("param() - 2", [[3.0, 1.0]], [-np.inf, np.inf]),
        ("atan(x - 1e-3) + shift(x)", [[0.25]], [-0.12482892]),
    ],
)
def test_monotone_threshold(formula, params, expected):
    thresholds = af.monotone_threshold(formula, params)
    assert thresholds.dtype == np.float32 and thresholds.shape == (len(expected),)
    np.testing.assert_allclose(thresholds, expected, rtol=1e-4, atol=1e-6)
    _assert_exact_float32_threshold(formula, params, thresholds)


def test_threshold_folds_the_binarizer_into_a_comparison():
    x = np.concatenate([real_values_with_zeros((400,), low=-4, high=4)])
    params = [np.array([0.7, -1.2, 0.1])]
    formula = "x + cos(x) + shift(x)"
    thresholds = af.monotone_threshold(formula, params)
    for channel, t in enumerate(thresholds):
        near = np.float32(t) + np.arange(-50, 51, dtype=np.float32) * np.float32(1e-7)
        points = np.concatenate([x, near, [t]]).astype(np.float32)
        values = af.evaluate_numpy(af.parse(formula), points, [params[0][channel]])
        np.testing.assert_array_equal(values >= 0, points >= t)


def test_per_channel_monotonicity_depends_on_the_parameters():
    monotone = af.is_monotone("scale(x)", [[2.0, -1.0, 0.0]])
    np.testing.assert_array_equal(monotone, [True, False, True])
    assert af.monotone_threshold("scale(x)", [[2.0, -1.0]]) is None


# --- viability -----------------------------------------------------------------------


def _normal_share(formula, n=400_000):
    """Monte-Carlo shares of N(0, 1) inputs with AF >= 0 and AF < 0."""
    x = np.random.default_rng(0).standard_normal(n)
    values = af.evaluate_numpy(af.parse(formula), x)
    return np.mean(values >= 0), np.mean(values < 0)


@pytest.mark.parametrize(
    "formula", ["x", "sin(x)", "min(x, 0)", "x - 1", "cos(x)", "x^2 - 2", "erfc(x) - 1"]
)
def test_sign_share_matches_a_monte_carlo_estimate(formula):
    positive, negative = af.sign_share(formula)
    expected = _normal_share(formula)
    np.testing.assert_allclose([positive[0], negative[0]], expected, atol=3e-3)
    assert af.is_viable(formula)


@pytest.mark.parametrize(
    "formula, sign",
    [
        ("max(x, 0)", "-1"),  # never negative
        ("exp(x)", "-1"),
        ("-abs(x)", "+1"),  # >= 0 only at x = 0, a set of measure zero
        ("x - 3", "+1"),  # +1 on 0.13 % of inputs
        ("0", "-1"),
        ("param()", "-1"),  # starts at +1 everywhere
    ],
)
def test_afs_with_a_constant_sign_are_not_viable(formula, sign):
    problem = af.viability_problem(formula)
    assert problem is not None and f"is {sign} on only" in problem
    assert not af.is_viable(formula)


def test_viability_is_decided_at_the_given_parameters_per_channel():
    assert af.is_viable("shift(x)")  # b = 0: x
    assert not af.is_viable("shift(x)", [np.array([0.0, 5.0])])  # channel 1: x + 5
    assert af.sign_share("shift(x)", [np.array([0.0, 5.0])]).shape == (2, 2)
