"""The seeded GA operators: exact outputs for fixed seeds, and their invariants."""

from __future__ import annotations

import collections
import random

import keras_tuner as kt
import numpy as np
import pytest

from keras_bnn_af.searchers import operators as op

POPULATION = [("a", 0.5), ("b", -2.0), ("c", 3.0), ("d", 1.0), ("e", 0.0)]
A = {"x": 1, "y": 2, "z": 3, "w": 4}
B = {"x": 10, "y": 20, "z": 30, "w": 40}
ORDER = ["x", "y", "z", "w"]


def flat_space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Choice("act", ["relu", "tanh", "sign"])
    hp.Int("units", 8, 64, step=8)
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Boolean("bn")
    return hp


def rich_space() -> kt.HyperParameters:
    hp = flat_space()
    hp.Int("width", 2, 64, step=2, sampling="log")
    hp.Int("depth", 1, 1000, sampling="log")
    hp.Float("dropout", 0.0, 0.5, step=0.1)
    hp.Choice("rate", [0.5, 1.0, 2.0])
    hp.Fixed("fixed", 3)
    return hp


def conditional_space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Choice("model", ["mlp", "cnn"])
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("units", 16, 128, step=16)
        hp.Boolean("residual")
    with hp.conditional_scope("model", ["cnn"]):
        hp.Int("filters", 8, 64, step=8)
        hp.Choice("kernel", [3, 5])
    hp.Float("lr", 1e-3, 1e-1, sampling="log")
    return hp


def active_names(values, hp: kt.HyperParameters) -> set[str]:
    """The names active under `values`, by keras-tuner's own rule."""
    probe = hp.copy()
    probe.values = dict(values)
    return {h.name for h in probe.space if probe.is_active(h)}


def changed(before, after) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def assert_plain(values) -> None:
    for name, value in values.items():
        assert type(value) in (bool, int, float, str), (name, type(value))


# --- selection ----------------------------------------------------------------


def test_elitism_returns_the_fittest_best_first_and_ignores_rng():
    rng = random.Random(0)
    state = rng.getstate()
    assert op.elitism(POPULATION, 2, rng) == ["c", "d"]
    assert op.elitism(POPULATION, 5, rng) == ["c", "d", "a", "e", "b"]
    assert op.elitism([("p", 1.0), ("q", 1.0), ("r", 0.0)], 2, rng) == ["p", "q"]
    assert rng.getstate() == state


def test_tournament_with_a_fixed_seed_gives_a_fixed_list():
    assert op.tournament(POPULATION, 6, random.Random(7)) == [
        "c",
        "c",
        "c",
        "a",
        "d",
        "a",
    ]


def test_tournament_size_controls_the_pressure():
    rng = random.Random(1)
    assert set(op.tournament(POPULATION, 20, rng, size=len(POPULATION))) == {"c"}
    uniform_draws = op.tournament(POPULATION, 500, rng, size=1)
    assert set(uniform_draws) == {"a", "b", "c", "d", "e"}
    # A winner beats at least size - 1 others, so the worst never wins at size 2.
    assert "b" not in op.tournament(POPULATION, 200, rng, size=2)


def roulette_reference(population, k, seed):
    """The documented rule: weight f - min + spread / n, one rng.random() a draw."""
    fitness = [f for _, f in population]
    spread = max(fitness) - min(fitness)
    weights = [f - min(fitness) + spread / len(fitness) for f in fitness]
    rng = random.Random(seed)
    chosen = []
    for _ in range(k):
        target, total = rng.random() * sum(weights), 0.0
        for (individual, _), weight in zip(population, weights, strict=True):
            total += weight
            if target < total:
                chosen.append(individual)
                break
    return chosen


def test_roulette_with_a_fixed_seed_gives_a_fixed_list():
    expected = ["c", "a", "d", "a", "c", "c"]
    assert op.roulette(POPULATION, 6, random.Random(7)) == expected
    assert roulette_reference(POPULATION, 6, 7) == expected
    assert op.roulette(POPULATION, 50, random.Random(3)) == roulette_reference(
        POPULATION, 50, 3
    )


def test_roulette_is_proportional_to_fitness_above_the_worst():
    # spread 4, delta 4/3: weights 4/3, 10/3, 16/3 of 10.
    population = [("worst", -3.0), ("middle", -1.0), ("best", 1.0)]
    draws = collections.Counter(op.roulette(population, 6000, random.Random(0)))
    assert draws["worst"] / 6000 == pytest.approx(0.4 / 3, abs=0.02)
    assert draws["middle"] / 6000 == pytest.approx(1 / 3, abs=0.02)
    assert draws["best"] / 6000 == pytest.approx(1.6 / 3, abs=0.02)


def test_roulette_is_uniform_for_equal_and_shift_invariant():
    equal = collections.Counter(
        op.roulette([("p", 0.0), ("q", 0.0)], 2000, random.Random(0))
    )
    assert equal["p"] / 2000 == pytest.approx(0.5, abs=0.04)
    shifted = [(name, fitness + 1000.0) for name, fitness in POPULATION]
    assert op.roulette(shifted, 30, random.Random(5)) == op.roulette(
        POPULATION, 30, random.Random(5)
    )


@pytest.mark.parametrize("select", [op.elitism, op.tournament, op.roulette])
def test_selection_rejects_bad_input(select):
    with pytest.raises(ValueError, match="empty population"):
        select([], 1, random.Random(0))
    with pytest.raises(ValueError, match="non-finite"):
        select([("a", 1.0), ("b", float("nan"))], 1, random.Random(0))
    with pytest.raises(ValueError, match="k=0"):
        select(POPULATION, 0, random.Random(0))


def test_elitism_cannot_return_more_than_the_population():
    with pytest.raises(ValueError, match="k <= 5"):
        op.elitism(POPULATION, 6, random.Random(0))


# --- crossover ----------------------------------------------------------------


def test_single_point_with_a_fixed_seed():
    assert op.single_point(A, B, ORDER, random.Random(3)) == {
        "x": 1,
        "y": 20,
        "z": 30,
        "w": 40,
    }


def test_single_point_takes_a_prefix_of_a_and_a_suffix_of_b():
    cuts = set()
    for seed in range(60):
        child = op.single_point(A, B, ORDER, random.Random(seed))
        from_a = [child[name] == A[name] for name in ORDER]
        cut = from_a.index(False)
        assert from_a == [True] * cut + [False] * (len(ORDER) - cut)
        assert all(child[name] == B[name] for name in ORDER[cut:])
        cuts.add(cut)
    assert cuts == {1, 2, 3}


def test_single_point_fills_a_gene_its_parent_lacks_from_the_other():
    child = op.single_point({"x": 1}, {"x": 10, "y": 20}, ["x", "y"], random.Random(0))
    assert child == {"x": 1, "y": 20}
    child = op.single_point({"x": 1, "y": 2}, {"x": 10}, ["x", "y"], random.Random(0))
    assert child == {"x": 1, "y": 2}
    assert op.single_point({"x": 1}, {"x": 2}, ["x"], random.Random(0)) == {"x": 1}


def test_uniform_with_a_fixed_seed():
    assert op.uniform(A, B, random.Random(3)) == {"x": 1, "y": 20, "z": 3, "w": 40}


def test_uniform_takes_each_gene_from_one_parent():
    sources = collections.Counter()
    for seed in range(100):
        child = op.uniform(A, B, random.Random(seed))
        assert list(child) == ORDER
        for name in ORDER:
            assert child[name] in (A[name], B[name])
            sources[child[name] == A[name]] += 1
    assert sources[True] / 400 == pytest.approx(0.5, abs=0.08)


# --- values of a space ----------------------------------------------------------


def test_random_values_with_a_fixed_seed():
    assert op.random_values(flat_space(), random.Random(11)) == {
        "act": "tanh",
        "units": 40,
        "lr": 0.059242278312757475,
        "bn": False,
    }


def test_random_values_are_valid_plain_and_seeded():
    hp = rich_space()
    for seed in range(30):
        values = op.random_values(hp, random.Random(seed))
        assert values == op.random_values(hp, random.Random(seed))
        assert set(values) == {h.name for h in hp.space}
        assert all(op.is_valid_value(h, values[h.name]) for h in hp.space)
        assert_plain(values)


def test_ensure_active_values_keeps_valid_fixes_invalid_and_drops_inactive():
    hp = conditional_space()
    values = {
        "model": "cnn",
        "filters": np.int64(24),  # valid, but numpy: comes out as int
        "kernel": 4,  # not one of the choices: resampled
        "lr": 0.01,  # valid, kept
        "units": 32,  # inactive under "cnn": dropped
        "extra": 1,  # not in the space: dropped
    }
    completed = op.ensure_active_values(values, hp, random.Random(0))
    assert set(completed) == {"model", "filters", "kernel", "lr"}
    assert completed["model"] == "cnn"
    assert completed["filters"] == 24 and type(completed["filters"]) is int
    assert completed["kernel"] in (3, 5)
    assert completed["lr"] == 0.01
    assert_plain(completed)
    assert completed == op.ensure_active_values(values, hp, random.Random(0))


def test_ensure_active_values_puts_values_in_the_form_the_space_samples():
    hp = kt.HyperParameters()
    hp.Choice("kernel", [3, 5])
    hp.Float("dropout", 0.1, 0.5, step=0.1)
    hp.Float("lr", 0.0, 1.0)
    values = {"kernel": 5.0, "dropout": 0.3, "lr": 1}
    completed = op.ensure_active_values(values, hp, random.Random(0))
    assert completed == {"kernel": 5, "dropout": 0.30000000000000004, "lr": 1.0}
    assert type(completed["kernel"]) is int and type(completed["lr"]) is float


@pytest.mark.parametrize(
    ("make", "value", "valid"),
    [
        (lambda hp: hp.Choice("c", [1, 2]), 2, True),
        (lambda hp: hp.Choice("c", [1, 2]), True, False),
        (lambda hp: hp.Choice("c", [1, 2]), 2.0, True),
        (lambda hp: hp.Choice("c", ["1", "2"]), 1, False),
        (lambda hp: hp.Int("i", 0, 10, step=5), 5, True),
        (lambda hp: hp.Int("i", 0, 10, step=5), 4, False),
        (lambda hp: hp.Int("i", 0, 10, step=5), 5.0, False),
        (lambda hp: hp.Int("i", 0, 10), 11, False),
        (lambda hp: hp.Float("f", 0.0, 1.0), 0.37, True),
        (lambda hp: hp.Float("f", 0.0, 1.0), 1.5, False),
        (lambda hp: hp.Float("f", 0.0, 1.0), float("nan"), False),
        (lambda hp: hp.Float("f", 0.1, 0.5, step=0.1), 0.30000000000000004, True),
        (lambda hp: hp.Float("f", 0.1, 0.5, step=0.1), 0.25, False),
        (lambda hp: hp.Boolean("b"), False, True),
        (lambda hp: hp.Boolean("b"), 0, False),
        (lambda hp: hp.Fixed("x", 3), 3, True),
        (lambda hp: hp.Fixed("x", 3), 4, False),
    ],
)
def test_is_valid_value(make, value, valid):
    hp = kt.HyperParameters()
    make(hp)
    assert op.is_valid_value(hp.space[0], value) is valid


# --- mutation -----------------------------------------------------------------


def test_mutate_with_a_fixed_seed():
    parent = op.random_values(flat_space(), random.Random(11))
    assert op.mutate(parent, flat_space(), random.Random(5)) == {
        "act": "tanh",
        "units": 16,
        "lr": 0.00733504001829433,
        "bn": True,
    }


def test_mutate_changes_one_to_three_genes_to_other_valid_values():
    hp = rich_space()
    counts = collections.Counter()
    for seed in range(200):
        rng = random.Random(seed)
        parent = op.random_values(hp, rng)
        child = op.mutate(parent, hp, rng)
        assert set(child) == set(parent)
        assert all(op.is_valid_value(h, child[h.name]) for h in hp.space)
        assert_plain(child)
        assert child["fixed"] == 3
        counts[len(changed(parent, child))] += 1
    assert set(counts) == {1, 2, 3}


@pytest.mark.parametrize("genes", [(1, 1), (2, 2), (3, 3), (4, 4)])
def test_mutate_changes_exactly_the_drawn_number_of_genes(genes):
    hp = rich_space()
    for seed in range(40):
        rng = random.Random(seed)
        parent = op.random_values(hp, rng)
        assert len(changed(parent, op.mutate(parent, hp, rng, genes=genes))) == genes[0]


def test_mutate_caps_the_count_at_the_mutable_genes_and_skips_immovable_ones():
    hp = kt.HyperParameters()
    hp.Boolean("flag")
    hp.Fixed("fixed", "x")
    hp.Choice("single", [7])
    hp.Int("empty_range", 4, 4)
    parent = {"flag": True, "fixed": "x", "single": 7, "empty_range": 4}
    child = op.mutate(parent, hp, random.Random(0), genes=(3, 3))
    assert child == {"flag": False, "fixed": "x", "single": 7, "empty_range": 4}
    only_fixed = kt.HyperParameters()
    only_fixed.Fixed("fixed", 1)
    assert op.mutate({"fixed": 1}, only_fixed, random.Random(0)) == {"fixed": 1}


def test_mutate_moves_unstepped_numbers_and_keeps_them_in_range():
    hp = kt.HyperParameters()
    hp.Float("lr", 1e-4, 1e-1, sampling="log")
    hp.Int("depth", 1, 3, sampling="log")  # few integers: the fallback path
    for seed in range(50):
        rng = random.Random(seed)
        parent = op.random_values(hp, rng)
        child = op.mutate(parent, hp, rng, genes=(2, 2))
        assert child["lr"] != parent["lr"] and 1e-4 <= child["lr"] <= 1e-1
        assert child["depth"] != parent["depth"] and 1 <= child["depth"] <= 3


def test_mutate_respects_conditional_scopes():
    hp = conditional_space()
    switched = 0
    for seed in range(100):
        rng = random.Random(seed)
        parent = op.random_values(hp, rng)
        child = op.mutate(parent, hp, rng)
        for values in (parent, child):
            assert set(values) == active_names(values, hp)
            assert_plain(values)
        switched += parent["model"] != child["model"]
    assert switched > 0


def test_mutate_rejects_a_malformed_gene_range():
    for genes in [(0, 2), (3, 1), (1,), 2, (1.0, 2)]:
        with pytest.raises(ValueError, match="genes="):
            op.mutate({}, flat_space(), random.Random(0), genes=genes)
