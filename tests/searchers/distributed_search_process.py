"""One process of a distributed `GeneticSearch`: the chief or a worker.

Run by `tests/test_distributed_search.py` with keras-tuner's environment variables
(`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`), which
decide the role; the code is the same for every process, as keras-tuner expects.

```
python distributed_search_process.py DIRECTORY REPORT_DIR [--max-trials 12] ...
```

The chief is started with `KERASTUNER_ORACLE_PORT=0`: its gRPC server binds a
port the kernel picks, and the chief writes it to `REPORT_DIR/chief.port`; the
workers, started without a port, wait for that file. No port is chosen before
the server binds it, so none can be taken in between.

Trials are a stub: the score is computed from the hyperparameter values, after a
short sleep so that the workers overlap; workers start searching together (a
file barrier in REPORT_DIR), so that each of them runs trials. `--hold-trial`
keeps one trial running until the workers have been told `"IDLE"` a given
number of times. `--stall-tuner` makes that worker's first trial write
`REPORT_DIR/<tuner_id>.stalled` (its trial ID) and then sleep until the test
kills the process (`tests/searchers/test_dead_worker.py`); `--worker-timeout`,
`--heartbeat-interval` and `--max-retries-per-trial` go to `GeneticSearch`. At
the end, each process writes `REPORT_DIR/<tuner_id>.json`:
the trials it ran and their scores (workers), how often each status came back
from `create_trial`, when each request was sent and answered, and the search's
wall and CPU time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
from pathlib import Path

import grpc
import keras_tuner as kt

from keras_bnn_af.searchers import GeneticSearch

OBJECTIVE = kt.Objective("score", "max")
PORT_FILE = "chief.port"
#: How long a worker waits for the chief's port, or a held trial for IDLEs.
WAIT_SECONDS = 60
#: How long a `--stall-tuner` trial sleeps: far longer than any test waits.
STALL_SECONDS = 600


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
        report_dir: the folder of the workers' `.idle` files (`count_statuses`).
        hold_trial: the ID of a trial that, after its sleep, also waits until the
            workers were told `"IDLE"` `hold_until_idle` times in all.
        hold_until_idle: see `hold_trial`.
        stall: whether the first trial, once started, sleeps until killed.
        **kwargs: the arguments of `GeneticSearch`.
    """

    def __init__(
        self,
        *,
        trial_seconds: float,
        report_dir: Path,
        hold_trial: str | None = None,
        hold_until_idle: int = 0,
        stall: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.trial_seconds = trial_seconds
        self.report_dir = report_dir
        self.hold_trial = hold_trial
        self.hold_until_idle = hold_until_idle
        self.stall = stall
        self.ran: dict[str, float] = {}  # trial ID -> score

    def run_trial(self, trial, *args, **kwargs):
        if self.stall:  # a trial that only ends when the test kills this worker
            write_atomically(
                self.report_dir / f"{self.tuner_id}.stalled", trial.trial_id
            )
            time.sleep(STALL_SECONDS)
            raise TimeoutError(f"trial {trial.trial_id} was not killed in time")
        time.sleep(self.trial_seconds)
        if trial.trial_id == self.hold_trial:
            wait_until(
                lambda: idle_count(self.report_dir) >= self.hold_until_idle,
                f"trial {trial.trial_id}: fewer than {self.hold_until_idle} IDLEs",
            )
        self.ran[trial.trial_id] = stub_score(trial.hyperparameters.values)
        return {"score": self.ran[trial.trial_id]}


def count_statuses(oracle, idle_file: Path | None = None):
    """Wraps `oracle.create_trial` to count the statuses it returns.

    Also records every request as `[sent, answered, status]` (monotonic seconds)
    and keeps `idle_file`, if given, at the number of IDLEs so far.

    # Returns
        The counter of statuses and the list of requests, filled as it runs.
    """
    statuses = collections.Counter()
    requests = []
    create_trial = oracle.create_trial

    def counting_create_trial(tuner_id_):
        sent = time.monotonic()
        trial = create_trial(tuner_id_)
        requests.append([sent, time.monotonic(), trial.status])
        statuses[trial.status] += 1
        if trial.status == "IDLE" and idle_file is not None:
            write_atomically(idle_file, str(statuses["IDLE"]))
        return trial

    oracle.create_trial = counting_create_trial
    return statuses, requests


def idle_count(report_dir: Path) -> int:
    """The IDLEs the workers have been told so far (their `.idle` files)."""
    return sum(int(path.read_text()) for path in report_dir.glob("*.idle"))


def write_atomically(path: Path, text: str) -> None:
    """Writes `path` through a renamed temporary file: readers see all or nothing."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def wait_until(condition, message: str) -> None:
    """Polls `condition` every 50 ms.

    # Raises
        TimeoutError: with `message`, when it is still false after `WAIT_SECONDS`.
    """
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message)
        time.sleep(0.05)


class PortReportingServer:
    """A gRPC server that writes the port it bound to a file once it has started.

    keras-tuner 1.4.8's `start_server` binds `KERASTUNER_ORACLE_IP:PORT` with
    `add_insecure_port`, which returns the bound port (the one the kernel chose
    for port 0) and raises when the address cannot be bound; keras-tuner drops
    the return value, this keeps it.
    """

    def __init__(self, server, port_file: Path):
        self._server = server
        self._port_file = port_file
        self._port = None

    def add_insecure_port(self, address: str) -> int:
        self._port = self._server.add_insecure_port(address)
        if not self._port:  # older gRPC versions return 0 instead of raising
            raise RuntimeError(f"the chief could not bind {address}")
        return self._port

    def start(self) -> None:
        self._server.start()
        write_atomically(self._port_file, str(self._port))

    def __getattr__(self, name):
        return getattr(self._server, name)


def report_bound_port(port_file: Path) -> None:
    """Makes the chief's gRPC server write its port to `port_file` (see above)."""
    make_server = grpc.server

    def server(*args, **kwargs):
        return PortReportingServer(make_server(*args, **kwargs), port_file)

    grpc.server = server


def use_chief_port(port_file: Path) -> None:
    """Waits for the chief's port and gives it to keras-tuner (a worker)."""
    wait_until(port_file.exists, "the chief did not write its port")
    os.environ["KERASTUNER_ORACLE_PORT"] = port_file.read_text()


def wait_for_workers(report_dir: Path, tuner_id: str, workers: int) -> None:
    """Waits until `workers` workers are ready, so that all of them run trials.

    # Raises
        TimeoutError: when they are not all ready within `WAIT_SECONDS`.
    """
    (report_dir / f"{tuner_id}.ready").touch()
    wait_until(
        lambda: len(list(report_dir.glob("*.ready"))) >= workers,
        f"{tuner_id}: fewer than {workers} workers started",
    )


def liveness_settings(args: argparse.Namespace) -> dict:
    """`--worker-timeout` and `--heartbeat-interval`, when given, as keywords."""
    settings = {}
    if args.worker_timeout is not None:
        settings["worker_timeout"] = args.worker_timeout
    if args.heartbeat_interval is not None:
        settings["heartbeat_interval"] = args.heartbeat_interval
    return settings


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
    parser.add_argument("--hold-trial", default=None, help="a trial ID, e.g. 1")
    parser.add_argument("--hold-until-idle", type=int, default=1)
    parser.add_argument("--stall-tuner", default=None, help="a tuner ID: tuner1")
    parser.add_argument("--worker-timeout", type=float, default=None)
    parser.add_argument("--heartbeat-interval", type=float, default=None)
    parser.add_argument("--max-retries-per-trial", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    report_dir = Path(args.report_dir)
    tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    if tuner_id == "chief":
        report_bound_port(report_dir / PORT_FILE)
    else:
        use_chief_port(report_dir / PORT_FILE)
    tuner = StubGeneticSearch(
        objective=OBJECTIVE,
        max_trials=args.max_trials,
        population_size=args.population_size,
        seed=args.seed,
        hyperparameters=search_space(),
        directory=args.directory,
        project_name=args.project_name,
        trial_seconds=args.trial_seconds,
        report_dir=report_dir,
        hold_trial=args.hold_trial,
        hold_until_idle=args.hold_until_idle,
        stall=args.stall_tuner == tuner_id,
        max_retries_per_trial=args.max_retries_per_trial,
        **liveness_settings(args),
    )
    # On the chief, `tuner.oracle` is the `GeneticOracle` the gRPC server calls;
    # on a worker, the `OracleClient` that calls the chief.
    if tuner_id == "chief":
        statuses, requests = count_statuses(tuner.oracle)
    else:
        idle_file = report_dir / f"{tuner_id}.idle"
        statuses, requests = count_statuses(tuner.oracle, idle_file)
        wait_for_workers(report_dir, tuner_id, args.workers)
    started, cpu_started = time.monotonic(), time.process_time()
    tuner.search(verbose=0)
    report = {
        "tuner_id": tuner.tuner_id,
        "ran": tuner.ran,
        "statuses": dict(statuses),
        "requests": requests,
        "idle_wait_seconds": tuner.idle_wait_seconds,
        "search_seconds": time.monotonic() - started,
        "search_cpu_seconds": time.process_time() - cpu_started,
        "pid": os.getpid(),
    }
    (report_dir / f"{tuner.tuner_id}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
