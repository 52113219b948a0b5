"""The AF language: trees, parser/formatter, slugs, genomes, evaluation, catalog."""

import itertools
import json
import math
import re

import numpy as np
import pytest

from keras_bnn_af._keras import tf
from keras_bnn_af.quantizers import af
from keras_bnn_af.quantizers.af import Binary, Const, Param, Unary, Var
from keras_bnn_af.testing import real_values_with_zeros

X = Var()

# GAAF's vocabulary spelled out independently of af.UNARY_GENES / af.BINARY_GENES.
GAAF_UNARY = [
    "x",
    "0",
    "x^2",
    "x^3",
    "ssqrt(x)",
    "log(x)",
    "sin(x)",
    "cos(x)",
    "sigmoid(x)",
    "tan(x)",
    "atan(x)",
    "erf(x)",
    "erfc(x)",
    "exp(-abs(x))",
    "exp(-x^2)",
    "max(x, 0)",
    "min(x, 0)",
    "abs(x)",
    "-x",
    "scale(x)",
    "shift(x)",
    "param()",
]
GAAF_BINARY = [
    "sin(x) + cos(x)",
    "sin(x) - cos(x)",
    "sin(x) * cos(x)",
    "sin(x) / cos(x)",
    "ratio(sin(x), cos(x))",
    "max(sin(x), cos(x))",
    "min(sin(x), cos(x))",
    "sin(x) * sigmoid(cos(x))",
    "exp(-(sin(x) - cos(x))^2)",
    "exp(-abs(sin(x) - cos(x)))",
    "blend(sin(x), cos(x))",
]


# --- trees ---------------------------------------------------------------------------


def test_trees_are_small_frozen_hashable_values():
    tree = af.parse("x + sin(scale(x))")
    assert tree == Binary("add", X, Unary("sin", Unary("scale", X)))
    assert len({tree, af.parse("x+sin( scale (x) )")}) == 1
    with pytest.raises(AttributeError):
        tree.op = "sub"
    assert str(tree) == "x + sin(scale(x))"
    assert Const(-0.0).value == 0.0 and str(Const(-0.0)) == "0"


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: Const(-1.0), "finite number >= 0"),
        (lambda: Const(float("nan")), "finite number >= 0"),
        (lambda: Const("1"), "expected a finite number"),
        (lambda: Unary("sqrt", X), "'sqrt'; expected one of neg, square"),
        (lambda: Binary("pow", X, X), "'pow'; expected one of add, sub"),
        (lambda: Binary("add", X, 3.0), "expected an AF tree node"),
    ],
)
def test_invalid_nodes_are_refused(make, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        make()


def test_parameters_are_listed_in_pre_order():
    tree = af.parse("blend(scale(x), shift(x)) + param() * sin(x)")
    assert af.parameters(tree) == (
        ("blend", 1.0),
        ("scale", 1.0),
        ("shift", 0.0),
        ("param", 1.0),
    )
    assert af.parameters(af.parse("x + sin(x)")) == ()


# --- parser and formatter ------------------------------------------------------------

CANONICAL = {
    "x**2": "x^2",
    "x ** 3": "x^3",
    "( x )+sin( x)": "x + sin(x)",
    "-x^2": "-x^2",
    "(-x)^2": "(-x)^2",
    "--x": "-(-x)",
    "-(x + 1)": "-(x + 1)",
    "-1": "-1",
    "x - (x - x)": "x - (x - x)",
    "(x - x) - x": "x - x - x",
    "x * -x": "x * (-x)",
    "x + -x": "x + (-x)",
    "x/(x*x)": "x / (x * x)",
    "(x/x)*x": "x / x * x",
    "(x*x)+(x*x)": "x * x + x * x",
    "(x + x) * x": "(x + x) * x",
    "(x^2)^3": "(x^2)^3",
    "2.50*x": "2.5 * x",
    "1e-3 + x": "0.001 + x",
    ".5*x": "0.5 * x",
    "max(x,0)*sigmoid(x)": "max(x, 0) * sigmoid(x)",
    "param ( )": "param()",
    "blend(sin(x),x)": "blend(sin(x), x)",
    "exp(-(x-1)^2)": "exp(-(x - 1)^2)",
}


@pytest.mark.parametrize("text, canonical", CANONICAL.items())
def test_formatting_is_canonical(text, canonical):
    tree = af.parse(text)
    assert af.to_formula(tree) == canonical
    assert af.parse(canonical) == tree
    assert af.to_formula(af.parse(canonical)) == canonical


def test_precedence_and_associativity():
    assert af.parse("x + x * x") == Binary("add", X, Binary("mul", X, X))
    assert af.parse("x - x - x") == Binary("sub", Binary("sub", X, X), X)
    assert af.parse("-x^2") == Unary("neg", Unary("square", X))
    assert af.parse("-x * x") == Binary("mul", Unary("neg", X), X)
    assert af.parse("2 ^ 3") == Unary("cube", Const(2.0))


def _random_tree(rng, depth):
    leaves = [lambda: X, lambda: Param(), lambda: Const(float(rng.choice(CONSTS)))]
    if depth == 0 or rng.random() < 0.25:
        return leaves[rng.integers(len(leaves))]()
    if rng.random() < 0.5:
        return Unary(str(rng.choice(list(af.UNARY_OPS))), _random_tree(rng, depth - 1))
    op = str(rng.choice(list(af.BINARY_OPS)))
    return Binary(op, _random_tree(rng, depth - 1), _random_tree(rng, depth - 1))


CONSTS = [0.0, 1.0, 0.5, 2.0, 1e-3, 3.25, 1e20, 1.5e-12]


def test_random_trees_round_trip_through_their_formula():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        tree = _random_tree(rng, 5)
        text = af.to_formula(tree)
        assert af.parse(text) == tree, text
        assert af.to_formula(af.parse(text)) == text


BAD_FORMULAS = [
    ("sinn(x)", 0, "unknown name 'sinn' (did you mean 'sin'?)"),
    ("x +", 3, "found the end of the formula"),
    ("max(x)", 5, "function max takes 2 arguments but got 1"),
    ("x ^ 4", 4, "unsupported power '4'; only the integer powers 2 and 3"),
    ("x ** -2", 5, "unsupported power '-'"),
    ("x^2^2", 3, "chained powers need parentheses"),
    ("x $ 1", 2, "unexpected character '$'"),
    ("(x", 2, "expected ')' to close the '(' at position 0"),
    ("x)", 1, "unexpected ')' after a complete formula"),
    ("sin x", 4, "expected '(' after the function name 'sin'"),
    ("sin(x, x)", 8, "function sin takes 1 argument but got 2"),
    ("max(x x)", 6, "expected ',' or ')' in the call of max"),
    ("1e999 * x", 0, "number '1e999' is not finite"),
    ("y + x", 0, "unknown name 'y'"),
]


@pytest.mark.parametrize("text, position, problem", BAD_FORMULAS)
def test_bad_formulas_name_input_position_and_known_names(text, position, problem):
    with pytest.raises(ValueError) as error:
        af.parse(text)
    message = str(error.value)
    assert f"{text!r}" in message and problem in message
    assert f"at position {position}:" in message
    lines = message.splitlines()
    assert lines[1].strip() == text and lines[2].index("^") - 4 == position
    for known in ("sin()", "max()", "scale()", "blend()", "+ - * /", "x_plus_sin_x"):
        assert known in message


@pytest.mark.parametrize(
    "name, position, problem",
    [
        ("sinn_x", 0, "unknown word 'sinn'"),
        ("x_plus", 6, "ends where an operand was expected"),
        ("x_plus_plus_x", 7, "'plus' needs an operand"),
        ("x_sin_x", 2, "unexpected word 'sin'"),
    ],
)
def test_bad_slugs_name_position_and_known_words(name, position, problem):
    with pytest.raises(ValueError, match=re.escape(problem)) as error:
        af.resolve(name)
    message = str(error.value)
    assert f"{name!r}" in message and f"at position {position}:" in message
    assert "plus" in message and "squared" in message and "x_plus_sin_x" in message


@pytest.mark.parametrize(
    "slug, formula",
    [
        ("sin_x", "sin(x)"),
        ("x_plus_sin_x", "x + sin(x)"),
        ("x_minus_x_times_cos_x", "x - x * cos(x)"),
        ("exp_neg_x_squared", "exp(-x^2)"),
        ("max_x_0", "max(x, 0)"),
        ("blend_sin_x_x", "blend(sin(x), x)"),
        ("x_over_2_plus_0p5", "x / 2 + 0.5"),
        ("neg_x_cubed_plus_param", "-x^3 + param()"),
        ("ratio_x_cos_x", "ratio(x, cos(x))"),
    ],
)
def test_slugs(slug, formula):
    assert af.parse_slug(slug) == af.parse(formula)
    assert af.resolve(slug) == af.parse(formula)


# --- genomes -------------------------------------------------------------------------


def test_gene_tables_keep_gaaf_indices():
    assert len(af.UNARY_GENES) == 22 and len(af.BINARY_GENES) == 11
    for index, formula in enumerate(GAAF_UNARY):
        assert af.from_genome([index, 1, 0]) == af.parse(f"({formula}) + 0")
    for index, formula in enumerate(GAAF_BINARY):
        assert af.from_genome([6, 7, index]) == af.parse(formula)


def test_two_unit_genome_feeds_x_to_the_fourth_unary():
    assert af.from_genome([6, 0, 0, 7, 0, 0]) == af.parse("sin(x) + x + cos(x)")
    assert af.from_genome([0, 1, 0, 6, 0, 0]) == af.parse("x + 0 + sin(x)")
    assert af.from_genome([19, 1, 6, 18, 0, 2]) == af.parse("sin(scale(x) + 0) * -x")
    # GAAF's x / (x + y + eps) keeps one parameter for its repeated operand.
    assert len(af.parameters(af.from_genome([19, 0, 4]))) == 1


def test_every_three_gene_genome_round_trips():
    genes = itertools.product(range(22), range(22), range(11))
    formulas = {}
    for genome in genes:
        tree = af.from_genome(genome)
        text = af.to_formula(tree)
        assert af.parse(text) == tree, (genome, text)
        assert af.resolve(list(genome)) == tree
        formulas.setdefault(text, []).append(genome)
    # The only synonyms: U_a(x) * sigmoid(x) is both [a, 8, 2] and [a, 0, 7].
    synonyms = sorted(genomes for genomes in formulas.values() if len(genomes) > 1)
    assert synonyms == [[(a, 0, 7), (a, 8, 2)] for a in range(22)]


def test_sampled_two_unit_genomes_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(1500):
        genome = [*rng.integers(0, 22, 4), *rng.integers(0, 11, 2)]
        tree = af.from_genome(genome)
        assert af.parse(af.to_formula(tree)) == tree, genome


@pytest.mark.parametrize(
    "genome",
    [[22, 0, 0], [0, 0, 11], [0, 0], [0, 0, 0, 0], [True, 0, 0], [0.5, 0, 0], "abc"],
)
def test_bad_genomes_are_refused(genome):
    with pytest.raises(ValueError, match="Invalid GAAF genome") as error:
        af.from_genome(genome)
    assert "UNARY_GENES" in str(error.value) and "0..21" in str(error.value)


def test_resolve_accepts_every_af_form():
    sin_x = af.parse("sin(x)")
    assert af.resolve("sin_x") == sin_x
    assert af.resolve(sin_x) is sin_x
    assert af.resolve(" x + sin(x) ") == af.parse("x + sin(x)")
    cos_genome = af.from_genome([0, 7, 2])
    for genome in ("[0, 7, 2]", "[0,7,2]", (0, 7, 2), np.array([0, 7, 2])):
        assert af.resolve(genome) == cos_genome == af.parse("x * cos(x)")
    with pytest.raises(ValueError, match="Cannot use 3.5 .type float. as an activ"):
        af.resolve(3.5)


# --- evaluation ----------------------------------------------------------------------


def _random_params(tree, channels, rng):
    return [
        rng.uniform(0.5, 1.5, channels) * rng.choice([-1.0, 1.0], channels)
        for _ in af.parameters(tree)
    ]


def _tf_and_numpy(tree, x, params):
    tf_values = af.evaluate_tf(tree, tf.constant(x), params).numpy()
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
        tf_values = af.evaluate_tf(tree, tf.constant(x), params).numpy()
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
        erf = af.evaluate_tf(af.parse("erf(x)"), x)
        erfc = af.evaluate_tf(af.parse("erfc(x)"), x)
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
    assert af.evaluate_tf(af.parse("1 + 1"), x).shape == (2, 3)
    values = af.evaluate_tf(af.parse("param()"), x, [np.array([1.0, 2.0, 3.0])])
    np.testing.assert_array_equal(values.numpy(), [[1, 2, 3], [1, 2, 3]])


def test_wrong_number_of_parameter_values_is_refused():
    with pytest.raises(ValueError, match="has 2 learnable parameter.s. .scale, shift"):
        af.evaluate_numpy(af.parse("scale(x) + shift(x)"), [1.0], [1.0])


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


# --- catalog -------------------------------------------------------------------------


def test_builtin_catalog_entries_are_canonical_and_consistent():
    entries = af.catalog()
    assert {"identity", "sin_x", "cos_x", "x_plus_sin_x", "x_times_cos_x"} <= set(
        entries
    )
    learnable = [e for e in entries.values() if af.parameters(af.parse(e.formula))]
    assert len(learnable) >= 2
    grid = np.linspace(-6, 6, 241)
    for name, entry in entries.items():
        assert entry.builtin and af.lookup(name) == entry
        tree = af.parse(entry.formula)
        assert af.to_formula(tree) == entry.formula
        assert af.resolve(name) == tree
        assert "GAAF" in entry.provenance
        assert "not one of the paper's 15" in entry.provenance or name == "identity"
        if af._SLUG.fullmatch(name):
            assert af.parse_slug(name) == tree, name
        genome_tree = af.from_genome(entry.genome)
        np.testing.assert_allclose(
            af.evaluate_numpy(genome_tree, grid), af.evaluate_numpy(tree, grid)
        )


def test_builtin_catalog_file_is_plain_json():
    from importlib import resources

    raw = json.loads(
        resources.files("keras_bnn_af.quantizers")
        .joinpath("af_catalog.json")
        .read_text()
    )
    assert raw["version"] == 1
    assert {entry["name"] for entry in raw["entries"]} == set(af.catalog())


@pytest.fixture
def user_catalog(monkeypatch):
    monkeypatch.setattr(af, "_USER", {})


def test_user_entries_add_look_up_save_and_load(user_catalog, tmp_path):
    entry = af.add_entry(
        "found_1", "x+sin( x)*2", "unit test", command="search --seed 0", score=0.5
    )
    assert entry.formula == "x + sin(x) * 2" and not entry.builtin
    assert af.lookup("found_1") == entry and "found_1" in af.catalog()
    assert af.resolve("found_1") == af.parse("x + sin(x) * 2")
    path = af.save_catalog(tmp_path / "mine.json")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        af.save_catalog(path)
    assert af.save_catalog(path, overwrite=True) == path
    af.remove_entry("found_1")
    assert "found_1" not in af.catalog()
    assert af.load_catalog(path) == [entry]
    assert af.lookup("found_1") == entry


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("sin_x", "cos(x)", "p"), "belongs to a built-in entry"),
        (("Bad Name", "x", "p"), "is not valid"),
        (("ok_name", "x", " "), "non-empty text"),
        (("ok_name", "x +", "p"), "at position 3"),
        (("ok_name", "x", "p", None, "high"), "expected a number or None"),
    ],
)
def test_bad_user_entries_are_refused(user_catalog, args, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        af.add_entry(*args)


def test_duplicate_user_entry_needs_overwrite(user_catalog):
    af.add_entry("mine", "x", "p")
    with pytest.raises(ValueError, match="overwrite=True"):
        af.add_entry("mine", "sin(x)", "p")
    assert af.add_entry("mine", "sin(x)", "p", overwrite=True).formula == "sin(x)"


def test_unknown_names_and_bad_catalog_files(user_catalog, tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'sin_x'") as error:
        af.lookup("sin_xx")
    assert "x_plus_sin_x" in str(error.value)
    path = tmp_path / "bad.json"
    path.write_text('{"entries": 3}')
    with pytest.raises(ValueError, match="Cannot read the AF catalog"):
        af.load_catalog(path)
    with pytest.raises(ValueError, match="No user catalog entry 'sin_x'"):
        af.remove_entry("sin_x")
