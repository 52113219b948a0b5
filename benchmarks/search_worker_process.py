"""One process of `benchmarks/search_workers.py`: the chief, a worker, or alone.

    python benchmarks/search_worker_process.py DIRECTORY REPORT_DIR [--workers 2]
        [--max-trials 16] [--population 4] [--epochs 5] [--max-samples 3600]

The role comes from keras-tuner's environment variables (`KERASTUNER_TUNER_ID`,
`KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`); without them the process runs
the whole search alone. Threads come from `TF_NUM_INTRAOP_THREADS` and
`TF_NUM_INTEROP_THREADS`, set by the launcher (TensorFlow reads them when it
creates its thread pools, at the first op).

Every process builds the same `GeneticSearch(GAAFHyperModel("conv1d"))`. The
chief only serves the oracle: it loads no data and, on SIGTERM (sent by the
launcher once every worker has exited), writes its report and exits, instead of
keras-tuner's up to 20 s wait. A worker (or the single process) loads MNIST-1D,
waits for the other workers (a file barrier in REPORT_DIR), searches, and records
each trial's wall-clock start and end (`time.time()`, comparable across
processes), CPU seconds, the main thread's CPU seconds, the run-queue wait of its
threads (time runnable but without a CPU) and epochs trained. Each process writes
`REPORT_DIR/<tuner_id>.json`.
"""

from __future__ import annotations

import time

PROCESS_STARTED = time.time()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
from pathlib import Path  # noqa: E402

import keras_tuner as kt  # noqa: E402

from keras_bnn_af import data  # noqa: E402
from keras_bnn_af._keras import keras, tf  # noqa: E402
from keras_bnn_af.searchers import GAAFHyperModel, GeneticSearch  # noqa: E402

IMPORTED = time.time()
OBJECTIVE = kt.Objective("val_accuracy", "max")
BATCH_SIZE = 64
BARRIER_SECONDS = 300


def schedstat() -> dict[str, tuple[float, float]]:
    """`{thread id: (seconds on a CPU, seconds runnable but waiting for one)}`.

    From /proc/self/task/*/schedstat; the wait is the kernel's run-queue delay,
    i.e. time lost to other runnable threads (ours or other processes').
    """
    stats = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            on_cpu, waiting, _ = (task / "schedstat").read_text().split()
        except (OSError, ValueError):  # the thread ended meanwhile
            continue
        stats[task.name] = (int(on_cpu) / 1e9, int(waiting) / 1e9)
    return stats


def schedstat_delta(before: dict, after: dict) -> dict:
    """CPU and run-queue wait between two `schedstat()`s; threads that ended
    in between are missing (their CPU still counts in `time.process_time`)."""
    main = str(os.getpid())
    delta = {
        tid: [b - a for a, b in zip(before.get(tid, (0.0, 0.0)), now, strict=True)]
        for tid, now in after.items()
    }
    return {
        "main_thread_cpu_seconds": delta.get(main, [0.0, 0.0])[0],
        "threads_cpu_seconds": sum(cpu for cpu, _ in delta.values()),
        "run_queue_wait_seconds": sum(wait for _, wait in delta.values()),
    }


class TimedGeneticSearch(GeneticSearch):
    """`GeneticSearch` that records the wall and CPU time of every `run_trial`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.timings: list[dict] = []

    def run_trial(self, trial, *args, **kwargs):
        record = {"trial_id": trial.trial_id, "start": time.time()}
        cpu, sched = time.process_time(), schedstat()
        self.timings.append(record)
        try:
            histories = super().run_trial(trial, *args, **kwargs)
            record["epochs"] = sum(len(history.epoch) for history in histories)
            return histories
        except Exception as error:
            record["error"] = type(error).__name__
            raise
        finally:
            record["end"] = time.time()
            record["cpu_seconds"] = time.process_time() - cpu
            record.update(schedstat_delta(sched, schedstat()))


def thread_report() -> dict:
    """The process's threads now, and the thread settings TensorFlow was given."""
    names = collections.Counter()
    for task in Path("/proc/self/task").iterdir():
        try:
            names[(task / "comm").read_text().strip()] += 1
        except OSError:  # the thread ended meanwhile
            pass
    return {
        "threads": sum(names.values()),
        "thread_names": dict(names),
        "TF_NUM_INTRAOP_THREADS": os.environ.get("TF_NUM_INTRAOP_THREADS"),
        "TF_NUM_INTEROP_THREADS": os.environ.get("TF_NUM_INTEROP_THREADS"),
        # 0 unless set through tf.config.threading (the env variables don't show).
        "tf_config_intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_config_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def wait_for_workers(report_dir: Path, tuner_id: str, workers: int) -> None:
    """Waits until `workers` workers are ready to search.

    # Raises
        TimeoutError: when they are not all ready within `BARRIER_SECONDS`.
    """
    (report_dir / f"{tuner_id}.ready").touch()
    deadline = time.monotonic() + BARRIER_SECONDS
    while len(list(report_dir.glob("*.ready"))) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tuner_id}: fewer than {workers} workers started")
        time.sleep(0.05)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("report_dir")
    parser.add_argument("--project-name", default="search_workers")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-trials", type=int, default=16)
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-samples", type=int, default=3600)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    report_dir = Path(args.report_dir)
    keras.utils.set_random_seed(args.seed)
    splits = None
    input_shape, num_classes, steps = (40, 1), 10, None
    role = os.environ.get("KERASTUNER_TUNER_ID", "alone")
    if role != "chief":  # the chief trains nothing: no data
        splits = data.load(
            "mnist1d", batch_size=BATCH_SIZE, max_samples=args.max_samples, seed=0
        )
        input_shape, num_classes = splits.input_shape, splits.num_classes
        steps = -(-splits.num_examples["train"] // BATCH_SIZE)
    hypermodel = GAAFHyperModel(
        model="conv1d",
        input_shape=input_shape,
        num_classes=num_classes,
        epochs=args.epochs,
        steps_per_epoch=steps,
    )
    tuner = TimedGeneticSearch(
        hypermodel=hypermodel,
        objective=OBJECTIVE,
        max_trials=args.max_trials,
        population_size=args.population,
        seed=args.seed,
        max_consecutive_failed_trials=args.max_trials,
        directory=args.directory,
        project_name=args.project_name,
    )
    tuner_id = tuner.tuner_id if "KERASTUNER_ORACLE_IP" in os.environ else "alone"
    report = {
        "tuner_id": tuner_id,
        "pid": os.getpid(),
        "process_started": PROCESS_STARTED,
        "import_seconds": IMPORTED - PROCESS_STARTED,
    }
    path = report_dir / f"{tuner_id}.json"

    if tuner_id == "chief":
        statuses = collections.Counter()
        create_trial = tuner.oracle.create_trial

        def counting_create_trial(requester):
            trial = create_trial(requester)
            statuses[trial.status] += 1
            return trial

        tuner.oracle.create_trial = counting_create_trial
        cpu = time.process_time()

        def finish(signum, frame):
            report.update(
                search_cpu_seconds=time.process_time() - cpu,
                total_cpu_seconds=time.process_time(),
                statuses=dict(statuses),
                **thread_report(),
            )
            path.write_text(json.dumps(report, indent=1))
            os._exit(0)  # the gRPC server's threads would keep the process alive

        signal.signal(signal.SIGTERM, finish)
        report["search_start"] = time.time()
        tuner.search(verbose=0)  # serves until keras-tuner's own exit
        finish(None, None)

    if tuner_id != "alone":
        wait_for_workers(report_dir, tuner_id, args.workers)
    report["search_start"] = time.time()
    cpu = time.process_time()
    tuner.search(splits.train, validation_data=splits.validation, verbose=0)
    report.update(
        search_end=time.time(),
        search_cpu_seconds=time.process_time() - cpu,
        total_cpu_seconds=time.process_time(),
        trials=tuner.timings,
        **thread_report(),
    )
    path.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
