"""AF search spaces, the tree oracle and the `search` job: tiny, seeded runs."""

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner as kt
import numpy as np
import pytest

from keras_bnn_af._keras import keras
from keras_bnn_af.quantizers import GAAF, af
from keras_bnn_af.searchers import (
    GAAFHyperModel,
    GeneticConfig,
    SearchConfig,
    StopBelow,
    TreeHyperModel,
    TreeOracle,
    af_tree,
    operators,
    run_search,
)
from keras_bnn_af.searchers.af_search import AF_VALUE, genome_of

TINY = {"dataset": "mnist1d", "epochs": 1, "max_samples": 256, "batch_size": 64}


def _binarizers(model) -> list:
    return [
        layer.input_quantizer
        for layer in model.layers
        if getattr(layer, "input_quantizer", None) is not None
    ]


def _space(hypermodel) -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return hp


# --- GAAF genome space ---------------------------------------------------------------


def test_gaaf_space_declares_gaafs_genes():
    hp = _space(GAAFHyperModel())
    sizes = {h.name: len(h.values) for h in hp.space}
    assert sizes == {"unary_a": 22, "unary_b": 22, "binary": 11}
    assert GAAFHyperModel().af(hp) == str(af.from_genome([0, 0, 0]))


def test_two_unit_space_is_conditional_and_values_are_active_only():
    hypermodel = GAAFHyperModel(units=2)
    hp = _space(hypermodel)
    rng = random.Random(0)
    seen = set()
    for _ in range(20):
        values = operators.random_values(hp, rng)
        seen.add(values["units"])
        genome = genome_of(values)
        assert len(genome) == (3 if values["units"] == 1 else 6)
        assert len(values) == 1 + len(genome)  # inactive genes are absent
        trial_hp = hp.copy()
        trial_hp.values = values
        assert hypermodel.af(trial_hp) == str(af.from_genome(genome))
    assert seen == {1, 2}
    with pytest.raises(ValueError, match="units=3"):
        GAAFHyperModel(units=3)


def test_build_gives_every_binary_conv_its_own_gaaf():
    hypermodel = GAAFHyperModel(model="conv1d")
    hp = _space(hypermodel)
    hp.values.update(unary_a=6, unary_b=0, binary=0)  # sin(x) + x
    model = hypermodel.build(hp)
    quantizers = _binarizers(model)
    assert len(quantizers) == 3 and len({id(q) for q in quantizers}) == 3
    assert all(isinstance(q, GAAF) and q.af == "sin(x) + x" for q in quantizers)
    assert model.optimizer is not None


def test_stop_below_stops_hopeless_candidates_only():
    class Model:
        stop_training = False

    for values, stopped in (([0.05, 0.3], 0), ([0.5, 0.05], None)):
        callback, model = StopBelow("val_accuracy", 0.11), Model()
        callback.set_model(model)
        callback.on_train_begin()
        for epoch, value in enumerate(values):
            if not model.stop_training:
                callback.on_epoch_end(epoch, {"val_accuracy": value})
        assert callback.stopped_epoch == stopped
        assert model.stop_training == (stopped is not None)


def test_a_diverging_candidate_fails_its_trial():
    hypermodel = GAAFHyperModel(model="conv1d", epochs=2, kill_below=None)
    hp = _space(hypermodel)
    diverged = keras.Sequential(  # a model whose loss is NaN from the first step
        [keras.layers.Dense(10, kernel_initializer=keras.initializers.Constant(np.inf))]
    )
    diverged.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
    x, y = np.ones((8, 4), np.float32), np.zeros(8, np.int64)
    with pytest.raises(kt.errors.FailedTrialError, match="diverged"):
        hypermodel.fit(hp, diverged, x, y, validation_data=(x, y))


# --- tree space ----------------------------------------------------------------------


def _drive(oracle, trials, score):
    """Runs `trials` trials of `oracle` with a stub objective; returns the values."""
    proposed = []
    for index in range(trials):
        trial = oracle.create_trial(f"tuner{index % 2}")
        if trial.status != "RUNNING":
            break
        values = dict(trial.hyperparameters.values)
        proposed.append(values)
        oracle.update_trial(trial.trial_id, {"score": score(values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return proposed


def _tree_oracle(tmp_path, name, **options):
    oracle = TreeOracle(
        objective=kt.Objective("score", "max"),
        max_trials=16,
        population_size=4,
        seed=3,
        hyperparameters=_space(TreeHyperModel()),
        **options,
    )
    oracle._set_project_dir(str(tmp_path), name)
    return oracle


def _shortness(values):
    return -len(values[AF_VALUE])


def test_tree_oracle_evolves_distinct_canonical_formulas(tmp_path):
    oracle = _tree_oracle(tmp_path, "tree")
    proposed = _drive(oracle, 16, _shortness)
    formulas = [values[AF_VALUE] for values in proposed]
    assert len(formulas) == 16 == len(set(formulas))
    for formula in formulas:
        assert af_tree.canonical(formula) == formula
        assert af_tree.is_valid(formula)
    origins = [oracle.lineage[t]["origin"] for t in sorted(oracle.lineage)]
    assert origins[:4] == ["random"] * 4 and set(origins[4:]) == {"child"}


def test_tree_oracle_resumes_exactly(tmp_path):
    whole = _drive(_tree_oracle(tmp_path, "whole"), 12, _shortness)
    first = _tree_oracle(tmp_path, "split")
    head = _drive(first, 6, _shortness)
    state = json.loads(json.dumps(first.get_state()))
    second = _tree_oracle(tmp_path, "split")
    second.set_state(state)
    second.trials = first.trials
    assert head + _drive(second, 6, _shortness) == whole


def test_tree_hypermodel_builds_the_trial_formula():
    hypermodel = TreeHyperModel(model="conv1d")
    hp = _space(hypermodel)
    assert hypermodel.af(hp) == "x"
    hp.values[AF_VALUE] = "x + sin(scale(x))"
    model = hypermodel.build(hp)
    assert [q.af for q in _binarizers(model)] == ["x + sin(scale(x))"] * 3


# --- the search job ------------------------------------------------------------------


@pytest.mark.parametrize("space, skipped", [("gaaf", 7), ("tree", 0)])
def test_search_runs_ranks_and_plots(space, skipped, tmp_path):
    config = SearchConfig(
        space=space, max_trials=4, genetic=GeneticConfig(population_size=2), **TINY
    )
    out = tmp_path / "search"
    result = run_search(config, out, verbose=0)
    # Seeded end to end (oracle, data, and each genome's weights): exact counts.
    assert (result.completed, result.failed, len(result.skipped)) == (4, 0, skipped)
    scores = [entry["score"] for entry in result.leaderboard]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    saved = json.loads((out / "results.json").read_text())
    assert saved["objective"] == "val_accuracy" and len(saved["trials"]) == 4
    assert saved["skipped"] == len(saved["skipped_candidates"]) == len(result.skipped)
    assert saved["genetic"]["population_size"] == 2
    assert all(entry["af"] for entry in saved["leaderboard"])
    for name in ("leaderboard.md", "fitness.png", "best_1.png", "search_config.json"):
        assert (out / name).stat().st_size > 0
    with pytest.raises(FileExistsError, match="--resume"):
        run_search(config, out, verbose=0)


def test_resume_needs_a_search_and_configs_are_checked(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(ValueError, match="holds no search"):
            run_search(SearchConfig(**TINY), folder, resume=True)
    with pytest.raises(ValueError, match="population_size=1"):
        SearchConfig(genetic=GeneticConfig(population_size=1))
    with pytest.raises(ValueError, match="population_size=8 with max_trials=4"):
        SearchConfig(genetic=GeneticConfig(population_size=8), max_trials=4)
    with pytest.raises(ValueError, match="Unknown search space 'grid'"):
        SearchConfig(space="grid")


def _completed(project: Path, deadline: float) -> dict[str, dict]:
    """The COMPLETED trials in `project`; a file caught mid-write is read again."""
    while True:
        try:
            trials = [
                json.loads(path.read_text())
                for path in sorted(project.glob("trial_*/trial.json"))
            ]
        except json.JSONDecodeError:  # empty or half-written: being saved
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        return {t["trial_id"]: t for t in trials if t["status"] == "COMPLETED"}


def test_a_search_killed_with_sigkill_resumes_without_losing_or_retraining(
    tmp_path, capsys
):
    from keras_bnn_af import cli

    out = tmp_path / "search"
    command = [str(Path(sys.executable).with_name("keras-bnn-af")), "search"]
    command += ["--max-trials", "2", "--population", "2", "--epochs", "1"]
    command += ["--max-samples", "64", "--out", str(out)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 240
        while not _completed(out / "search", deadline) and (
            time.monotonic() < deadline
        ):
            assert process.poll() is None, "the search ended before it was killed"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)  # while trial 1 trains
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    before = _completed(out / "search", time.monotonic() + 30)
    assert list(before) == ["0"]
    assert cli.main(["search", "--out", str(out), "--resume"]) == 0  # in-process
    after = _completed(out / "search", time.monotonic() + 30)
    assert list(after) == ["0", "1"]
    assert after["0"] == before["0"]  # kept as it was, not run again
    assert capsys.readouterr().out.count("Search: Running Trial") == 1
    genomes = [
        json.dumps(t["hyperparameters"]["values"], sort_keys=True)
        for t in after.values()
    ]
    assert len(set(genomes)) == 2
    scores = [t["score"] for t in after.values()]
    assert all(math.isfinite(s) for s in scores)
    keras.backend.clear_session()


def test_cli_search_errors_exit_2_with_a_message(tmp_path, capsys):
    from keras_bnn_af import cli

    with pytest.raises(SystemExit) as raised:
        cli.main(["search", "--out", str(tmp_path), "--resume"])
    assert raised.value.code == 2
    assert "holds no search" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        cli.main(["search", "--out", str(tmp_path / "new"), "--population", "1"])
    assert raised.value.code == 2
    assert "population_size=1" in capsys.readouterr().err


def test_af_hypermodels_name_non_viable_candidates():
    gaaf = GAAFHyperModel(model="conv1d")
    relu = {"unary_a": 15, "unary_b": 1, "binary": 0}  # max(x, 0) + 0
    assert "is -1 on only 0.00%" in gaaf.candidate_problem(relu)
    assert gaaf.candidate_problem({"unary_a": 6, "unary_b": 0, "binary": 0}) is None
    assert GAAFHyperModel(skip_non_viable=False).candidate_problem(relu) is None
    tree = TreeHyperModel()
    assert tree.candidate_problem({AF_VALUE: "exp(x) + 1"}) is not None
    assert tree.candidate_problem({AF_VALUE: "sin(x)"}) is None


def test_tree_oracle_saves_its_tree_space(tmp_path):
    space = af_tree.TreeSpace(unary=["sin", "neg", "erf"], max_ops=5)
    first = _tree_oracle(tmp_path, "space", tree_space=space)
    _drive(first, 6, _shortness)
    state = json.loads(json.dumps(first.get_state()))
    assert af_tree.TreeSpace.from_json(state["tree_space"]) == space
    other = _tree_oracle(tmp_path, "space")
    with pytest.warns(UserWarning, match="another tree space"):
        other.set_state(state)
    assert other.tree_space == space


def test_cli_search_takes_the_ga_settings(tmp_path, capsys):
    from keras_bnn_af import cli

    with pytest.raises(SystemExit) as raised:
        cli.main(["search", "--out", str(tmp_path / "a"), "--mutation-genes", "3", "1"])
    assert raised.value.code == 2
    assert "mutation_genes=(3, 1)" in capsys.readouterr().err
    args = cli.build_parser().parse_args(
        ["search", "--out", "x", "--selection", "per_generation", "--mutation-genes",
         "1", "3"]
    )  # fmt: skip
    assert (args.selection, args.mutation_genes) == ("per_generation", [1, 3])
    assert not (tmp_path / "a").exists()


def test_a_small_budget_just_works_with_the_default_population():
    config = SearchConfig(max_trials=8)  # GAAF's population of 10 would not fit
    assert config.genetic.population_size is None
    resolved = config.genetic.resolve([22, 22, 11], config.max_trials)
    assert resolved.population_size == 4  # 4 random genomes, then 4 children
