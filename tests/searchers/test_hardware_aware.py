"""Accuracy-vs-latency searches through the job: tiny, seeded runs."""

import json

import pytest

from keras_bnn_af.latency import FEATURES, LatencyModel
from keras_bnn_af.searchers import SearchConfig, run_search
from keras_bnn_af.searchers.hardware_aware import pareto_summary
from keras_bnn_af.searchers.pareto_oracle import ParetoGeneticOracle

TINY = {"dataset": "mnist1d", "epochs": 1, "max_samples": 256, "batch_size": 64}


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """Every feature priced, so that predictions warn about nothing; float
    elementwise ops cheap, so that most AFs land within 2x the baseline."""
    path = tmp_path_factory.mktemp("profile") / "toy.json"
    coefficients = {f: 1e-4 if f.startswith("elementwise") else 0.01 for f in FEATURES}
    LatencyModel("toy", {1: coefficients}).save(path)
    return str(path)


def test_a_pareto_search_records_latency_and_writes_its_front(profile, tmp_path):
    out = tmp_path / "pareto"
    settings = {**TINY, "max_trials": 6, "seed": 3}
    settings |= {"objectives": ["val_accuracy", "latency"], "device_model": profile}
    result = run_search(settings, out)
    results = json.loads((out / "results.json").read_text())
    trials = [t for t in results["trials"] if t["status"] == "COMPLETED"]
    assert len(trials) == result.completed >= 4
    assert all(t["latency_ms"] > 0 for t in trials)
    # A non-monotone AF keeps float ops; monotone ones fold: latencies differ.
    summary = results["pareto"]
    assert summary["baseline_latency_ms"] > 0
    assert summary["front"] and summary["hypervolume"] > 0
    assert summary == pareto_summary(
        results["trials"], summary["baseline_latency_ms"], None
    )
    leaderboard = (out / "leaderboard.md").read_text()
    assert "## Pareto front (latency: toy)" in leaderboard
    assert (out / "pareto.png").stat().st_size > 0
    saved = json.loads((out / "search" / "oracle.json").read_text())
    assert saved["pareto"]["objectives"] == [
        ["val_accuracy", "max"],
        ["latency_ms", "min"],
    ]


def test_an_accuracy_search_with_a_device_model_records_latency_only(profile, tmp_path):
    out = tmp_path / "accuracy"
    settings = {**TINY, "max_trials": 4, "seed": 3, "device_model": profile}
    run_search(settings, out)
    results = json.loads((out / "results.json").read_text())
    assert "pareto" not in json.loads((out / "search" / "oracle.json").read_text())
    assert all(
        t["latency_ms"] > 0 for t in results["trials"] if t["status"] == "COMPLETED"
    )
    assert results["pareto"]["front"]


def test_an_arch_pareto_search_names_architectures(profile, tmp_path):
    out = tmp_path / "arch"
    settings = {**TINY, "space": "arch", "max_trials": 4, "seed": 1}
    settings |= {"objectives": ["val_accuracy", "latency"], "device_model": profile}
    run_search(settings, out)
    results = json.loads((out / "results.json").read_text())
    done = [t for t in results["trials"] if t["status"] == "COMPLETED"]
    assert done and all(t["architecture"].startswith("stem") for t in done)
    assert all(t["af"] is None and t["latency_ms"] > 0 for t in done)
    leaderboard = (out / "leaderboard.md").read_text()
    assert "| rank | architecture |" in leaderboard and "## Pareto front" in leaderboard
    assert not list(out.glob("best_*.png"))  # AF plots are for AF searches


def test_pareto_summary_finds_the_front_and_the_best_near_the_baseline():
    def trial(trial_id, score, latency):
        return {
            "trial_id": trial_id,
            "status": "COMPLETED",
            "score": score,
            "latency_ms": latency,
            "af": trial_id,
        }

    trials = [
        trial("fast", 0.5, 1.0),
        trial("balanced", 0.7, 1.05),
        trial("slow", 0.9, 2.0),
        trial("dominated", 0.6, 1.5),
        {"trial_id": "failed", "status": "FAILED", "score": None, "latency_ms": None},
    ]
    summary = pareto_summary(trials, baseline_ms=1.0, budget_ms=1.02)
    assert summary["front"] == ["fast", "balanced", "slow"]
    # Reference (0, 2 ms): boxes [1, 2] x 0.5, [1.05, 2] x 0.7 and a sliver at 2 ms.
    assert summary["hypervolume"] == pytest.approx(0.5 * 0.05 + 0.7 * 0.95)
    assert summary["best_near_baseline"]["trial_id"] == "balanced"  # <= 1.1 ms
    assert summary["best_within_budget"]["trial_id"] == "fast"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"objectives": ["latency"]}, "expected val_accuracy, optionally followed"),
        ({"objectives": ["val_accuracy", "size"]}, "'val_accuracy,size' are not"),
        ({"latency_budget_ms": 2.0}, "needs latency among the objectives"),
        (
            {"space": "tree", "objectives": ["val_accuracy", "latency"]},
            "--space tree does not search latency yet",
        ),
    ],
)
def test_bad_hardware_aware_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**settings)


def test_pareto_oracle_is_the_one_the_job_builds(profile, tmp_path):
    from keras_bnn_af import data
    from keras_bnn_af.searchers import hardware_aware, job

    config = SearchConfig(
        **TINY,
        max_trials=4,
        objectives=["val_accuracy", "latency"],
        device_model=profile,
        latency_budget_ms=5.0,
    )
    splits = data.load("mnist1d", batch_size=64, max_samples=64)
    latency = hardware_aware.trial_latency(config)
    tuner = job._tuner(config, tmp_path, splits, latency, 1.0)
    assert isinstance(tuner.oracle, ParetoGeneticOracle)
    assert tuner.oracle.constraints == {"latency_ms": 5.0}
    assert tuner.oracle.reference_point == {"val_accuracy": 0.0, "latency_ms": 2.0}
