"""GeneticConfig: validation, adaptive defaults, and what the oracle does with it."""

from __future__ import annotations

import json
import math

import keras_tuner as kt
import pytest

from keras_bnn_af.searchers import GeneticConfig, GeneticOracle, operators
from keras_bnn_af.searchers.genetic_config import CROSSOVER_TYPES, SELECTION_POLICIES

MAXIMIZE = kt.Objective("score", "max")


def gaaf_like_space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Choice("a", list(range(22)))
    hp.Choice("b", list(range(22)))
    hp.Choice("op", list(range(11)))
    return hp


def make_oracle(tmp_path, space=None, kind=GeneticOracle, **kwargs) -> GeneticOracle:
    kwargs.setdefault("max_trials", 24)
    oracle = kind(
        objective=MAXIMIZE,
        seed=0,
        hyperparameters=space or gaaf_like_space(),
        **kwargs,
    )
    oracle.verbose = 0
    oracle._set_project_dir(str(tmp_path), "p")
    return oracle


def drive(oracle, score, trials) -> list[dict]:
    values = []
    for _ in range(trials):
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            break
        values.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"score": score(values[-1])})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return values


# --- the config ----------------------------------------------------------------------


def test_defaults_leave_population_and_mutation_adaptive():
    config = GeneticConfig()
    assert config.adaptive_fields == ("population_size", "mutation_genes")
    assert config.selection == "tournament" and config.tournament_size == 5
    assert config.crossover == "single_point" and config.crossover_rate == 0.9
    assert "per_generation" in SELECTION_POLICIES and "uniform" in CROSSOVER_TYPES


def test_random_is_the_old_name_of_per_generation():
    assert GeneticConfig(selection="random").selection == "per_generation"


@pytest.mark.parametrize(
    ("sizes", "budget", "population", "mutation"),
    [
        ([22, 22, 11], 60, 5, (1, 1)),  # GAAF's genome, the benchmark budget
        ([22, 22, 11], 8, 4, (1, 1)),  # a small budget still breeds
        ([22, 22, 11], 4, 2, (1, 1)),
        ([22, 22, 11], 600, 20, (1, 1)),  # capped
        ([22, 22, 11], None, 10, (1, 1)),  # no budget: GAAF's 10
        ([22] * 4 + [11] * 2, 60, 5, (1, 1)),  # two-unit genome, 6 genes
        ([10] * 12, 120, 10, (1, 2)),  # long genomes mutate more genes
        ([8, 32, math.inf, math.inf, 6, 2], 60, 5, (1, 1)),
        ([2, 2], 60, 2, (1, 1)),  # 4 genomes: at most half of them
    ],
)
def test_adaptive_settings_follow_the_genome_and_the_budget(
    sizes, budget, population, mutation
):
    resolved = GeneticConfig().resolve(sizes, budget)
    assert (resolved.population_size, resolved.mutation_genes) == (population, mutation)
    assert resolved.adaptive_fields == ()


def test_given_settings_are_kept_when_resolving():
    config = GeneticConfig(population_size=9, mutation_genes=[1, 3])
    assert config.mutation_genes == (1, 3)
    assert config.resolve([22, 22, 11], 60) == config


def test_json_round_trip_and_keyword_settings():
    config = GeneticConfig(population_size=7, selection="tournament", crossover_rate=1)
    text = json.dumps(config.to_json())
    assert GeneticConfig.from_json(json.loads(text)) == config
    assert config.crossover_rate == 1.0 and isinstance(config.crossover_rate, float)
    arguments = {"population_size": 3, "directory": "runs"}
    assert GeneticConfig.pop_settings(arguments) == {"population_size": 3}
    assert arguments == {"directory": "runs"}
    replaced = GeneticConfig.with_settings(config, {"tournament_size": 5})
    assert replaced.tournament_size == 5 and replaced.population_size == 7


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"population_size": 1}, "population_size=1; expected an integer >= 2"),
        ({"selection": "tournamnet"}, "Did you mean 'tournament'"),
        ({"crossover": "two_point"}, "crossover='two_point'"),
        ({"crossover_rate": "high"}, "crossover_rate='high'"),
        ({"mutation_genes": (2, 1)}, "mutation_genes=\\(2, 1\\)"),
        ({"tournament_size": 0}, "tournament_size=0"),
    ],
)
def test_bad_settings_name_the_value_and_the_fix(settings, message):
    with pytest.raises(ValueError, match=message):
        GeneticConfig(**settings)


def test_the_oracle_refuses_unknown_keywords_and_other_configs():
    with pytest.raises(ValueError, match="Did you mean 'population_size'"):
        GeneticOracle(objective=MAXIMIZE, population=4)
    with pytest.raises(ValueError, match="expected a GeneticConfig"):
        GeneticOracle(objective=MAXIMIZE, config={"population_size": 4})


def test_gene_sizes_count_the_values_of_mutable_hyperparameters():
    hp = kt.HyperParameters()
    hp.Int("depth", 1, 8)
    hp.Int("units", 16, 512, step=16)
    hp.Float("dropout", 0.0, 0.5)
    hp.Choice("optimizer", ["sgd", "adam", "adam"])
    hp.Boolean("batchnorm")
    hp.Fixed("seed", 3)
    hp.Choice("only", [1])
    assert operators.gene_sizes(hp) == [8, 32, math.inf, 2, 2]


# --- the oracle ----------------------------------------------------------------------


def test_the_oracle_resolves_and_saves_its_adaptive_settings(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=60)
    assert oracle.config.population_size is None
    drive(oracle, lambda v: v["a"], 1)
    assert oracle.config.population_size == 5 and oracle.config.mutation_genes == (1, 1)
    saved = json.loads(json.dumps(oracle.get_state()))["genetic"]["config"]
    assert saved["population_size"] == 5 and saved["mutation_genes"] == [1, 1]


def test_filtered_candidates_cost_no_trial_and_are_never_proposed_again(tmp_path):
    def odd_op(values):
        return None if values["op"] % 2 else f"op {values['op']} is even"

    oracle = make_oracle(tmp_path, candidate_filter=odd_op, population_size=4)
    proposed = drive(oracle, lambda v: v["a"] + v["b"], 24)
    assert len(proposed) == 24 and all(v["op"] % 2 for v in proposed)
    skipped = oracle.skipped
    assert skipped and all("is even" in entry["reason"] for entry in skipped)
    keys = [json.dumps(entry["values"], sort_keys=True) for entry in skipped]
    assert len(keys) == len(set(keys))  # each rejected genome was drawn once
    state = json.loads(json.dumps(oracle.get_state()))
    assert state["genetic"]["skipped"] == skipped


def test_a_resumed_oracle_remembers_what_it_skipped(tmp_path):
    def reject_a0(values):
        return "a = 0" if values["a"] == 0 else None

    first = make_oracle(tmp_path, candidate_filter=reject_a0, population_size=4)
    drive(first, lambda v: v["b"], 10)
    resumed = make_oracle(tmp_path, candidate_filter=reject_a0, population_size=4)
    resumed.reload()
    assert resumed.skipped == first.skipped
    before = len(resumed.skipped)
    drive(resumed, lambda v: v["b"], 10)
    keys = [json.dumps(e["values"], sort_keys=True) for e in resumed.skipped]
    assert len(keys) == len(set(keys)) and len(keys) >= before


class FailingMutationOracle(GeneticOracle):
    """Every other mutation finds no valid child."""

    calls = 0

    def _mutate_values(self, values):
        FailingMutationOracle.calls += 1
        if FailingMutationOracle.calls % 2:
            raise operators.OperatorError("no valid mutation")
        return super()._mutate_values(values)


def test_a_failed_mutation_is_a_duplicate_that_is_drawn_again(tmp_path):
    oracle = make_oracle(
        tmp_path, kind=FailingMutationOracle, max_trials=20, population_size=4
    )
    proposed = drive(oracle, lambda v: v["a"], 20)
    assert len(proposed) == 20
    origins = [record["origin"] for record in oracle.lineage.values()]
    assert origins.count("child") == 16


class FailingCrossoverOracle(GeneticOracle):
    """No two parents ever have a valid crossover."""

    def _crossover_values(self, a, b, order):
        raise operators.OperatorError("no valid crossover")


def test_a_failed_crossover_leaves_the_first_parent_to_mutate(tmp_path):
    oracle = make_oracle(
        tmp_path,
        kind=FailingCrossoverOracle,
        max_trials=16,
        population_size=4,
        crossover_rate=1.0,
    )
    proposed = drive(oracle, lambda v: v["a"], 16)
    children = [
        (values, record)
        for values, record in zip(proposed, oracle.lineage.values(), strict=True)
        if record["origin"] == "child"
    ]
    assert len(children) == 12
    for values, record in children:
        parent = oracle.trials[record["parents"][0]].hyperparameters.values
        differing = [name for name in values if values[name] != parent[name]]
        assert len(differing) == 1  # a copy of the first parent, one gene mutated
