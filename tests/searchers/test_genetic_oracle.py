"""GeneticOracle driven directly, with a cheap synthetic objective and no training."""

from __future__ import annotations

import hashlib
import json
import random
import statistics

import keras_tuner as kt
import pytest
from keras_tuner.engine.trial import Trial

from keras_bnn_af.searchers import GeneticOracle, GeneticSearch, operators

MAXIMIZE = kt.Objective("score", "max")
MINIMIZE = kt.Objective("score", "min")


def synthetic_space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    for index in range(6):
        hp.Int(f"g{index}", 0, 9)
    hp.Choice("c", [0, 1, 2, 3])
    hp.Float("f", 0.0, 3.0)
    hp.Boolean("b")
    return hp


def synthetic_score(values) -> float:
    """Maximum 62, at g* = 9, c = 3, f = 3.0, b = True."""
    genes = sum(values[f"g{index}"] for index in range(6))
    return genes + values["c"] + values["f"] + 2 * values["b"]


def conditional_space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Choice("model", ["mlp", "cnn", "linear"])
    with hp.conditional_scope("model", ["mlp"]):
        hp.Int("units", 16, 128, step=16)
        hp.Boolean("residual")
    with hp.conditional_scope("model", ["cnn"]):
        hp.Int("filters", 8, 64, step=8)
        hp.Choice("kernel", [3, 5])
        with hp.conditional_scope("kernel", [5]):
            hp.Float("dilation", 1.0, 2.0)
    hp.Float("lr", 1e-3, 1e-1, sampling="log")
    return hp


def conditional_score(values) -> float:
    return values.get("units", 0) / 16 + values.get("filters", 0) / 8 + values["lr"]


def make_oracle(tmp_path, name="p", **kwargs) -> GeneticOracle:
    kwargs.setdefault("objective", MAXIMIZE)
    kwargs.setdefault("max_trials", 40)
    kwargs.setdefault("population_size", 6)
    kwargs.setdefault("seed", 0)
    if "hyperparameters" not in kwargs:
        kwargs["hyperparameters"] = synthetic_space()
    oracle = GeneticOracle(**kwargs)
    oracle.verbose = 0
    oracle._set_project_dir(str(tmp_path), name)
    return oracle


def finish(oracle, trial, score=None, status="COMPLETED") -> None:
    if status == "COMPLETED":
        oracle.update_trial(trial.trial_id, {"score": score})
    trial.status = status
    oracle.end_trial(trial)


def drive(oracle, score=synthetic_score, trials=None, tuner_id="tuner0") -> list:
    """Runs trials one at a time until STOPPED (or `trials` of them)."""
    ran = []
    while trials is None or len(ran) < trials:
        trial = oracle.create_trial(tuner_id)
        if trial.status == "STOPPED":
            break
        assert trial.status == "RUNNING"
        finish(oracle, trial, score(trial.hyperparameters.values))
        ran.append(trial)
    return ran


def genome_hash(values) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def assert_plain(values) -> None:
    for name, value in values.items():
        assert type(value) in (bool, int, float, str), (name, type(value))


def active_names(values, hp: kt.HyperParameters) -> set[str]:
    probe = hp.copy()
    probe.values = dict(values)
    return {h.name for h in probe.space if probe.is_active(h)}


# --- the search ----------------------------------------------------------------


def test_a_full_run_starts_random_then_breeds_without_duplicates(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=30, population_size=6)
    trials = drive(oracle)
    assert len(trials) == 30
    assert len({genome_hash(t.hyperparameters.values) for t in trials}) == 30
    lineage = oracle.lineage
    origins = [lineage[t.trial_id]["origin"] for t in trials]
    assert origins == ["random"] * 6 + ["child"] * 24
    for trial in trials:
        assert_plain(trial.hyperparameters.values)
        assert set(trial.hyperparameters.values) == {
            h.name for h in synthetic_space().space
        }
        for parent in lineage[trial.trial_id].get("parents", []):
            assert parent < trial.trial_id  # an earlier, already completed trial
    assert oracle.create_trial("tuner0").status == "STOPPED"


def test_the_population_is_the_best_completed_trials(tmp_path):
    oracle = make_oracle(tmp_path, max_trials=25, population_size=5)
    trials = drive(oracle)
    ranked = sorted(trials, key=lambda t: (-t.score, t.trial_id))
    assert oracle.population == [t.trial_id for t in ranked[:5]]


def test_genetic_search_beats_random_search_on_average(tmp_path):
    genetic, random_search = [], []
    for seed in range(5):
        oracle = make_oracle(tmp_path, f"ga{seed}", seed=seed, population_size=8)
        genetic.append(max(t.score for t in drive(oracle)))
        baseline = kt.oracles.RandomSearchOracle(
            MAXIMIZE, max_trials=40, seed=seed, hyperparameters=synthetic_space()
        )
        baseline.verbose = 0
        baseline._set_project_dir(str(tmp_path), f"rs{seed}")
        random_search.append(max(t.score for t in drive(baseline)))
    assert statistics.mean(genetic) > statistics.mean(random_search) + 2.0


@pytest.mark.parametrize("selection", ["elitism", "tournament", "roulette", "random"])
@pytest.mark.parametrize("crossover", ["single_point", "uniform"])
def test_every_policy_runs_and_records_it(tmp_path, selection, crossover):
    oracle = make_oracle(
        tmp_path,
        max_trials=16,
        population_size=4,
        selection=selection,
        crossover=crossover,
        crossover_rate=1.0,
    )
    trials = drive(oracle)
    assert len(trials) == 16
    children = [r for r in oracle.lineage.values() if r["origin"] == "child"]
    assert len(children) == 12
    assert {r["crossover"] for r in children} == {crossover}
    if selection != "random":
        assert {r["selection"] for r in children} == {selection}
    else:  # one scheme per generation of population_size children
        schemes = [r["selection"] for r in children]
        assert all(len(set(schemes[i : i + 4])) == 1 for i in range(0, 12, 4))


def test_elitism_breeds_the_two_fittest(tmp_path):
    oracle = make_oracle(tmp_path, population_size=5, selection="elitism")
    drive(oracle, trials=5)
    best_two = oracle.population[:2]
    child = oracle.create_trial("tuner0")
    assert oracle.lineage[child.trial_id]["parents"] == best_two


def test_min_objective_prefers_low_scores(tmp_path):
    oracle = make_oracle(
        tmp_path, objective=MINIMIZE, population_size=5, selection="elitism"
    )
    trials = drive(oracle, trials=5)
    lowest = sorted(trials, key=lambda t: t.score)
    assert oracle.population == [t.trial_id for t in lowest]
    child = oracle.create_trial("tuner0")
    assert oracle.lineage[child.trial_id]["parents"] == oracle.population[:2]
    finish(oracle, child, synthetic_score(child.hyperparameters.values))
    trials = drive(oracle)
    assert min(t.score for t in trials) < min(t.score for t in lowest)
    assert oracle.get_best_trials()[0].score == min(
        t.score for t in oracle.trials.values()
    )


def test_conditional_scopes_give_complete_active_only_values(tmp_path):
    space = conditional_space()
    oracle = make_oracle(
        tmp_path, hyperparameters=space, max_trials=40, population_size=6
    )
    trials = drive(oracle, score=conditional_score)
    assert len(trials) == 40
    models = set()
    for trial in trials:
        values = trial.hyperparameters.values
        assert set(values) == active_names(values, space)
        assert all(
            operators.is_valid_value(h, values[h.name])
            for h in space.space
            if h.name in values
        )
        assert_plain(values)
        models.add(values["model"])
    assert models == {"mlp", "cnn", "linear"}


def test_a_small_space_is_exhausted_and_stops(tmp_path):
    space = kt.HyperParameters()
    space.Choice("c", ["a", "b"])
    space.Boolean("flag")
    oracle = make_oracle(
        tmp_path, hyperparameters=space, max_trials=10, population_size=2
    )
    trials = drive(oracle, score=lambda v: float(v["flag"]))
    assert len(trials) == 4
    assert len({genome_hash(t.hyperparameters.values) for t in trials}) == 4


# --- parallel workers ----------------------------------------------------------


def test_parallel_workers_wait_for_two_completed_parents(tmp_path):
    oracle = make_oracle(
        tmp_path,
        population_size=4,
        selection="elitism",
        max_consecutive_failed_trials=9,
    )
    initial = [oracle.create_trial(f"w{i}") for i in range(4)]
    assert [t.status for t in initial] == ["RUNNING"] * 4
    assert oracle.create_trial("w4").status == "IDLE"
    finish(oracle, initial[0], 5.0)
    assert oracle.create_trial("w4").status == "IDLE"
    finish(oracle, initial[1], status="FAILED")
    assert oracle.create_trial("w4").status == "IDLE"
    finish(oracle, initial[2], 7.0)
    child = oracle.create_trial("w4")
    assert child.status == "RUNNING"
    record = oracle.lineage[child.trial_id]
    assert record["origin"] == "child"
    assert record["parents"] == [initial[2].trial_id, initial[0].trial_id]


def test_never_idle_when_nothing_is_running(tmp_path):
    oracle = make_oracle(tmp_path, population_size=4, max_consecutive_failed_trials=9)
    for index in range(4):
        finish(oracle, oracle.create_trial(f"w{index}"), status="FAILED")
    trial = oracle.create_trial("w0")
    assert trial.status == "RUNNING"
    assert oracle.lineage[trial.trial_id]["origin"] == "random"
    finish(oracle, trial, 1.0)
    # One parent and nothing running: still a random genome, never IDLE.
    trial = oracle.create_trial("w0")
    assert trial.status == "RUNNING"
    assert oracle.lineage[trial.trial_id]["origin"] == "random"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parallel_simulation_keeps_every_invariant(tmp_path, seed):
    schedule = random.Random(100 + seed)
    oracle = make_oracle(
        tmp_path,
        seed=seed,
        max_trials=40,
        population_size=5,
        max_consecutive_failed_trials=40,
    )
    workers = [f"w{i}" for i in range(4)]
    running: dict[str, Trial] = {}
    failed: set[str] = set()
    idle = 0
    while True:
        free = [w for w in workers if w not in running]
        if free and (not running or schedule.random() < 0.5):
            trial = oracle.create_trial(schedule.choice(free))
            if trial.status == "STOPPED":
                if not running:
                    break
                continue
            if trial.status == "IDLE":
                idle += 1
                assert oracle.ongoing_trials, "IDLE while nothing is running"
                continue
            running[trial.trial_id] = trial
            record = oracle.lineage[trial.trial_id]
            for parent in record.get("parents", []):
                assert oracle.trials[parent].status == "COMPLETED"
                assert parent not in failed
            ongoing = [t.hyperparameters.values for t in running.values()]
            assert len({genome_hash(v) for v in ongoing}) == len(ongoing)
        else:
            trial = running.pop(schedule.choice(sorted(running)))
            if schedule.random() < 0.15:
                failed.add(trial.trial_id)
                finish(oracle, trial, status="FAILED")
            else:
                finish(oracle, trial, synthetic_score(trial.hyperparameters.values))
    assert len(oracle.trials) == 40
    hashes = {genome_hash(t.hyperparameters.values) for t in oracle.trials.values()}
    assert len(hashes) == 40
    parents = {p for r in oracle.lineage.values() for p in r.get("parents", [])}
    assert parents and not parents & failed
    assert not set(oracle.population) & failed


# --- determinism and state -------------------------------------------------------


def values_of(trials) -> list[dict]:
    return [t.hyperparameters.values for t in trials]


def test_same_seed_same_search_and_different_seeds_differ(tmp_path):
    first = values_of(drive(make_oracle(tmp_path, "a", seed=3), trials=20))
    second = values_of(drive(make_oracle(tmp_path, "b", seed=3), trials=20))
    other = values_of(drive(make_oracle(tmp_path, "c", seed=4), trials=20))
    assert first == second
    assert first != other


def test_seed_zero_is_a_seed(tmp_path):
    first = values_of(drive(make_oracle(tmp_path, "a", seed=0), trials=8))
    second = values_of(drive(make_oracle(tmp_path, "b", seed=0), trials=8))
    assert first == second


def test_a_reloaded_oracle_continues_exactly_like_an_uninterrupted_one(tmp_path):
    settings = {"max_trials": 30, "population_size": 5, "seed": 7}
    original = make_oracle(tmp_path, "run", **settings)
    drive(original, trials=12)
    state = original.get_state()
    json_state = json.loads(json.dumps(state))

    saved = json.loads((tmp_path / "run" / "oracle.json").read_text())
    assert saved["ongoing_trials"] == {}  # else the last trial would be rerun
    reloaded = make_oracle(tmp_path, "run", **settings)
    reloaded.reload()

    from_json = make_oracle(tmp_path, "copy", **settings)
    from_json.trials = {
        trial_id: Trial.from_state(trial.get_state())
        for trial_id, trial in original.trials.items()
    }
    from_json.set_state(json_state)

    expected = values_of(drive(original))
    assert len(expected) == 18
    assert values_of(drive(reloaded)) == expected
    assert values_of(drive(from_json)) == expected
    assert reloaded.lineage == original.lineage == from_json.lineage


def test_the_state_is_json_and_holds_the_generator_and_settings(tmp_path):
    oracle = make_oracle(tmp_path, population_size=4, selection="tournament")
    drive(oracle, trials=7)
    genetic = json.loads(json.dumps(oracle.get_state()))["genetic"]
    assert genetic["config"] == {
        "population_size": 4,
        "selection": "tournament",
        "crossover": "single_point",
        "crossover_rate": 0.9,
        "mutation_genes": [1, 2],  # adaptive: 9 mutable genes / 6, rounded
        "tournament_size": 5,
    }
    assert genetic["skipped"] == []
    assert genetic["children"] == 3
    assert len(genetic["lineage"]) == 7
    assert genetic["rng_state"][0] == random.Random().getstate()[0]


def test_resuming_with_other_settings_warns_and_keeps_the_saved_ones(tmp_path):
    drive(make_oracle(tmp_path, "run", population_size=4), trials=6)
    resumed = make_oracle(tmp_path, "run", population_size=6, selection="roulette")
    with pytest.warns(UserWarning, match="population_size=6 \\(saved 4\\)"):
        resumed.reload()
    assert resumed.config.population_size == 4
    assert resumed.config.selection == "tournament"


# --- errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"population_size": 1}, "population_size=1; expected an integer >= 2"),
        ({"population_size": True}, "population_size=True"),
        (
            {"population_size": 20, "max_trials": 10},
            "population_size=20 with max_trials=10",
        ),
        ({"selection": "best"}, "selection='best'; expected one of"),
        ({"crossover": "two_point"}, "crossover='two_point'"),
        ({"crossover_rate": 1.5}, "crossover_rate=1.5"),
        ({"mutation_genes": (0, 2)}, "mutation_genes=\\(0, 2\\)"),
        ({"tournament_size": 0}, "tournament_size=0"),
    ],
)
def test_bad_settings_are_named_in_the_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GeneticOracle(objective=MAXIMIZE, **{"max_trials": 40, **kwargs})


def test_no_max_trials_means_no_upper_bound_on_the_population():
    oracle = GeneticOracle(objective=MAXIMIZE, max_trials=None, population_size=500)
    assert oracle.config.population_size == 500


def test_an_empty_space_is_reported_on_the_first_trial(tmp_path):
    oracle = make_oracle(tmp_path, hyperparameters=None)
    with pytest.raises(ValueError, match="empty search space.*hyperparameters="):
        oracle.create_trial("tuner0")


def test_an_objective_the_trials_never_report_is_named(tmp_path):
    oracle = make_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    trial.metrics.register("accuracy")
    trial.metrics.update("accuracy", 0.5)
    trial.status = "COMPLETED"
    with pytest.raises(ValueError, match="'score'.*\\['accuracy'\\]"):
        oracle.end_trial(trial)


# --- GeneticSearch --------------------------------------------------------------


class CountingSearch(GeneticSearch):
    """Evaluates the synthetic objective instead of training a model."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.evaluated: list[str] = []

    def run_trial(self, trial, *args, **kwargs):
        self.evaluated.append(trial.trial_id)
        return {"score": synthetic_score(trial.hyperparameters.values)}


def make_search(tmp_path, max_trials, **kwargs) -> CountingSearch:
    return CountingSearch(
        objective=MAXIMIZE,
        max_trials=max_trials,
        population_size=4,
        seed=1,
        hyperparameters=synthetic_space(),
        directory=str(tmp_path),
        project_name="search",
        **kwargs,
    )


def test_genetic_search_runs_and_resumes_without_retraining(tmp_path):
    tuner = make_search(tmp_path, 12)
    tuner.search(verbose=0)
    trials = tuner.oracle.trials
    assert len(tuner.evaluated) == 12
    assert {t.status for t in trials.values()} == {"COMPLETED"}
    assert len({genome_hash(t.hyperparameters.values) for t in trials.values()}) == 12
    first_values = {i: dict(t.hyperparameters.values) for i, t in trials.items()}

    resumed = make_search(tmp_path, 20, overwrite=False)
    assert len(resumed.oracle.trials) == 12
    resumed.search(verbose=0)
    trials = resumed.oracle.trials
    assert len(resumed.evaluated) == 8
    assert not set(resumed.evaluated) & set(first_values)
    assert {t.status for t in trials.values()} == {"COMPLETED"}
    assert len({genome_hash(t.hyperparameters.values) for t in trials.values()}) == 20
    assert all(trials[i].hyperparameters.values == v for i, v in first_values.items())
    best = resumed.get_best_hyperparameters()[0].values
    assert synthetic_score(best) == max(t.score for t in trials.values())


def test_genetic_search_without_a_space_says_how_to_declare_one(tmp_path):
    tuner = CountingSearch(
        objective=MAXIMIZE,
        max_trials=5,
        population_size=2,
        directory=str(tmp_path),
        project_name="empty",
    )
    with pytest.raises(ValueError, match="empty search space"):
        tuner.search(verbose=0)
