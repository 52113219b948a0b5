"""One process of a distributed `GeneticSearch`: the chief or a worker.

Run by `tests/test_distributed_search.py` with keras-tuner's environment variables
(`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`), which
decide the role; the code is the same for every process, as keras-tuner expects.

```
python distributed_search_process.py DIRECTORY REPORT_DIR [--max-trials 12] ...
```

Trials are a stub: the score is computed from the hyperparameter values, after a
short sleep so that the workers overlap; workers start searching together (a
file barrier in REPORT_DIR), so that each of them runs trials. At the end, each
process writes `REPORT_DIR/<tuner_id>.json`: the trials it ran and their scores
(workers), how often
each status came back from `create_trial`, and the search's wall and CPU time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
from pathlib import Path

import keras_tuner as kt

from keras_bnn_af.searchers import GeneticSearch

OBJECTIVE = kt.Objective("score", "max")


def search_space() -> kt.HyperParameters:
    """A small mixed space: Choice, Int, Float and Boolean genes."""
    hp = kt.HyperParameters()
    hp.Choice("units", [8, 16, 32, 64])
    hp.Int("layers", 1, 4)
    hp.Float("dropout", 0.0, 0.5)
    hp.Boolean("batch_norm")
    return hp


def stub_score(values: dict) -> float:
    """A cheap objective with its maximum at the largest values."""
    return (
        values["units"] / 64
        + values["layers"] / 4
        + values["dropout"]
        + float(values["batch_norm"])
    )


class StubGeneticSearch(GeneticSearch):
    """`GeneticSearch` whose trials sleep, then score the genome with `stub_score`.

    # Arguments
        trial_seconds: how long each trial sleeps.
        slow_trials: `{trial_id: seconds}`, sleeps that replace `trial_seconds`.
        **kwargs: the arguments of `GeneticSearch`.
    """

    def __init__(self, *, trial_seconds: float, slow_trials: dict, **kwargs):
        super().__init__(**kwargs)
        self.trial_seconds = trial_seconds
        self.slow_trials = slow_trials
        self.ran: dict[str, float] = {}  # trial ID -> score

    def run_trial(self, trial, *args, **kwargs):
        time.sleep(self.slow_trials.get(trial.trial_id, self.trial_seconds))
        self.ran[trial.trial_id] = stub_score(trial.hyperparameters.values)
        return {"score": self.ran[trial.trial_id]}


def count_statuses(oracle) -> collections.Counter:
    """Wraps `oracle.create_trial` to count the statuses it returns."""
    statuses = collections.Counter()
    create_trial = oracle.create_trial

    def counting_create_trial(tuner_id):
        trial = create_trial(tuner_id)
        statuses[trial.status] += 1
        return trial

    oracle.create_trial = counting_create_trial
    return statuses


def wait_for_workers(report_dir: Path, tuner_id: str, workers: int) -> None:
    """Waits until `workers` workers are ready, so that all of them run trials.

    # Raises
        TimeoutError: when they are not all ready within a minute.
    """
    (report_dir / f"{tuner_id}.ready").touch()
    deadline = time.monotonic() + 60
    while len(list(report_dir.glob("*.ready"))) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tuner_id}: fewer than {workers} workers started")
        time.sleep(0.05)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("report_dir")
    parser.add_argument("--project-name", default="distributed")
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--population-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trial-seconds", type=float, default=0.3)
    parser.add_argument(
        "--slow-trials", type=json.loads, default={}, help='e.g. {"01": 2.0}'
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    tuner = StubGeneticSearch(
        objective=OBJECTIVE,
        max_trials=args.max_trials,
        population_size=args.population_size,
        seed=args.seed,
        hyperparameters=search_space(),
        directory=args.directory,
        project_name=args.project_name,
        trial_seconds=args.trial_seconds,
        slow_trials=args.slow_trials,
    )
    # On the chief, `tuner.oracle` is the `GeneticOracle` the gRPC server calls;
    # on a worker, the `OracleClient` that calls the chief.
    statuses = count_statuses(tuner.oracle)
    report_dir = Path(args.report_dir)
    if tuner.tuner_id != "chief":
        wait_for_workers(report_dir, tuner.tuner_id, args.workers)
    started, cpu_started = time.monotonic(), time.process_time()
    tuner.search(verbose=0)
    report = {
        "tuner_id": tuner.tuner_id,
        "ran": tuner.ran,
        "statuses": dict(statuses),
        "search_seconds": time.monotonic() - started,
        "search_cpu_seconds": time.process_time() - cpu_started,
        "pid": os.getpid(),
    }
    (report_dir / f"{tuner.tuner_id}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
