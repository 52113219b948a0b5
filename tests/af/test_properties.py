"""Property tests of the AF syntax: whatever is generated either round-trips or is
refused with a ValueError (never another exception, never a changed tree).

Each test is seeded (`derandomize=True`), so CI runs the same examples every
time; together they check 10,000 generated formulas, trees, slugs and
genomes in a few seconds.
"""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_bnn_af import af
from keras_bnn_af.af import Binary, Const, Param, Unary, Var

RUN = settings(
    max_examples=2500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

TOKENS = [
    "x", "y", "0", "1", "2", "3", "0.5", "1e-3", "1e400", ".", "+", "-", "*", "/",
    "^", "**", "(", ")", ",", " ", "sin", "cos", "tan", "atan", "erf", "erfc", "exp",
    "log", "abs", "ssqrt", "sigmoid", "scale", "shift", "param", "max", "min",
    "ratio", "blend", "sqrt", "#", "é",
]  # fmt: skip

constants = st.floats(min_value=0, max_value=1e6, allow_nan=False).map(Const)
leaves = st.one_of(st.just(Var()), st.just(Param()), constants)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(Unary, st.sampled_from(sorted(af.UNARY_OPS)), children),
        st.builds(Binary, st.sampled_from(sorted(af.BINARY_OPS)), children, children),
    ),
    max_leaves=12,
)


def _round_trips(tree) -> None:
    formula = af.to_formula(tree)
    assert af.parse(formula) == tree, formula
    assert af.to_formula(af.parse(formula)) == formula


@RUN
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
def test_token_soup_parses_and_round_trips_or_is_refused(text):
    try:
        tree = af.parse(text)
    except ValueError as error:
        assert "Cannot read the activation function" in str(error)
        return
    _round_trips(tree)


@RUN
@given(trees)
def test_every_tree_formats_and_parses_back_to_itself(tree):
    _round_trips(tree)


SLUG_WORDS = [
    "x", "0", "2", "0p5", "plus", "minus", "times", "over", "neg", "squared",
    "cubed", "sin", "cos", "exp", "max", "min", "blend", "param", "abs", "foo",
]  # fmt: skip


@RUN
@given(st.lists(st.sampled_from(SLUG_WORDS), min_size=1, max_size=8).map("_".join))
def test_slugs_parse_and_round_trip_or_are_refused(slug):
    try:
        tree = af.parse_slug(slug)
    except ValueError as error:
        assert "Cannot read the slug" in str(error)
        return
    _round_trips(tree)


genes = st.one_of(
    st.integers(min_value=-3, max_value=25),
    st.sampled_from([True, 1.0, "1", None, math.nan]),
)


@RUN
@given(st.lists(genes, max_size=7))
def test_genomes_give_a_round_tripping_tree_or_are_refused(genome):
    try:
        tree = af.from_genome(genome)
    except ValueError as error:
        assert "Invalid GAAF genome" in str(error)
        return
    assert len(genome) in (3, 6)
    _round_trips(tree)
