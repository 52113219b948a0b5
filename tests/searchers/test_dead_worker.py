"""A dead worker does not stall a distributed search (`searchers.liveness`).

Unit tests drive a `GeneticOracle` with a fake clock; the end-to-end test runs
a real chief and two workers on 127.0.0.1 (as `test_distributed_search.py`),
SIGKILLs worker `tuner1` in the middle of its first trial, and checks that the
chief and the other worker still finish with every other trial intact.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

import keras_tuner as kt
import pytest
from keras_tuner.engine.trial import TrialStatus

from keras_bnn_af.searchers.genetic import GeneticOracle

TIMEOUT = 6.0  # worker_timeout of these tests, in seconds


def load_sibling(name: str):
    """Imports `tests/searchers/<name>.py` (pytest runs with importlib mode)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_dead_worker_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


process_script = load_sibling("distributed_search_process")
distributed = load_sibling("test_distributed_search")
OBJECTIVE, search_space = process_script.OBJECTIVE, process_script.search_space
stub_score = process_script.stub_score
TUNER_IDS, logs, start = distributed.TUNER_IDS, distributed.logs, distributed.start
PROJECT = distributed.PROJECT
saved_trials = distributed.saved_trials


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_oracle(tmp_path: Path, clock: FakeClock, **kwargs) -> GeneticOracle:
    settings = {"worker_timeout": TIMEOUT, "heartbeat_interval": 1.0} | kwargs
    oracle = GeneticOracle(
        objective=OBJECTIVE,
        max_trials=10,
        population_size=4,
        seed=0,
        hyperparameters=search_space(),
        clock=clock,
        **settings,
    )
    oracle._set_project_dir(str(tmp_path), "liveness")
    oracle.verbose = 0
    return oracle


def complete(oracle, trial) -> None:
    oracle.update_trial(
        trial.trial_id, {"score": stub_score(trial.hyperparameters.values)}
    )
    trial.status = TrialStatus.COMPLETED
    oracle.end_trial(trial)


def start_two_and_silence_one(tmp_path, **kwargs):
    """tuner0 and tuner1 get trials; then only tuner0 sends heartbeats, for 7 s."""
    clock = FakeClock()
    oracle = make_oracle(tmp_path, clock, **kwargs)
    alive = oracle.create_trial("tuner0")
    dead = oracle.create_trial("tuner1")
    for _ in range(7):
        clock.now += 1.0
        oracle.update_trial(alive.trial_id, {})
    return oracle, alive, dead


def check_alive_intact(oracle, alive) -> None:
    assert oracle.ongoing_trials["tuner0"] is alive
    assert alive.status == TrialStatus.RUNNING and not alive.metrics.metrics
    complete(oracle, alive)
    assert oracle.trials[alive.trial_id].status == TrialStatus.COMPLETED
    assert oracle.trials[alive.trial_id].score == stub_score(
        alive.hyperparameters.values
    )


def send_late_messages(oracle, trial_id: str) -> None:
    """What a worker declared dead, yet alive, sends: all ignored, with warnings."""
    with pytest.warns(UserWarning, match=f"Ignored update_trial for trial {trial_id}"):
        oracle.update_trial(trial_id, {"score": 99.0})
    late = kt.engine.trial.Trial(oracle.get_space(), trial_id, "COMPLETED")
    with pytest.warns(UserWarning, match=f"Ignored end_trial for trial {trial_id}"):
        oracle.end_trial(late)
    assert not oracle.trials[trial_id].metrics.exists("score")


def test_next_request_fails_a_silent_worker_trial(tmp_path):
    oracle, alive, dead = start_two_and_silence_one(tmp_path)
    with pytest.warns(UserWarning, match="taken for dead"):
        new = oracle.create_trial("tuner2")  # a request runs the check
    assert new.trial_id not in (alive.trial_id, dead.trial_id)
    assert "tuner1" not in oracle.ongoing_trials
    assert oracle.tuner_ids == {"tuner0", "tuner2"}  # the chief no longer waits
    ended = oracle.trials[dead.trial_id]
    assert ended.status == TrialStatus.FAILED  # max_retries_per_trial=0
    assert dead.trial_id in oracle.end_order
    for part in ("marked FAILED", "'tuner1'", "7.0 s", "worker_timeout=6.0 s"):
        assert part in ended.message
    send_late_messages(oracle, dead.trial_id)
    assert oracle.trials[dead.trial_id].status == TrialStatus.FAILED
    check_alive_intact(oracle, alive)


def test_next_request_takes_a_requeued_trial(tmp_path):
    oracle, alive, dead = start_two_and_silence_one(tmp_path, max_retries_per_trial=1)
    with pytest.warns(UserWarning, match="re-queued"):
        taken = oracle.create_trial("tuner2")
    assert taken.trial_id == dead.trial_id
    assert oracle.ongoing_trials["tuner2"] is taken
    assert taken.status == TrialStatus.RUNNING
    complete(oracle, taken)
    assert oracle.trials[dead.trial_id].status == TrialStatus.COMPLETED
    check_alive_intact(oracle, alive)


def test_watchdog_check_requeues_and_ignores_late_messages(tmp_path):
    oracle, alive, dead = start_two_and_silence_one(tmp_path, max_retries_per_trial=1)
    with pytest.warns(UserWarning, match="re-queued"):
        assert oracle.end_dead_workers() == ["tuner1"]
    assert oracle.trials[dead.trial_id].status == TrialStatus.INVALID
    assert oracle._retry_queue == [dead.trial_id]
    send_late_messages(oracle, dead.trial_id)
    assert oracle._retry_queue == [dead.trial_id]
    check_alive_intact(oracle, alive)
    assert oracle.create_trial("tuner0").trial_id == dead.trial_id


def test_watchdog_thread_ends_a_silent_worker_trial(tmp_path):
    oracle, alive, dead = start_two_and_silence_one(tmp_path)
    oracle.heartbeat_interval = 0.01  # check every 10 ms; tuner1 is 7 s silent
    with pytest.warns(UserWarning, match="taken for dead"):
        oracle.start_watchdog()
        try:
            deadline = time.monotonic() + 10
            while "tuner1" in oracle.ongoing_trials and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            oracle.stop_watchdog()
    assert oracle.trials[dead.trial_id].status == TrialStatus.FAILED
    assert "tuner1" not in oracle.tuner_ids


def test_heartbeats_and_requests_keep_workers_alive(tmp_path):
    clock = FakeClock()
    oracle = make_oracle(tmp_path, clock)
    running = oracle.create_trial("tuner0")
    for _ in range(20):  # 20 s of heartbeats, each 1 s apart
        clock.now += 1.0
        oracle.update_trial(running.trial_id, {})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert oracle.end_dead_workers() == []
        complete(oracle, running)
        clock.now += TIMEOUT - 0.5  # idle between trials, under the timeout
        assert oracle.create_trial("tuner0").status == TrialStatus.RUNNING
    assert oracle.trials[running.trial_id].status == TrialStatus.COMPLETED


def test_worker_dead_between_trials_is_forgotten(tmp_path):
    clock = FakeClock()
    oracle = make_oracle(tmp_path, clock)
    trial = oracle.create_trial("tuner1")
    complete(oracle, trial)
    clock.now += TIMEOUT + 1
    assert oracle.end_dead_workers() == ["tuner1"]  # no trial: no warning
    assert oracle.tuner_ids == set() and oracle.ongoing_trials == {}


def test_a_worker_unknown_to_this_process_gets_a_fresh_time(tmp_path):
    # As after a reload: last-seen times are runtime-only (monotonic clock).
    clock = FakeClock()
    oracle = make_oracle(tmp_path, clock)
    oracle.tuner_ids.add("tuner9")
    clock.now += 10_000
    assert oracle.end_dead_workers() == []
    clock.now += TIMEOUT + 1
    assert oracle.end_dead_workers() == ["tuner9"]


def test_no_timeout_keeps_keras_tuner_behaviour(tmp_path):
    clock = FakeClock()
    oracle = make_oracle(tmp_path, clock, worker_timeout=None, heartbeat_interval=None)
    trial = oracle.create_trial("tuner1")
    clock.now += 10_000
    oracle.create_trial("tuner0")
    assert oracle.ongoing_trials["tuner1"] is trial


def test_default_settings():
    oracle = GeneticOracle(objective=OBJECTIVE, hyperparameters=search_space())
    assert (oracle.worker_timeout, oracle.heartbeat_interval) == (600.0, 60.0)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"worker_timeout": 0}, r"worker_timeout=0 is not a duration.*positive"),
        ({"worker_timeout": "60"}, r"worker_timeout='60'.*Pass e\.g\."),
        ({"heartbeat_interval": float("nan")}, "heartbeat_interval=nan"),
        (
            {"worker_timeout": 10, "heartbeat_interval": 6},
            r"above half.*heartbeat_interval <= 5",
        ),
        (
            {"worker_timeout": None, "heartbeat_interval": 5},
            r"worker_timeout=None.*Pass worker_timeout",
        ),
    ],
)
def test_bad_settings_are_explained(settings, match):
    with pytest.raises(ValueError, match=match):
        GeneticOracle(objective=OBJECTIVE, hyperparameters=search_space(), **settings)


# --- the real thing: a chief and two workers, one SIGKILLed --------------------

#: Generous on a loaded 2-core machine: TensorFlow imports (~5 s a process),
#: the 6 s timeout, and keras-tuner's chief rechecking only every 20 s.
DEADLINE_SECONDS = 150


def run_and_kill_tuner1(tmp_path: Path, options: list[str], alive_seconds=2.5):
    """Runs the chief and two workers; SIGKILLs tuner1 during its first trial.

    tuner1 is killed `alive_seconds` after its trial started, while it sends
    heartbeats.

    # Returns
        The killed trial's ID, its status saved by the chief just before the
        kill, the seconds from the kill to the chief's exit, the saved trials
        by ID, and tuner0's report.

    # Raises
        AssertionError: when the chief or tuner0 fails or outlives
            `DEADLINE_SECONDS`; the message holds the end of every log.
    """
    options = [*options, "--max-trials", "12", "--population-size", "4"]
    options += ["--seed", "0", "--stall-tuner", "tuner1"]
    options += ["--worker-timeout", str(TIMEOUT), "--heartbeat-interval", "1"]
    reports = tmp_path / "reports"
    reports.mkdir()
    processes, codes = {}, dict.fromkeys(TUNER_IDS, "running")
    try:
        for tuner_id in TUNER_IDS:
            processes[tuner_id] = start(tuner_id, tmp_path, options)
        deadline = time.monotonic() + DEADLINE_SECONDS
        stalled = reports / "tuner1.stalled"
        while not stalled.exists():  # tuner1's first trial is running
            assert time.monotonic() < deadline, logs(tmp_path, codes)
            time.sleep(0.05)
        killed_trial = stalled.read_text()
        time.sleep(alive_seconds)
        before_kill = trial_status(tmp_path, killed_trial)
        os.killpg(processes["tuner1"].pid, signal.SIGKILL)
        killed = time.monotonic()
        codes["tuner1"] = processes["tuner1"].wait()
        for tuner_id in ("tuner0", "chief"):
            try:
                codes[tuner_id] = processes[tuner_id].wait(deadline - time.monotonic())
            except subprocess.TimeoutExpired:
                codes[tuner_id] = "timeout"
        finished = time.monotonic() - killed
        expected = {"chief": 0, "tuner0": 0, "tuner1": -signal.SIGKILL}
        assert codes == expected, logs(tmp_path, codes)
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    trials = {trial["trial_id"]: trial for trial in saved_trials(tmp_path)}
    survivor = json.loads((reports / "tuner0.json").read_text())
    return killed_trial, before_kill, finished, trials, survivor


def trial_status(tmp_path: Path, trial_id: str) -> str:
    path = tmp_path / "runs" / PROJECT / f"trial_{trial_id}" / "trial.json"
    return json.loads(path.read_text())["status"]


def test_sigkilled_worker_trial_fails_and_the_search_finishes(tmp_path):
    # tuner1's trial outlives the timeout while it sends heartbeats; tuner0
    # runs its 11 short trials meanwhile. Once tuner1 is killed, the chief's
    # watchdog ends its trial, and the chief stops at its next 20 s recheck.
    killed_trial, before_kill, finished, trials, survivor = run_and_kill_tuner1(
        tmp_path, ["--trial-seconds", "0.1"], alive_seconds=TIMEOUT + 2
    )
    assert before_kill == "RUNNING"  # heartbeats kept the silent trial alive
    assert len(trials) == 12
    dead = trials.pop(killed_trial)
    assert dead["status"] == "FAILED"
    assert "'tuner1'" in dead["message"] and "worker_timeout=6.0" in dead["message"]
    assert {trial["status"] for trial in trials.values()} == {"COMPLETED"}
    assert survivor["ran"] == {i: trial["score"] for i, trial in trials.items()}
    # Not before the timeout, counted from the last heartbeat (at most 1 s
    # before the kill).
    assert finished > TIMEOUT - 1.5, finished


def test_sigkilled_worker_trial_is_retried_by_the_other_worker(tmp_path):
    # tuner0's 11 trials of 1.5 s outlast the timeout, so it takes the
    # re-queued trial (max_retries_per_trial=1) and completes it.
    options = ["--trial-seconds", "1.5", "--max-retries-per-trial", "1"]
    killed_trial, _, _, trials, survivor = run_and_kill_tuner1(tmp_path, options)
    assert len(trials) == 12
    assert {trial["status"] for trial in trials.values()} == {"COMPLETED"}
    assert killed_trial in survivor["ran"]
    assert survivor["ran"] == {i: trial["score"] for i, trial in trials.items()}
