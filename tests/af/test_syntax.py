"""The AF language: trees, parser/formatter, slugs, genomes and resolve."""

import itertools
import re

import numpy as np
import pytest

from keras_bnn_af import af
from keras_bnn_af.af import Binary, Const, Param, Unary, Var

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
