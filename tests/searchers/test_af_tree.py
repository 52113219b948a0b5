"""PANGAEA-style AF-tree operators: exact seeded outputs and properties over seeds."""

import random

import numpy as np
import pytest

from keras_bnn_af import af
from keras_bnn_af.searchers import af_tree
from keras_bnn_af.searchers.af_tree import MutationError, TreeSpace

SEEDS = range(200)
GRID = np.linspace(-3.0, 3.0, 61)
NODE_MUTATIONS = ["change_node", "regenerate", "insert_node", "remove_node"]
PARAMETER_MUTATIONS = ["add_parameter", "remove_parameter", "move_parameter"]


def operator(name):
    return getattr(af_tree, name)


def seeded_tree(seed):
    """A valid tree reached from seed's random tree by 0-5 random mutations."""
    rng = random.Random(seed)
    tree = af_tree.random_tree(rng)
    for _ in range(seed % 6):
        tree, _ = af_tree.mutate(tree, rng)
    return tree


def has_nested_scale(tree):
    return any(
        isinstance(node, af.Unary)
        and node.op == "scale"
        and isinstance(node.arg, af.Unary)
        and node.arg.op == "scale"
        for node in af.nodes(tree)
    )


def assert_good(result, source):
    """Valid, round-tripping, within the default limits, new, with no nested scale."""
    assert isinstance(result, af.Node)
    formula = af.to_formula(result)
    assert af.parse(formula) == result
    assert formula != af.to_formula(source)
    assert af_tree.is_valid(result), (formula, af_tree.invalid_reason(result))
    assert af_tree.within_limits(result), formula
    assert not has_nested_scale(result), formula


def shape(tree):
    """The tree with every operator's op blanked: what regenerate keeps."""
    return [
        "scale" if getattr(node, "op", None) == "scale" else type(node).__name__
        for node in af.nodes(tree)
    ]


def operator_ops(tree):
    return [
        node.op
        for node in af.nodes(tree)
        if isinstance(node, af.Binary | af.Unary) and node.op != "scale"
    ]


# --- vocabulary and space ------------------------------------------------------------


def test_default_vocabulary_leaves_out_the_learnable_ops():
    assert af_tree.DEFAULT_UNARY == tuple(
        op for op in af.UNARY_OPS if op not in ("scale", "shift")
    )
    assert af_tree.DEFAULT_BINARY == tuple(op for op in af.BINARY_OPS if op != "blend")
    space = TreeSpace()
    assert (space.unary, space.binary) == (
        af_tree.DEFAULT_UNARY,
        af_tree.DEFAULT_BINARY,
    )
    assert (space.max_depth, space.max_ops, space.max_parameters) == (4, 7, 3)
    assert space.require_sign_change


def test_space_takes_name_sequences_and_learnable_ops_on_request():
    space = TreeSpace(unary=["sin", "shift", "sin"], binary=("blend",))
    assert space.unary == ("sin", "shift")
    assert space.binary == ("blend",)
    assert TreeSpace(binary=[]).binary == ()
    assert TreeSpace(unary=None).unary == af_tree.DEFAULT_UNARY


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        (
            {"unary": ["sin", "sine"]},
            ["unknown unary operator names", "'sine'", "did you mean 'sin'", "erfc"],
        ),
        ({"unary": ["max"]}, ["'max' is a binary operator", "binary="]),
        ({"unary": ["scale"]}, ["'scale' is the edge parameter", "add_parameter"]),
        ({"binary": ["cos", "plus"]}, ["'cos' is a unary operator", "'plus'", "ratio"]),
        ({"unary": "sin"}, ["unary='sin'", "sequence", "list"]),
        ({"unary": []}, ["at least one unary"]),
        ({"max_ops": 2}, ["max_ops=2", ">= 3"]),
        ({"max_depth": 1}, ["max_depth=1", ">= 2"]),
        ({"max_parameters": -1}, ["max_parameters=-1", ">= 0"]),
        ({"max_ops": True}, ["max_ops=True"]),
        ({"require_sign_change": 1}, ["require_sign_change=1"]),
    ],
)
def test_bad_space_raises_naming_the_problem(kwargs, fragments):
    with pytest.raises(ValueError) as error:
        TreeSpace(**kwargs)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_unknown_names_error_lists_the_known_names_and_the_fix():
    with pytest.raises(ValueError) as error:
        TreeSpace(unary=["sin", "sinh"], binary=["add"])
    message = str(error.value)
    assert "'sinh'" in message
    for known in (*af_tree.DEFAULT_UNARY, "shift"):
        assert known in message
    assert "unary=None" in message


def test_operators_need_a_random_instance_and_a_space():
    with pytest.raises(ValueError, match=r"random\.Random\(seed\)"):
        af_tree.change_node("sin(x) + cos(x)", 0)
    with pytest.raises(ValueError, match="TreeSpace"):
        af_tree.random_tree(random.Random(0), space={"unary": ["sin"]})
    with pytest.raises(ValueError, match="unknown name 'sinh'"):
        af_tree.mutate("sinh(x)", random.Random(0))


# --- formulas, measures, validity ----------------------------------------------------


def test_canonical_formula_in_and_out():
    assert af_tree.canonical("sin( x )+cos(x)") == "sin(x) + cos(x)"
    assert af_tree.canonical(af.parse("x*(x+1)")) == "x * (x + 1)"
    with pytest.raises(ValueError, match="formula string"):
        af_tree.canonical(3.0)


@pytest.mark.parametrize(
    ("formula", "ops", "depth", "parameters"),
    [
        ("x", 0, 0, 0),
        ("scale(x)", 0, 0, 1),
        ("scale(sin(scale(x))) + erf(x)", 3, 2, 2),
        ("blend(x, -x) * shift(x)", 4, 3, 2),
        ("exp(-x^2)", 3, 3, 0),
    ],
)
def test_measures(formula, ops, depth, parameters):
    assert af_tree.operator_count(formula) == ops
    assert af_tree.depth(formula) == depth
    assert af_tree.parameter_count(formula) == parameters


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("x", None),
        ("sin(x) + cos(x)", None),
        ("min(x, 0)", None),
        ("param() * x", None),
        ("2 + param()", "constant in x (it has no x)"),
        ("x - x", "x - x has two equal operands"),
        ("max(sin(x), sin(x))", "max(sin(x), sin(x)) has two equal operands"),
        ("sin(x)^2 + cos(x)^2", "sin(x)^2 + cos(x)^2 is constant in x"),
        ("x + sigmoid(x / x)", "x / x has two equal operands"),
        ("x / x", "x / x has two equal operands"),
        ("exp(exp(exp(x))) - x", "exp(exp(exp(x))) - x is not finite or above 1e+30"),
        ("x * sigmoid(exp(exp(x)) ^ 3)", "exp(exp(x))^3 is not finite"),
        ("exp(x)", "sign(AF(x)) is constant"),
        ("-abs(x)", "sign(AF(x)) is constant"),
        ("max(x, 0)", "sign(AF(x)) is constant"),
    ],
)
def test_invalid_reason(formula, reason):
    found = af_tree.invalid_reason(formula)
    if reason is None:
        assert found is None
        assert af_tree.is_valid(formula)
    else:
        assert found is not None and found.startswith(reason), found
        assert not af_tree.is_valid(formula)


def test_sign_change_rule_can_be_turned_off():
    lenient = TreeSpace(require_sign_change=False)
    assert af_tree.is_valid("exp(x)", lenient)
    assert not af_tree.is_valid("exp(x) - exp(x)", lenient)


def test_within_limits():
    assert af_tree.within_limits("sin(cos(tan(atan(x))))")
    assert not af_tree.within_limits("sin(cos(tan(atan(erf(x)))))")
    assert not af_tree.within_limits("scale(sin(scale(x + scale(cos(scale(x))))))")
    small = TreeSpace(max_ops=3, max_parameters=0)
    assert af_tree.within_limits("sin(x) + cos(x)", small)
    assert not af_tree.within_limits("sin(scale(x)) + cos(x)", small)


# --- exact seeded outputs ------------------------------------------------------------

SUM = "sin(x) + cos(x)"
SCALED = "scale(sin(x)) + cos(scale(x))"


@pytest.mark.parametrize(
    ("name", "formula", "expected"),
    [
        ("change_node", SUM, "min(sin(x), cos(x))"),
        ("change_node", SCALED, "min(scale(sin(x)), cos(scale(x)))"),
        ("regenerate", SUM, "min(cos(x), exp(x))"),
        ("regenerate", SCALED, "min(scale(cos(x)), exp(scale(x)))"),
        ("insert_node", SUM, "sin(sigmoid(x)) + cos(x)"),
        ("insert_node", SCALED, "scale(sin(x)) + erf(cos(scale(x)))"),
        ("remove_node", SUM, "cos(x)"),
        ("remove_node", SCALED, "cos(scale(x))"),
        ("add_parameter", SUM, "sin(scale(x)) + cos(x)"),
        ("add_parameter", SCALED, "scale(scale(sin(x)) + cos(scale(x)))"),
        ("remove_parameter", SCALED, "sin(x) + cos(scale(x))"),
        ("move_parameter", SCALED, "sin(x) + scale(cos(scale(x)))"),
    ],
)
def test_operator_exact_output(name, formula, expected):
    result = operator(name)(af.parse(formula), random.Random(0))
    assert af.to_formula(result) == expected
    # A formula string works as well as a tree.
    assert operator(name)(formula, random.Random(0)) == result


def test_random_tree_exact_outputs():
    trees = [af_tree.random_tree(random.Random(seed)) for seed in range(4)]
    assert [str(tree) for tree in trees] == [
        "cos(exp(x))",
        "tan(x) + exp(x)",
        "abs(x) * x^3",
        "erf(tan(x))",
    ]


def test_mutate_exact_sequence():
    rng = random.Random(0)
    tree = af_tree.random_tree(rng)
    steps = []
    for _ in range(6):
        tree, name = af_tree.mutate(tree, rng)
        steps.append((name, str(tree)))
    assert steps == [
        ("regenerate", "tan(sin(x))"),
        ("insert_node", "tan(sin(tan(x)))"),
        ("remove_node", "sin(tan(x))"),
        ("add_parameter", "scale(sin(tan(x)))"),
        ("regenerate", "scale(log(tan(x)))"),
        ("regenerate", "scale(log(x^3))"),
    ]


def test_crossover_exact_output():
    children = af_tree.crossover(SUM, "erf(scale(x)) * atan(x)", random.Random(0))
    assert [str(child) for child in children] == [
        "atan(x)",
        "erf(scale(x)) * (sin(x) + cos(x))",
    ]


@pytest.mark.parametrize(
    ("name", "formula", "expected"),
    [
        # Only one eligible edge: not the root scale, not directly inside it.
        ("add_parameter", "scale(sin(x))", "scale(sin(scale(x)))"),
        ("move_parameter", "scale(sin(x))", "sin(scale(x))"),
        # Removing sin leaves scale(scale(x)), merged into one parameter.
        ("remove_node", "scale(sin(scale(x)))", "scale(x)"),
        ("remove_parameter", "scale(x)", "x"),
    ],
)
def test_single_candidate_operators(name, formula, expected):
    for seed in range(5):
        assert str(operator(name)(formula, random.Random(seed))) == expected


# --- properties over many seeds ------------------------------------------------------


@pytest.mark.parametrize("name", NODE_MUTATIONS + PARAMETER_MUTATIONS)
def test_operator_properties_over_seeds(name):
    succeeded = 0
    for seed in SEEDS:
        tree = seeded_tree(seed)
        try:
            result = operator(name)(tree, random.Random(seed))
        except MutationError:
            continue
        succeeded += 1
        assert_good(result, tree)
        ops, new_ops = af_tree.operator_count(tree), af_tree.operator_count(result)
        params = af_tree.parameter_count(tree)
        new_params = af_tree.parameter_count(result)
        if name == "change_node":
            assert shape(result) == shape(tree)
            changed = zip(operator_ops(tree), operator_ops(result), strict=True)
            assert sum(old != new for old, new in changed) == 1
        elif name == "regenerate":
            assert shape(result) == shape(tree)
        elif name == "insert_node":
            assert (new_ops, new_params) == (ops + 1, params)
        elif name == "remove_node":
            assert new_ops < ops and new_params <= params
        else:
            step = {"add_parameter": 1, "remove_parameter": -1, "move_parameter": 0}
            assert new_params == params + step[name]
            assert (
                shape(result).count("scale")
                == shape(tree).count("scale") + (step[name])
            )
            assert new_ops == ops
            # Parameters start at 1: the function itself does not change.
            np.testing.assert_allclose(
                af.evaluate_numpy(result, GRID), af.evaluate_numpy(tree, GRID)
            )
    assert succeeded >= 40, f"{name} succeeded on only {succeeded} of 200 trees"


def test_mutate_properties_over_seeds():
    used = set()
    for seed in SEEDS:
        tree = seeded_tree(seed)
        result, name = af_tree.mutate(tree, random.Random(seed))
        assert name in af_tree.MUTATIONS
        assert_good(result, tree)
        used.add(name)
    assert used == set(af_tree.MUTATIONS)


def test_random_tree_properties_over_seeds():
    for seed in SEEDS:
        tree = af_tree.random_tree(random.Random(seed))
        assert_good(tree, af.Const(0.0))
        assert af_tree.parameter_count(tree) == 0
        assert af_tree.depth(tree) == 2
        assert af_tree.operator_count(tree) in (2, 3)
        leaves = [node for node in af.nodes(tree) if not af_tree.depth(node)]
        assert leaves in ([af.Var()], [af.Var(), af.Var()])


def test_crossover_properties_over_seeds():
    succeeded = 0
    for seed in range(100):
        a, b = seeded_tree(seed), seeded_tree(seed + 1000)
        try:
            children = af_tree.crossover(a, b, random.Random(seed))
        except MutationError:
            continue
        succeeded += 1
        for child in children:
            assert_good(child, a)
            assert child != b
    assert succeeded >= 80


def test_unary_only_space_stays_unary():
    space = TreeSpace(unary=["sin", "neg", "atan", "square"], binary=[])
    rng = random.Random(3)
    tree = af_tree.random_tree(rng, space=space)
    for _ in range(30):
        tree, _ = af_tree.mutate(tree, rng, space=space)
        assert not any(isinstance(node, af.Binary) for node in af.nodes(tree))
        assert set(operator_ops(tree)) <= set(space.unary)


def test_limits_hold_and_oversized_trees_never_grow():
    space = TreeSpace(max_depth=3, max_ops=4, max_parameters=1)
    rng = random.Random(7)
    tree = af_tree.random_tree(rng, space=space)
    for _ in range(60):
        tree, _ = af_tree.mutate(tree, rng, space=space)
        assert af_tree.within_limits(tree, space)
    big = af.parse("sin(cos(atan(erf(x)))) + tan(x)")  # 6 ops, depth 5
    with pytest.raises(MutationError, match="max_ops=4"):
        af_tree.insert_node(big, random.Random(0), space=space)
    for seed in range(30):
        child, _ = af_tree.mutate(big, random.Random(seed), space=space)
        assert af_tree.operator_count(child) <= 6 and af_tree.depth(child) <= 5


def test_mutate_restricted_to_some_mutations():
    for seed in range(20):
        tree, name = af_tree.mutate(
            SUM, random.Random(seed), mutations=["add_parameter"]
        )
        assert name == "add_parameter"
        assert af_tree.parameter_count(tree) == 1
    with pytest.raises(ValueError, match="'swap'"):
        af_tree.mutate(SUM, random.Random(0), mutations=["swap"])


def test_impossible_mutations_raise_with_every_reason():
    space = TreeSpace(unary=["abs"], binary=[], max_parameters=0)
    with pytest.raises(MutationError) as error:
        af_tree.mutate("x", random.Random(0), space=space)
    message = str(error.value)
    assert "No mutation of 'x'" in message
    for name in af_tree.MUTATIONS:
        assert f"{name}:" in message
    with pytest.raises(MutationError, match="random_tree found no valid tree: none of"):
        af_tree.random_tree(random.Random(0), space=space)
    with pytest.raises(MutationError, match="no operator node to change"):
        af_tree.change_node("scale(x)", random.Random(0))


# --- catalog -------------------------------------------------------------------------


def test_to_catalog_entry():
    entry = af_tree.to_catalog_entry(
        "pangaea_test_entry",
        af.parse("sin(scale(x))+x"),
        "tests/test_af_tree.py",
        score=0.5,
        command="pytest",
    )
    try:
        assert entry.formula == "sin(scale(x)) + x"
        assert (entry.provenance, entry.score, entry.command) == (
            "tests/test_af_tree.py",
            0.5,
            "pytest",
        )
        assert af.resolve("pangaea_test_entry") == af.parse("sin(scale(x)) + x")
    finally:
        af.remove_entry("pangaea_test_entry")
