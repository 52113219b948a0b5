"""keras-tuner's chief/worker mode with `GeneticSearch`, as real processes.

One chief and two workers of `distributed_search_process.py` run on 127.0.0.1 and
talk gRPC; trials are a stub (a short sleep and a score computed from the genome),
so the time goes to importing TensorFlow (~5 s a process) and to the chief's
one-second polling. The chief's gRPC server binds port 0 and writes the port the
kernel gave it to a file the workers wait for, so no port is picked before it is
bound.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("distributed_search_process.py")
TUNER_IDS = ("chief", "tuner0", "tuner1")
PROJECT = "distributed"
# keras-tuner's chief rechecks every 20 s whether all workers are done.
TIMEOUT_SECONDS = 90


def start(tuner_id: str, tmp_path: Path, options: list[str]):
    env = dict(
        os.environ,
        KERASTUNER_TUNER_ID=tuner_id,
        KERASTUNER_ORACLE_IP="127.0.0.1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.pop("KERASTUNER_ORACLE_PORT", None)
    if tuner_id == "chief":  # a worker reads the port the chief bound (see above)
        env["KERASTUNER_ORACLE_PORT"] = "0"
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
    processes = {}
    try:
        for tuner_id in TUNER_IDS:
            processes[tuner_id] = start(tuner_id, tmp_path, options)
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
    # With a population of 2, a worker asking while the second initial trial
    # (trial 1) runs gets IDLE. Trial 1 is held until the workers were told IDLE
    # twice, so IDLE comes back at least twice however fast or slow the machine.
    options = ["--max-trials", "4", "--population-size", "2", "--seed", "0"]
    options += ["--trial-seconds", "0.2", "--hold-trial", "1"]
    options += ["--hold-until-idle", "2"]
    reports = run_distributed(tmp_path, options)

    trials = saved_trials(tmp_path)
    assert [trial["status"] for trial in trials] == ["COMPLETED"] * 4
    workers = [reports[tuner_id] for tuner_id in ("tuner0", "tuner1")]
    idle = reports["chief"]["statuses"].get("IDLE", 0)
    assert idle >= 2, reports["chief"]["statuses"]
    assert idle == sum(worker["statuses"].get("IDLE", 0) for worker in workers)
    # Waiting, not spinning: a worker told IDLE asks again only after
    # `idle_wait_seconds` (keras-tuner's loop alone asks again at once: gaps of
    # 0.3-0.7 ms measured). A slower machine only lengthens the gaps, so this
    # cannot fail by timing.
    wait = workers[0]["idle_wait_seconds"]
    assert wait >= 0.1
    gaps = [
        later[0] - earlier[1]
        for worker in workers
        for earlier, later in itertools.pairwise(worker["requests"])
        if earlier[2] == "IDLE"
    ]
    assert len(gaps) == idle  # every IDLE is followed by another request
    assert min(gaps) >= wait, gaps
