"""`keras-bnn-af search --resume` keeps its word: the saved settings and budget,
errors for flags that differ, and a kill while a trial file is saved.

Trials are a stub (`GeneticSearch.run_trial` returns a score computed from the
genome; no model is built or trained, no plot drawn), so these tests check the
search bookkeeping in seconds; `test_af_search.py` kills and resumes a search
that really trains.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import types
import zlib
from pathlib import Path

import pytest

from keras_bnn_af import cli, cli_search
from keras_bnn_af.searchers import (
    GeneticConfig,
    SearchConfig,
    job_results,
    run_search,
)
from keras_bnn_af.searchers.af_search import _AFHyperModel
from keras_bnn_af.searchers.genetic import GeneticSearch

QUICK = ["--max-samples", "64", "--epochs", "1"]
POPULATION_2 = ["--population", "2", *QUICK]
RAN = "Search: Running Trial"


def _score(values: dict) -> float:
    """A deterministic stand-in for a candidate's validation accuracy."""
    return zlib.crc32(json.dumps(values, sort_keys=True).encode()) % 1000 / 1000


class Interrupted(BaseException):
    """Stops a search mid-trial, as a kill would (keras-tuner catches Exception)."""


@pytest.fixture
def stub_trials(monkeypatch):
    """Trials score their genome instantly; `stop_at[0]` = a trial ID interrupts."""
    return _stub_trials(monkeypatch)


def _stub_trials(monkeypatch) -> list:
    stop_at = [None]

    def run_trial(self, trial, *args, **kwargs):
        if trial.trial_id == stop_at[0]:
            raise Interrupted(trial.trial_id)
        return {"val_accuracy": _score(trial.hyperparameters.values)}

    monkeypatch.setattr(GeneticSearch, "run_trial", run_trial)
    # keras-tuner builds the model once to learn the space: declaring it will do.
    monkeypatch.setattr(_AFHyperModel, "build", lambda self, hp: self.af(hp))
    no_plot = types.SimpleNamespace(
        plot_search_history=lambda *args, **kwargs: None,
        plot_binarizer=lambda *args, **kwargs: None,
    )
    monkeypatch.setattr(job_results, "plots", no_plot)
    return stop_at


def _search(capsys, *argv: str) -> tuple[int, str, str]:
    """`keras-bnn-af search ARGV`: (exit code, stdout, stderr)."""
    try:
        code = cli.main(["search", *argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _trial_files(out: Path) -> dict[str, dict]:
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sorted((out / "search").glob("trial_*/trial.json"))
    }


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_a_bare_resume_keeps_the_saved_budget(tmp_path, capsys, stub_trials):
    out = str(tmp_path / "s")
    stub_trials[0] = "3"  # interrupted while the 4th of 6 trials runs
    with pytest.raises(Interrupted):
        _search(capsys, "--out", out, "--max-trials", "6", "--population", "3", *QUICK)
    capsys.readouterr()
    before = _trial_files(Path(out))
    assert [t["status"] for t in before.values()] == ["COMPLETED"] * 3 + ["RUNNING"]
    stub_trials[0] = None
    code, stdout, _ = _search(capsys, "--out", out, "--resume")
    assert code == 0
    assert stdout.count(RAN) == 3  # trial 3 again, then 4 and 5; not up to 20
    results = _results(Path(out))
    assert (results["completed"], results["failed"], len(results["trials"])) == (
        6,
        0,
        6,
    )
    assert results["config"]["max_trials"] == 6
    assert results["config"]["genetic"]["population_size"] == 3
    after = _trial_files(Path(out))
    for name in ("trial_0", "trial_1", "trial_2"):  # kept, not run again
        assert after[name] == before[name]
    assert (
        after["trial_3"]["hyperparameters"]["values"]
        == (before["trial_3"]["hyperparameters"]["values"])
    )
    assert "6 trials completed, 0 failed" in stdout


def test_max_trials_on_resume_only_raises_the_budget(tmp_path, capsys, stub_trials):
    out = str(tmp_path / "s")
    code, _, _ = _search(
        capsys, "--out", out, "--max-trials", "4", "--population", "2", *QUICK
    )
    assert code == 0 and _results(Path(out))["completed"] == 4
    for lower in ("3", "1"):  # 1: below the population too
        code, stdout, stderr = _search(
            capsys, "--out", out, "--resume", "--max-trials", lower
        )
        assert code == 2 and stdout == ""
        assert f"--max-trials {lower}, below the budget" in stderr
        assert "(4 trials)" in stderr and "Drop --max-trials" in stderr
    code, stdout, _ = _search(capsys, "--out", out, "--resume", "--max-trials", "6")
    assert code == 0
    assert "raising the budget from 4 to 6 trials" in stdout
    assert stdout.count(RAN) == 2
    results = _results(Path(out))
    assert (results["completed"], results["failed"], len(results["trials"])) == (
        6,
        0,
        6,
    )
    # The raised budget is saved: a bare resume keeps it and runs nothing.
    code, stdout, _ = _search(capsys, "--out", out, "--resume")
    assert code == 0 and stdout.count(RAN) == 0 and "raising" not in stdout
    assert json.loads((Path(out) / "search_config.json").read_text())["max_trials"] == 6
    assert len(_trial_files(Path(out))) == 6


def test_other_flags_on_resume_must_match_the_saved_search(
    tmp_path, capsys, stub_trials
):
    out = str(tmp_path / "s")
    code, _, _ = _search(
        capsys, "--out", out, "--max-trials", "2", "--population", "2", *QUICK
    )
    assert code == 0
    files = _trial_files(Path(out))
    for flags, saved, given in [
        (["--dataset", "mnist"], "'mnist1d'", "'mnist'"),
        (["--space", "tree"], "'gaaf'", "'tree'"),
        (["--selection", "elitism"], "'tournament'", "'elitism'"),
        (["--mutation-genes", "1", "3"], "None, adaptive, resolved to 1 1", "1 3"),
    ]:
        code, stdout, stderr = _search(capsys, "--out", out, "--resume", *flags)
        assert code == 2 and stdout == ""
        assert f"{flags[0]} {given} (saved: {saved})" in stderr
        assert f"Drop {flags[0]} to continue" in stderr
        assert "start a new search in another --out folder" in stderr
    code, _, stderr = _search(
        capsys, "--out", out, "--resume", "--dataset", "mnist", "--space", "tree"
    )
    assert code == 2
    assert "--space 'tree' (saved: 'gaaf'); --dataset 'mnist' (saved: 'mnist1d')" in (
        stderr
    )
    assert "Drop --space --dataset to continue" in stderr
    # The same values as saved are fine; --mutation-genes 1 1 is what the
    # adaptive default resolved to for GAAF genomes.
    same = ["--space", "gaaf", "--dataset", "mnist1d", "--max-trials", "2"]
    same += ["--population", "2", "--mutation-genes", "1", "1", *QUICK]
    code, stdout, _ = _search(capsys, "--out", out, "--resume", *same)
    assert code == 0 and stdout.count(RAN) == 0
    assert _trial_files(Path(out)) == files
    # The library applies the same rule.
    with pytest.raises(ValueError, match=r"--units 2 \(saved: 1\)"):
        run_search({"units": 2}, out, resume=True)
    saved = SearchConfig(
        max_trials=2, genetic=GeneticConfig(population_size=2), max_samples=64, epochs=1
    )
    assert run_search(saved, out, resume=True).completed == 2
    with pytest.raises(ValueError, match=r"kill_below 0\.5 \(saved: 0\.11\)"):
        run_search(dataclasses.replace(saved, kill_below=0.5), out, resume=True)
    unknown = "'datset', which is not a SearchConfig field.*Did you mean 'dataset'"
    with pytest.raises(ValueError, match=unknown):
        run_search({"datset": "mnist"}, out, resume=True)


def test_half_written_files_of_older_versions_on_resume(tmp_path, capsys, stub_trials):
    """tuner0.json holds nothing: ignored; a finished trial's or the oracle's
    state cannot be rebuilt: an error naming the file, never a silent loss."""
    out = tmp_path / "s"
    _search(capsys, "--out", str(out), "--max-trials", "2", "--population", "2", *QUICK)
    project = out / "search"
    (project / "tuner0.json").write_text("")
    code, stdout, _ = _search(capsys, "--out", str(out), "--resume")
    assert code == 0 and stdout.count(RAN) == 0
    assert "2 trials completed, 0 failed" in stdout
    for broken, message in [
        (project / "trial_0" / "trial.json", "the search had recorded its end"),
        (project / "oracle.json", "The state (population, random generator) is lost"),
    ]:
        text = broken.read_text()
        broken.write_text(text[: len(text) // 2])
        code, _, stderr = _search(capsys, "--out", str(out), "--resume")
        assert code == 2
        assert f"{str(broken)!r} does not parse" in stderr and message in stderr
        broken.write_text(text)


@pytest.mark.parametrize("window", ["before_the_state", "before_forgetting_it"])
def test_a_trial_whose_end_was_saved_is_not_run_again(
    window, tmp_path, capsys, stub_trials, monkeypatch
):
    """keras-tuner ends a trial in steps: trial.json (COMPLETED), the state
    (ended, but still listed as running), then the state again without it. A
    search stopped between them resumes without training the trial again."""
    from keras_tuner.src.engine import oracle as oracle_module

    from keras_bnn_af.searchers.genetic import GeneticOracle

    def stop_on_trial_1(trial):
        if trial.trial_id == "1" and trial.status == "COMPLETED":
            raise Interrupted(window)

    save = GeneticOracle.save

    def save_or_stop(self):
        for trial in self.ongoing_trials.values():
            stop_on_trial_1(trial)
        save(self)

    out = tmp_path / "s"
    with monkeypatch.context() as patch:
        if window == "before_the_state":
            patch.setattr(GeneticOracle, "save", save_or_stop)
        else:
            on_trial_end = lambda _, trial: stop_on_trial_1(trial)  # noqa: E731
            patch.setattr(oracle_module.Display, "on_trial_end", on_trial_end)
        with pytest.raises(Interrupted):
            _search(capsys, "--out", str(out), "--max-trials", "3", *POPULATION_2)
    capsys.readouterr()
    before = _trial_files(out)
    assert [t["status"] for t in before.values()] == ["COMPLETED"] * 2
    code, stdout, _ = _search(capsys, "--out", str(out), "--resume")
    assert code == 0 and stdout.count(RAN) == 1  # trial 2 only
    after = _trial_files(out)
    assert after["trial_0"] == before["trial_0"]
    assert after["trial_1"] == before["trial_1"]
    results = _results(out)
    assert (results["completed"], results["failed"], len(results["trials"])) == (
        3,
        0,
        3,
    )


#: Runs a stubbed search (4 trials) that is SIGKILLed while it saves trial 2
#: as COMPLETED: `atomic` through the real save (`write_atomic`, killed halfway
#: through writing the temporary file), `in_place` as keras-tuner (and older
#: versions) saved it, half of `trial.json` itself.
KILLED_WHILE_SAVING = textwrap.dedent(
    """
    import json, os, pathlib, signal, sys, zlib

    from keras_bnn_af import cli
    from keras_bnn_af.searchers.af_search import _AFHyperModel
    from keras_bnn_af.searchers.genetic import GeneticOracle, GeneticSearch

    mode, out = sys.argv[1:]

    def run_trial(self, trial, *args, **kwargs):
        values = json.dumps(trial.hyperparameters.values, sort_keys=True)
        return {"val_accuracy": zlib.crc32(values.encode()) % 1000 / 1000}

    def killing(state):
        return state["trial_id"] == "2" and state["status"] == "COMPLETED"

    def half_then_kill(path, text):
        with open(path, "w") as file:
            file.write(text[: len(text) // 2])
        os.kill(os.getpid(), signal.SIGKILL)

    GeneticSearch.run_trial = run_trial
    _AFHyperModel.build = lambda self, hp: self.af(hp)
    if mode == "atomic":
        write_text = pathlib.Path.write_text

        def write_partial(self, text, *args, **kwargs):
            if self.name.startswith(".trial.json.") and killing(json.loads(text)):
                half_then_kill(self, text)
            return write_text(self, text, *args, **kwargs)

        pathlib.Path.write_text = write_partial
    else:
        save_trial = GeneticOracle._save_trial

        def save_in_place(self, trial):
            if killing(trial.get_state()):
                path = os.path.join(self._get_trial_dir("2"), "trial.json")
                half_then_kill(path, json.dumps(trial.get_state()))
            save_trial(self, trial)

        GeneticOracle._save_trial = save_in_place
    cli.main(["search", "--out", out, "--max-trials", "4", "--population", "2",
              "--max-samples", "64", "--epochs", "1"])
    """
)


@pytest.mark.parametrize("mode", ["atomic", "in_place"])
def test_a_kill_while_a_trial_file_is_saved_does_not_break_resume(
    mode, tmp_path, capsys, stub_trials
):
    out = tmp_path / "s"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_SAVING, mode, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    project = out / "search"
    trial_file = project / "trial_2" / "trial.json"
    partial = list((project / "trial_2").glob(".trial.json.*.partial"))
    finished = {
        name: json.loads((project / name / "trial.json").read_text())
        for name in ("trial_0", "trial_1")
    }
    assert [t["status"] for t in finished.values()] == ["COMPLETED"] * 2
    if mode == "atomic":  # trial.json still holds the running trial
        assert len(partial) == 1
        with pytest.raises(json.JSONDecodeError):
            json.loads(partial[0].read_text())
        running = json.loads(trial_file.read_text())
        assert running["status"] == "RUNNING"
        code, stdout, _ = _search(capsys, "--out", str(out), "--resume")
    else:  # trial.json itself is half-written: the trial is lost and rerun
        assert partial == []
        with pytest.raises(json.JSONDecodeError):
            json.loads(trial_file.read_text())
        with pytest.warns(UserWarning, match="trial_2/trial.json' does not parse"):
            code, stdout, _ = _search(capsys, "--out", str(out), "--resume")
    assert code == 0
    assert stdout.count(RAN) == 2  # trial 2 again, then trial 3
    results = _results(out)
    assert (results["completed"], results["failed"], len(results["trials"])) == (
        4,
        0,
        4,
    )
    assert [t["trial_id"] for t in results["trials"]] == ["0", "1", "2", "3"]
    after = _trial_files(out)
    for name, trial in finished.items():  # kept, not run again
        assert after[name] == trial
    genomes = {json.dumps(t["values"], sort_keys=True) for t in results["trials"]}
    assert len(genomes) == 4
    if mode == "atomic":  # the same candidate ran again
        assert (
            after["trial_2"]["hyperparameters"]["values"]
            == (running["hyperparameters"]["values"])
        )


def test_search_help_shows_the_defaults_of_a_new_search(capsys):
    with pytest.raises(SystemExit):
        cli.main(["search", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    config = SearchConfig()
    for flag, default in [
        ("--dataset DATASET", config.dataset),
        ("--max-trials MAX_TRIALS trials in all", config.max_trials),
        ("--batch-size BATCH_SIZE", config.batch_size),
        ("--units {1,2}", config.units),
        ("--seed SEED", config.seed),
        ("parent selection", config.genetic.selection),
        ("--learning-rate LEARNING_RATE Adam", f"{config.learning_rate:.0e}"),
    ]:
        assert f"{flag} (default: {default}".replace("e-03", "e-3") in help_text


def test_every_search_option_given_becomes_a_setting():
    every = ["--space", "tree", "--dataset", "mnist", "--model", "binarynet"]
    every += ["--max-trials", "9", "--population", "3", "--selection", "roulette"]
    every += ["--mutation-genes", "1", "2", "--epochs", "2", "--batch-size", "32"]
    every += ["--learning-rate", "0.01", "--units", "2", "--seed", "5"]
    every += ["--max-samples", "99", "--out", "x", "--resume"]
    parser = cli.build_parser()
    assert cli_search.search_settings(parser.parse_args(["search", *every])) == {
        "space": "tree",
        "dataset": "mnist",
        "model": "binarynet",
        "max_trials": 9,
        "genetic": {
            "population_size": 3,
            "selection": "roulette",
            "mutation_genes": (1, 2),
        },
        "epochs": 2,
        "batch_size": 32,
        "learning_rate": 0.01,
        "units": 2,
        "seed": 5,
        "max_samples": 99,
    }
    assert cli_search.search_settings(parser.parse_args(["search", "--out", "x"])) == {}
