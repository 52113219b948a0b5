"""ParetoGeneticOracle driven directly, with synthetic objectives and no training.

Two objectives computed from the genome: `accuracy` (max) grows with `width`,
`latency_ms` (min) too, and both get worse with the distance `d` of the genes
`g1..g4` from 6. The Pareto front of the space is the 10 genomes with `d = 0`.
The brute-force references below (naive loops, front peeling, crowding by
explicit neighbours) are written here, independently of `pareto`.
"""

from __future__ import annotations

import json
import math
import random
import statistics

import keras_tuner as kt
import pytest
from keras_tuner.engine.trial import Trial

from keras_bnn_af.searchers import operators
from keras_bnn_af.searchers.pareto_oracle import ParetoGeneticOracle

ACCURACY = kt.Objective("accuracy", "max")
LATENCY = kt.Objective("latency_ms", "min")
OBJECTIVES = [ACCURACY, LATENCY]
REFERENCE = {"accuracy": 0.0, "latency_ms": 12.0}


def space() -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hp.Int("width", 0, 9)
    for index in range(1, 5):
        hp.Int(f"g{index}", 0, 9)
    return hp


def objectives(values) -> dict[str, float]:
    d = sum(abs(values[f"g{index}"] - 6) for index in range(1, 5))
    return {
        "accuracy": math.sqrt(values["width"] / 9) - 0.04 * d,
        "latency_ms": 1.0 + values["width"] + 0.5 * d,
    }


def make_oracle(tmp_path, name="p", **kwargs) -> ParetoGeneticOracle:
    kwargs.setdefault("max_trials", 40)
    kwargs.setdefault("population_size", 6)
    kwargs.setdefault("seed", 0)
    kwargs.setdefault("hyperparameters", space())
    kwargs.setdefault("reference_point", REFERENCE)
    oracle = ParetoGeneticOracle(kwargs.pop("objectives", OBJECTIVES), **kwargs)
    oracle.verbose = 0
    oracle._set_project_dir(str(tmp_path), name)
    return oracle


def finish(oracle, trial, metrics=None, status="COMPLETED") -> None:
    if status == "COMPLETED":
        oracle.update_trial(trial.trial_id, metrics)
    trial.status = status
    oracle.end_trial(trial)


def drive(oracle, trials=None, check=None) -> list:
    """Runs trials one at a time until STOPPED (or `trials` of them)."""
    ran = []
    while trials is None or len(ran) < trials:
        trial = oracle.create_trial("tuner0")
        if trial.status == "STOPPED":
            break
        assert trial.status == "RUNNING"
        finish(oracle, trial, objectives(trial.hyperparameters.values))
        ran.append(trial)
        if check:
            check(oracle)
    return ran


def values_of(trials) -> list[dict]:
    return [t.hyperparameters.values for t in trials]


# --- references ------------------------------------------------------------------


def minimized(metrics) -> tuple[float, float]:
    return (-metrics["accuracy"], metrics["latency_ms"])


def ref_violation(metrics, constraints) -> float:
    total = 0.0
    if "latency_ms" in constraints:
        bound = constraints["latency_ms"]
        total += max(0.0, metrics["latency_ms"] - bound) / abs(bound)
    if "accuracy" in constraints:
        bound = constraints["accuracy"]
        total += max(0.0, bound - metrics["accuracy"]) / abs(bound)
    return total


def ref_beats(a, b, va, vb) -> bool:
    if va > 0 or vb > 0:
        return (va == 0 and vb > 0) or (0 < va < vb)
    no_worse = all(x <= y for x, y in zip(a, b, strict=True))
    return no_worse and any(x < y for x, y in zip(a, b, strict=True))


def ref_ranking(points, violations) -> list[int]:
    """Indices best first: peeled fronts, crowding descending, then index."""
    left, keys = set(range(len(points))), {}
    front_number = 0
    while left:
        front = sorted(
            i
            for i in left
            if not any(
                ref_beats(points[j], points[i], violations[j], violations[i])
                for j in left
            )
        )
        crowding = dict.fromkeys(front, 0.0)
        for k in range(len(points[0])):
            by_k = sorted(front, key=lambda i: (points[i][k], i))
            spread = points[by_k[-1]][k] - points[by_k[0]][k]
            crowding[by_k[0]] = crowding[by_k[-1]] = math.inf
            for before, i, after in zip(by_k, by_k[1:], by_k[2:], strict=False):
                if spread > 0:
                    crowding[i] += (points[after][k] - points[before][k]) / spread
        for i in front:
            keys[i] = (front_number, -crowding[i], i)
        left -= set(front)
        front_number += 1
    return sorted(keys, key=keys.get)


def ref_non_dominated(trials) -> set[str]:
    points = {
        t.trial_id: minimized(objectives(t.hyperparameters.values)) for t in trials
    }
    return {
        i
        for i, p in points.items()
        if not any(ref_beats(q, p, 0, 0) for q in points.values())
    }


def ref_hypervolume(points, reference) -> float:
    """2-D, minimizing: the area of the staircase, by a plain sweep."""
    area, best_y = 0.0, reference[1]
    for x, y in sorted(p for p in points if p[0] < reference[0]):
        if y < best_y:
            area += (reference[0] - x) * (best_y - y)
            best_y = y
    return area


# --- survival and selection --------------------------------------------------------


@pytest.mark.parametrize("constraints", [None, {"latency_ms": 6.0}])
def test_survival_is_the_brute_force_crowded_ranking(tmp_path, constraints):
    def check(oracle):
        trials = [oracle.trials[i] for i in oracle.start_order]
        metrics = [objectives(t.hyperparameters.values) for t in trials]
        violations = [ref_violation(m, constraints or {}) for m in metrics]
        order = ref_ranking([minimized(m) for m in metrics], violations)
        ranked = [trials[i].trial_id for i in order]
        assert oracle.population == ranked[:6]
        assert [t.trial_id for t in oracle.get_best_trials(99)] == ranked
        populations.append(set(oracle.population))

    populations = []

    oracle = make_oracle(tmp_path, max_trials=30, constraints=constraints)
    trials = drive(oracle, check=check)
    assert len(trials) == 30
    origins = [oracle.lineage[t.trial_id]["origin"] for t in trials]
    assert origins == ["random"] * 6 + ["child"] * 24
    for index, trial in enumerate(trials[6:], start=6):  # from the population
        assert set(oracle.lineage[trial.trial_id]["parents"]) <= populations[index - 1]


def test_parents_win_crowded_tournaments_drawn_from_the_seed(tmp_path):
    oracle = make_oracle(tmp_path, population_size=5, tournament_size=5)
    drive(oracle, trials=5)
    best = oracle.population[0]
    child = oracle.create_trial("tuner0")  # a tournament of all 5: the best wins
    assert oracle.lineage[child.trial_id]["parents"] == [best, best]
    assert make_oracle(tmp_path, "b").config.tournament_size == 2  # NSGA-II's
    assert oracle.lineage[child.trial_id]["selection"] == "tournament"


def test_a_search_beats_random_search_on_hypervolume(tmp_path):
    """Hypervolume of the front found in 60 trials (reference accuracy 0,
    latency 12 ms; the true front's is 7.435), seeds 0-4, when written:
    genetic 5.28 5.18 5.54 5.31 4.36 (mean 5.13), random search
    2.79 2.89 3.27 3.43 3.20 (mean 3.11)."""
    true_front = [
        minimized(objectives({"width": w} | dict.fromkeys(["g1", "g2", "g3", "g4"], 6)))
        for w in range(10)
    ]
    true_volume = ref_hypervolume(true_front, (0.0, 12.0))
    genetic, random_search = [], []
    for seed in range(5):
        oracle = make_oracle(
            tmp_path, f"ga{seed}", seed=seed, max_trials=60, population_size=10
        )
        trials = drive(oracle)
        front = oracle.pareto_front()
        assert {t.trial_id for t in front} == ref_non_dominated(trials)
        points = [minimized(oracle.objective_values(t)) for t in front]
        assert oracle.hypervolume() == pytest.approx(ref_hypervolume(points, (0, 12)))
        genetic.append(oracle.hypervolume())
        rng, drawn = random.Random(seed), []
        while len(drawn) < 60:
            values = operators.random_values(space(), rng)
            if values not in drawn:
                drawn.append(values)
        volume = ref_hypervolume([minimized(objectives(v)) for v in drawn], (0, 12))
        random_search.append(volume)
    assert max(genetic) <= true_volume + 1e-9
    assert statistics.mean(genetic) > statistics.mean(random_search) + 1.0
    assert sum(g > r for g, r in zip(genetic, random_search, strict=True)) >= 4


# --- constraints ---------------------------------------------------------------------


def test_infeasible_trials_rank_behind_feasible_ones_by_violation(tmp_path):
    constraints = {"latency_ms": 5.0, "accuracy": 0.5}

    def check(oracle):
        ranked = oracle.get_best_trials(99)
        violations = [oracle.violation(t) for t in ranked]
        expected = [
            ref_violation(oracle.objective_values(t), constraints) for t in ranked
        ]
        assert violations == pytest.approx(expected)
        feasible = [v == 0 for v in violations]
        assert feasible == sorted(feasible, reverse=True)  # feasible first
        infeasible = [v for v in violations if v > 0]
        assert infeasible == sorted(infeasible)
        assert all(oracle.violation(t) == 0 for t in oracle.pareto_front())

    oracle = make_oracle(tmp_path, max_trials=40, constraints=constraints)
    trials = drive(oracle, check=check)
    feasible = [t for t in trials if oracle.violation(t) == 0]
    assert feasible and len(feasible) < len(trials)  # the test tests something
    front = oracle.pareto_front()
    assert {t.trial_id for t in front} == ref_non_dominated(feasible)
    everything = oracle.pareto_front(include_infeasible=True)
    assert {t.trial_id for t in everything} == ref_non_dominated(trials)
    assert any(oracle.violation(t) > 0 for t in everything)


def test_the_violation_is_relative_to_the_bound(tmp_path):
    oracle = make_oracle(
        tmp_path, constraints={"latency_ms": 2.0, "accuracy": 0.5}, population_size=2
    )
    trial = oracle.create_trial("tuner0")
    finish(oracle, trial, {"accuracy": 0.4, "latency_ms": 3.0})
    assert oracle.violation(trial) == pytest.approx(0.1 / 0.5 + 1.0 / 2.0)
    zero = make_oracle(tmp_path, "z", constraints={"accuracy": 0.0}, population_size=2)
    trial = zero.create_trial("tuner0")
    finish(zero, trial, {"accuracy": -0.25, "latency_ms": 3.0})
    assert zero.violation(trial) == 0.25  # a bound of 0 divides by 1


def test_nothing_feasible_gives_an_empty_front_and_a_zero_volume(tmp_path):
    oracle = make_oracle(tmp_path, constraints={"latency_ms": 0.5}, max_trials=8)
    trials = drive(oracle)
    assert oracle.pareto_front() == [] and oracle.hypervolume() == 0.0
    assert len(oracle.get_best_trials(99)) == len(trials)


# --- the answers ---------------------------------------------------------------------


def test_scores_values_and_best_trials(tmp_path):
    oracle = make_oracle(tmp_path, population_size=2)
    trial = oracle.create_trial("tuner0")
    for step, (accuracy, latency) in enumerate([(0.5, 3.0), (0.7, 4.0), (0.6, 2.0)]):
        oracle.update_trial(
            trial.trial_id, {"accuracy": accuracy, "latency_ms": latency}, step=step
        )
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    # The best of each metric in its objective's direction, whatever keras-tuner
    # registered for an unknown name ("accuracy" is inferred "max", "latency_ms"
    # defaults to "min").
    assert oracle.objective_values(trial) == {"accuracy": 0.7, "latency_ms": 2.0}
    assert trial.score == 0.7  # keras-tuner sees the first objective
    assert trial.best_step == 1
    drive(oracle, trials=10)
    front = {t.trial_id for t in oracle.pareto_front()}
    assert {t.trial_id for t in oracle.get_best_trials(len(front))} == front
    running = oracle.create_trial("tuner0")
    assert oracle.get_best_trials(99)[-1] is running  # as keras-tuner pads


def test_the_hypervolume_takes_a_reference(tmp_path):
    oracle = make_oracle(tmp_path, reference_point=None, population_size=2)
    drive(oracle, trials=6)
    with pytest.raises(
        ValueError,
        match="no reference point.*reference_point=.*hypervolume\\(reference=",
    ):
        oracle.hypervolume()
    points = [minimized(oracle.objective_values(t)) for t in oracle.pareto_front()]
    for reference in [(0.0, 12.0), (1.0, 30.0)]:
        volume = oracle.hypervolume(
            {"accuracy": -reference[0], "latency_ms": reference[1]}
        )
        assert volume == pytest.approx(ref_hypervolume(points, reference))
    with pytest.raises(
        ValueError,
        match="reference=\\{'accuracy': 0.0\\}, missing "
        "the objectives \\['latency_ms'\\].*Add them",
    ):
        oracle.hypervolume({"accuracy": 0.0})


# --- determinism, duplicates, resume, workers ---------------------------------------


def test_no_duplicate_genome_and_the_seed_fixes_the_search(tmp_path):
    first = values_of(drive(make_oracle(tmp_path, "a", seed=3)))
    second = values_of(drive(make_oracle(tmp_path, "b", seed=3)))
    other = values_of(drive(make_oracle(tmp_path, "c", seed=4)))
    assert len(first) == 40
    assert len({json.dumps(v, sort_keys=True) for v in first}) == 40
    assert first == second
    assert first != other


def test_a_reloaded_oracle_continues_exactly_like_an_uninterrupted_one(tmp_path):
    settings = {"max_trials": 30, "seed": 7, "constraints": {"latency_ms": 8.0}}
    original = make_oracle(tmp_path, "run", **settings)
    drive(original, trials=12)
    state = json.loads(json.dumps(original.get_state()))
    assert state["pareto"] == {
        "objectives": [["accuracy", "max"], ["latency_ms", "min"]],
        "constraints": {"latency_ms": 8.0},
        "reference_point": REFERENCE,
    }
    assert state["genetic"]["config"]["tournament_size"] == 2
    reloaded = make_oracle(tmp_path, "run", **settings)
    reloaded.reload()
    from_json = make_oracle(tmp_path, "copy", **settings)
    from_json.trials = {
        trial_id: Trial.from_state(trial.get_state())
        for trial_id, trial in original.trials.items()
    }
    from_json.set_state(state)

    expected = values_of(drive(original))
    assert len(expected) == 18
    assert values_of(drive(reloaded)) == expected
    assert values_of(drive(from_json)) == expected
    assert reloaded.population == original.population == from_json.population


def test_resuming_with_other_objectives_warns_and_keeps_the_saved_ones(tmp_path):
    drive(make_oracle(tmp_path, "run", constraints={"latency_ms": 8.0}), trials=6)
    other = [ACCURACY, kt.Objective("latency_ms", "max")]
    resumed = make_oracle(tmp_path, "run", objectives=other)
    with pytest.warns(UserWarning, match="objectives=.*'max'.*\\(saved .*'min'"):
        resumed.reload()
    assert resumed.objectives == OBJECTIVES
    assert resumed.constraints == {"latency_ms": 8.0}


def test_parallel_workers_keep_every_invariant(tmp_path):
    schedule = random.Random(100)
    oracle = make_oracle(tmp_path, max_trials=40, max_consecutive_failed_trials=40)
    workers = [f"w{i}" for i in range(4)]
    running: dict[str, Trial] = {}
    failed: set[str] = set()
    while True:
        free = [w for w in workers if w not in running]
        if free and (not running or schedule.random() < 0.5):
            trial = oracle.create_trial(schedule.choice(free))
            if trial.status in ("STOPPED", "IDLE"):
                if not running:
                    break
                continue
            running[trial.trial_id] = trial
            for parent in oracle.lineage[trial.trial_id].get("parents", []):
                assert oracle.trials[parent].status == "COMPLETED"
        else:
            trial = running.pop(schedule.choice(sorted(running)))
            if schedule.random() < 0.15:
                failed.add(trial.trial_id)
                finish(oracle, trial, status="FAILED")
            else:
                finish(oracle, trial, objectives(trial.hyperparameters.values))
    genomes = {
        json.dumps(t.hyperparameters.values, sort_keys=True)
        for t in oracle.trials.values()
    }
    assert len(oracle.trials) == len(genomes) == 40
    parents = {p for r in oracle.lineage.values() for p in r.get("parents", [])}
    assert parents and not parents & failed
    assert not set(oracle.population) & failed
    assert not {t.trial_id for t in oracle.pareto_front()} & failed


class Synthetic(kt.Tuner):
    """Returns the objectives as a dict (keras-tuner's MultiObjective would
    refuse it without a "multi_objective" key); `drop` leaves one out."""

    drop = None

    def run_trial(self, trial, *args, **kwargs):
        metrics = objectives(trial.hyperparameters.values)
        metrics.pop(self.drop, None)
        return metrics


def test_a_keras_tuner_tuner_runs_it(tmp_path):
    def oracle():
        return ParetoGeneticOracle(
            OBJECTIVES,
            max_trials=12,
            population_size=4,
            seed=1,
            hyperparameters=space(),
        )

    tuner = Synthetic(oracle=oracle(), directory=str(tmp_path), project_name="t")
    tuner.search(verbose=0)
    trials = tuner.oracle.trials
    assert len(trials) == 12
    assert {t.status for t in trials.values()} == {"COMPLETED"}
    best = tuner.get_best_hyperparameters()[0].values
    assert best in [t.hyperparameters.values for t in tuner.oracle.pareto_front()]
    tuner = Synthetic(oracle=oracle(), directory=str(tmp_path), project_name="d")
    tuner.drop = "latency_ms"
    # Each such trial fails with the message; when every trial does,
    # keras-tuner's consecutive-failure limit (3) ends the search, naming it.
    with (
        pytest.warns(UserWarning),
        pytest.raises(RuntimeError, match="(?s)consecutive failures.*'latency_ms'"),
    ):
        tuner.search(verbose=0)
    assert [t.status for t in tuner.oracle.trials.values()] == ["FAILED"] * 3


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"objectives": [ACCURACY]},
            "objectives=\\[Objective\\(name=.accuracy.*\\]; expected a list of 2 "
            "or more.*use GeneticOracle",
        ),
        ({"objectives": ACCURACY}, "objectives=.*accuracy.*GeneticOracle"),
        (
            {"objectives": [ACCURACY, kt.Objective("accuracy", "min")]},
            "naming \\['accuracy'\\] more than once.*Keep one",
        ),
        (
            {"objectives": ["val_accuracy", "latency_ms"]},
            "objective latency_ms, whose direction.*Objective\\('latency_ms', 'min'\\)",
        ),
        (
            {"objectives": [ACCURACY, kt.Objective("size", "smallest")]},
            "direction is not 'min' or 'max'",
        ),
        (
            {"constraints": {"latency": 2.0}},
            "constraints on 'latency', which is not "
            "an objective.*Did you mean 'latency_ms'.*Fix the name",
        ),
        (
            {"constraints": {"latency_ms": math.inf}},
            "constraints\\['latency_ms'\\]=inf; expected a finite number",
        ),
        ({"constraints": {"latency_ms": True}}, "constraints\\['latency_ms'\\]=True"),
        ({"constraints": [2.5]}, "constraints=\\[2.5\\]; expected a dict"),
        (
            {"reference_point": {"accuracy": 0.0}},
            "missing the objectives \\['latency_ms'\\]",
        ),
        (
            {"reference_point": {"accuracy": 0.0, "latency_ms": math.nan}},
            "reference_point\\['latency_ms'\\]=nan",
        ),
        (
            {"selection": "roulette"},
            "selection='roulette'; expected 'tournament'.*Drop selection=",
        ),
        (
            {"objective": ACCURACY},
            'objective=Objective\\(name="accuracy".*expected objectives=.*Rename',
        ),
        ({"populaton_size": 4}, "unknown keyword.*Did you mean 'population_size'"),
        ({"population_size": 1}, "population_size=1"),
    ],
)
def test_bad_arguments_are_named_in_the_error(kwargs, message):
    kwargs = {"objectives": OBJECTIVES, **kwargs}
    with pytest.raises(ValueError, match=message):
        ParetoGeneticOracle(kwargs.pop("objectives"), max_trials=40, **kwargs)


@pytest.mark.filterwarnings("ignore:All-NaN axis:RuntimeWarning")  # keras-tuner's
def test_a_trial_that_did_not_report_every_objective_fails_not_the_search(tmp_path):
    oracle = make_oracle(tmp_path, population_size=2)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"accuracy": 0.5})
    trial.status = "COMPLETED"
    with pytest.warns(UserWarning, match="objectives \\['latency_ms'\\]; it"):
        oracle.end_trial(trial)
    assert trial.status == "FAILED"
    assert (
        "reported ['accuracy']" in trial.message and "Make run_trial" in trial.message
    )
    following = oracle.create_trial("tuner0")  # the search goes on
    assert following.status == "RUNNING"
    finish(oracle, following, {"accuracy": 0.6, "latency_ms": 2.0})
    assert oracle.pareto_front() == [following]


@pytest.mark.filterwarnings("ignore:All-NaN axis:RuntimeWarning")  # keras-tuner's
def test_a_nan_objective_makes_the_trial_invalid(tmp_path):
    oracle = make_oracle(tmp_path, population_size=2)
    trial = oracle.create_trial("tuner0")
    finish(oracle, trial, {"accuracy": 0.5, "latency_ms": math.nan})
    assert math.isnan(trial.score)
    assert trial.status == "FAILED"  # INVALID, and no retry left
    assert oracle.get_best_trials(9) == [trial] and oracle.pareto_front() == []
