"""keras-tuner's chief/worker mode with `GeneticSearch`, as real processes.

One chief and two workers of `distributed_search_process.py` run on 127.0.0.1 and
talk gRPC; trials are a stub (a short sleep and a score computed from the genome),
so the time goes to importing TensorFlow (~5 s a process) and to the chief's
one-second polling.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("distributed_search_process.py")
TUNER_IDS = ("chief", "tuner0", "tuner1")
PROJECT = "distributed"
# keras-tuner's chief rechecks every 20 s whether all workers are done.
TIMEOUT_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(tuner_id: str, port: int, tmp_path: Path, options: list[str]):
    env = dict(
        os.environ,
        KERASTUNER_TUNER_ID=tuner_id,
        KERASTUNER_ORACLE_IP="127.0.0.1",
        KERASTUNER_ORACLE_PORT=str(port),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    command = [sys.executable, str(SCRIPT), str(tmp_path / "runs")]
    command += [str(tmp_path / "reports"), "--project-name", PROJECT, *options]
    with open(tmp_path / f"{tuner_id}.log", "w") as log:
        return subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed in `finally`
        )


def run_distributed(tmp_path: Path, options: list[str]) -> dict[str, dict]:
    """Runs the chief, then two workers; returns their reports by tuner ID.

    # Raises
        AssertionError: when a process fails or outlives `TIMEOUT_SECONDS`; the
            message holds the end of every process's log.
    """
    (tmp_path / "reports").mkdir()
    port = free_port()
    processes = {}
    try:
        for tuner_id in TUNER_IDS:  # the chief first
            processes[tuner_id] = start(tuner_id, port, tmp_path, options)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        codes = {}
        for tuner_id, process in processes.items():
            try:
                codes[tuner_id] = process.wait(max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                codes[tuner_id] = "timeout"
        assert codes == dict.fromkeys(TUNER_IDS, 0), logs(tmp_path, codes)
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    reports = tmp_path / "reports"
    return {i: json.loads((reports / f"{i}.json").read_text()) for i in TUNER_IDS}


def logs(tmp_path: Path, codes: dict) -> str:
    tails = [
        f"--- {tuner_id} (exit {codes[tuner_id]}):\n"
        + (tmp_path / f"{tuner_id}.log").read_text()[-3000:]
        for tuner_id in TUNER_IDS
    ]
    return "\n".join(tails)


def saved_trials(tmp_path: Path) -> list[dict]:
    paths = sorted((tmp_path / "runs" / PROJECT).glob("trial_*/trial.json"))
    return [json.loads(path.read_text()) for path in paths]


def saved_lineage(tmp_path: Path) -> dict[str, dict]:
    oracle = json.loads((tmp_path / "runs" / PROJECT / "oracle.json").read_text())
    return oracle["genetic"]["lineage"]


def genome_key(trial: dict) -> str:
    return json.dumps(trial["hyperparameters"]["values"], sort_keys=True)


def test_chief_and_two_workers_run_every_trial_once(tmp_path):
    options = ["--max-trials", "12", "--population-size", "4", "--seed", "0"]
    options += ["--trial-seconds", "0.1"]
    reports = run_distributed(tmp_path, options)

    trials = saved_trials(tmp_path)
    assert len(trials) == 12
    assert {trial["status"] for trial in trials} == {"COMPLETED"}
    assert len({genome_key(trial) for trial in trials}) == 12

    origins = [record["origin"] for record in saved_lineage(tmp_path).values()]
    assert sorted(origins) == ["child"] * 8 + ["random"] * 4

    # The chief only serves the oracle; the workers share the trials.
    assert reports["chief"]["ran"] == {}
    ran = [reports[tuner_id]["ran"] for tuner_id in ("tuner0", "tuner1")]
    assert all(ran)
    assert not ran[0].keys() & ran[1].keys()
    # Every trial's score, sent by a worker, is saved by the chief.
    scores = {trial["trial_id"]: trial["score"] for trial in trials}
    assert ran[0] | ran[1] == scores
    assert reports["chief"]["statuses"] == {"RUNNING": 12, "STOPPED": 2}


def test_idle_worker_waits_instead_of_spinning(tmp_path):
    # With a population of 2, the worker done with trial 0 gets IDLE until the
    # slow trial 1 completes; keras-tuner's loop alone would ask ~600 times a
    # second (over 1,000 requests here), `GeneticSearch` waits 0.5 s in between.
    options = ["--max-trials", "4", "--population-size", "2", "--seed", "0"]
    options += ["--trial-seconds", "0.2", "--slow-trials", '{"1": 2.0}']
    reports = run_distributed(tmp_path, options)

    trials = saved_trials(tmp_path)
    assert [trial["status"] for trial in trials] == ["COMPLETED"] * 4
    idle = reports["chief"]["statuses"].get("IDLE", 0)
    assert 1 <= idle <= 8, reports["chief"]["statuses"]
