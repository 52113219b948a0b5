"""Trials per hour of a real GAAF search with two distributed workers vs one.

    python benchmarks/search_workers.py [--repeats 3] [--configs A B C]
        [--max-trials 16] [--population 4] [--epochs 5] [--max-samples 3600]

The search: `GeneticSearch(GAAFHyperModel(model="conv1d"))`, objective
`val_accuracy` (max), on MNIST-1D (`data.load("mnist1d", batch_size=64,
max_samples=...)`), a fixed budget of `--max-trials` trials, population
`--population`, `--epochs` epochs per candidate (GAAF's early kill below 11 %
validation accuracy after one epoch stays on; diverging AFs are FAILED trials).
Every run starts fresh processes of `benchmarks/search_worker_process.py` in a
new directory; chief and workers talk gRPC on 127.0.0.1 (a free port).

Configurations (threads via `TF_NUM_INTRAOP_THREADS` / `TF_NUM_INTEROP_THREADS`
in each process's environment):

- A: chief + 1 worker; the worker has 2 intra-op threads, 1 inter-op thread.
- B: chief + 2 workers; each 1 intra-op thread, 1 inter-op thread.
- C: one process, no chief (plain keras-tuner), 2 intra-op, 1 inter-op threads.

The chief gets 1 + 1 threads and only serves the oracle (no data, no training);
its CPU time is reported. Runs are interleaved (A B C A B C ...) so that load
drift on a shared machine hits every configuration.

Throughput. Each worker records the wall-clock start and end of every
`run_trial`. "trials/h" = ended trials (COMPLETED + FAILED, i.e. the budget) /
(last trial end - first trial start). "search trials/h" uses the span from the
first worker's `search()` call (after imports, data loading and the barrier) to
the last worker's return, so it also counts the first oracle round trip, IDLE
waits and the tail where one worker has finished. Epochs/h (epochs actually
trained, over the trial span) normalises for early-killed candidates, which
differ between runs because the genomes a parallel search proposes depend on the
order in which trials end. Checked per run: every trial ended once, no genome
twice; the machine's load average and the CPU used by other processes during the
run (from /proc/stat) are recorded. On a shared machine, other work takes CPU
from the workers unevenly (the scheduler shares cores per runnable thread, and B
has more of them), so the workers also record their threads' run-queue wait
(/proc/self/task/*/schedstat), from which an estimate of trials/h without other
work is derived (see docs/search_workers.md).

Writes benchmarks/results/search_workers.json and docs/search_workers.md.
"""

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SCRIPT = ROOT / "search_worker_process.py"
RESULTS = ROOT / "results" / "search_workers.json"
DOCS = ROOT.parent / "docs" / "search_workers.md"
PROJECT = "search_workers"
#: name -> (description, chief?, {tuner_id: (intra-op, inter-op threads)})
CONFIGS = {
    "A": ("chief + 1 worker x 2 threads", True, {"tuner0": (2, 1)}),
    "B": ("chief + 2 workers x 1 thread", True, {"tuner0": (1, 1), "tuner1": (1, 1)}),
    "C": ("1 process x 2 threads, no chief", False, {"alone": (2, 1)}),
}
CHIEF_THREADS = (1, 1)
TUNER_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_jiffies() -> int:
    """Busy jiffies (clock ticks) of all CPUs since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start(tuner_id, threads, port, folder: Path, options: list[str]):
    env = {k: v for k, v in os.environ.items() if k not in TUNER_ENV}
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        TF_NUM_INTRAOP_THREADS=str(threads[0]),
        TF_NUM_INTEROP_THREADS=str(threads[1]),
    )
    if port is not None:
        env.update(
            KERASTUNER_TUNER_ID=tuner_id,
            KERASTUNER_ORACLE_IP="127.0.0.1",
            KERASTUNER_ORACLE_PORT=str(port),
        )
    command = [sys.executable, str(SCRIPT), str(folder / "runs")]
    command += [str(folder / "reports"), "--project-name", PROJECT, *options]
    with open(folder / f"{tuner_id}.log", "w") as log:
        return subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed in `finally`
        )


def kill_all(processes: dict) -> None:
    for process in processes.values():
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def logs(folder: Path, processes: dict) -> str:
    return "\n".join(
        f"--- {tuner_id} (exit {process.poll()}):\n"
        + (folder / f"{tuner_id}.log").read_text()[-3000:]
        for tuner_id, process in processes.items()
    )


def run_config(name: str, args, folder: Path) -> dict:
    """Runs configuration `name` once in `folder`; returns the measured row.

    # Raises
        RuntimeError: when a process fails or the run outlives `--timeout`; the
            message holds the end of every process's log.
    """
    _, has_chief, workers = CONFIGS[name]
    (folder / "reports").mkdir(parents=True)
    options = ["--workers", str(len(workers)), "--max-trials", str(args.max_trials)]
    options += ["--population", str(args.population), "--epochs", str(args.epochs)]
    options += ["--max-samples", str(args.max_samples), "--seed", str(args.seed)]
    port = free_port() if has_chief else None
    processes, loads = {}, []
    busy0 = cpu_jiffies()
    cpu0, started = children_cpu(), time.time()
    try:
        if has_chief:  # the chief first
            processes["chief"] = start("chief", CHIEF_THREADS, port, folder, options)
        for tuner_id, threads in workers.items():
            processes[tuner_id] = start(tuner_id, threads, port, folder, options)
        deadline = time.monotonic() + args.timeout
        last_sample = 0.0
        while any(processes[t].poll() is None for t in workers):
            # The chief may exit first (0) once the search is over, not fail.
            if has_chief and processes["chief"].poll() not in (None, 0):
                message = f"{name}: the chief failed\n"
                raise RuntimeError(message + logs(folder, processes))
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: timeout\n" + logs(folder, processes))
            if time.monotonic() - last_sample >= 10:
                loads.append(os.getloadavg()[0])
                last_sample = time.monotonic()
            time.sleep(0.2)
        if any(processes[t].returncode != 0 for t in workers):
            raise RuntimeError(f"{name}: a worker failed\n" + logs(folder, processes))
        if has_chief:  # every trial has ended: stop the chief's 20 s exit wait
            processes["chief"].send_signal(signal.SIGTERM)
            if processes["chief"].wait(30) != 0:
                raise RuntimeError(
                    f"{name}: the chief failed\n" + logs(folder, processes)
                )
    finally:
        kill_all(processes)
    wall = time.time() - started
    busy1 = cpu_jiffies()
    ours = children_cpu() - cpu0
    busy_core_seconds = (busy1 - busy0) / os.sysconf("SC_CLK_TCK")
    reports = {
        tuner_id: json.loads((folder / "reports" / f"{tuner_id}.json").read_text())
        for tuner_id in processes
    }
    return measure(name, reports, folder, wall, ours, busy_core_seconds, loads)


def measure(name, reports, folder, wall, ours, busy_core_seconds, loads) -> dict:
    cores = os.cpu_count() or 1
    workers = [r for r in reports.values() if r["tuner_id"] != "chief"]
    timings = [trial for report in workers for trial in report["trials"]]
    first, last = min(t["start"] for t in timings), max(t["end"] for t in timings)
    search_start = min(r["search_start"] for r in workers)
    search_end = max(r["search_end"] for r in workers)
    saved = [
        json.loads(path.read_text())
        for path in sorted((folder / "runs" / PROJECT).glob("trial_*/trial.json"))
    ]
    statuses: dict[str, int] = {}
    for trial in saved:
        statuses[trial["status"]] = statuses.get(trial["status"], 0) + 1
    genomes = {
        json.dumps(t["hyperparameters"]["values"], sort_keys=True) for t in saved
    }
    ids = [t["trial_id"] for t in timings]
    epochs = sum(t.get("epochs", 0) for t in timings)
    span, search_span = last - first, search_end - search_start
    durations = [t["end"] - t["start"] for t in timings]
    trial_cpu = sum(t["cpu_seconds"] for t in timings)
    main_cpu = sum(t["main_thread_cpu_seconds"] for t in timings)
    waits = sum(t["run_queue_wait_seconds"] for t in timings)
    # A worker's demand: its threads' average number runnable (on a CPU or
    # waiting for one) during its trials. Without other work, a worker with
    # `cores / workers` cores to itself would run `min(demand, its cores)` of
    # them at once, so a trial would take its CPU / that.
    demands, estimate = [], 0.0
    for report in workers:
        ts = report["trials"]
        runnable = sum(
            t["threads_cpu_seconds"] + t["run_queue_wait_seconds"] for t in ts
        )
        demands.append(runnable / sum(t["end"] - t["start"] for t in ts))
        cpu_per_trial = sum(t["cpu_seconds"] for t in ts) / len(ts)
        estimate += min(demands[-1], cores / len(workers)) / cpu_per_trial * 3600
    chief = reports.get("chief")
    return {
        "config": name,
        "trials": len(saved),
        "statuses": statuses,
        "distinct_genomes": len(genomes),
        "each_trial_run_once": len(ids) == len(set(ids)) == len(saved),
        "trials_per_worker": {r["tuner_id"]: len(r["trials"]) for r in workers},
        "epochs": epochs,
        "trial_span_s": round(span, 2),
        "search_span_s": round(search_span, 2),
        "run_wall_s": round(wall, 2),
        "trials_per_hour": round(len(timings) / span * 3600, 1),
        "search_trials_per_hour": round(len(timings) / search_span * 3600, 1),
        "epochs_per_hour": round(epochs / span * 3600, 1),
        "mean_trial_s": round(statistics.mean(durations), 2),
        "trial_cpu_s": round(trial_cpu, 1),
        "cpu_s_per_trial": round(trial_cpu / len(timings), 2),
        # CPU the workers got while running trials, in cores (at most 2 here).
        "worker_cores": round(trial_cpu / span, 2),
        "main_thread_share": round(main_cpu / trial_cpu, 3),
        "run_queue_wait_s_per_trial": round(waits / len(timings), 2),
        "runnable_threads": round(statistics.mean(demands), 2),
        "uncontended_trials_per_hour": round(estimate, 1),
        "worker_search_cpu_s": round(sum(r["search_cpu_seconds"] for r in workers), 1),
        "chief_search_cpu_s": round(chief["search_cpu_seconds"], 2) if chief else None,
        "chief_total_cpu_s": round(chief["total_cpu_seconds"], 2) if chief else None,
        "chief_statuses": chief["statuses"] if chief else None,
        "import_s": [round(r["import_seconds"], 1) for r in reports.values()],
        "threads": {
            r["tuner_id"]: {
                "TF_NUM_INTRAOP_THREADS": r["TF_NUM_INTRAOP_THREADS"],
                "TF_NUM_INTEROP_THREADS": r["TF_NUM_INTEROP_THREADS"],
                "os_threads": r["threads"],
            }
            for r in reports.values()
        },
        "our_cpu_s": round(ours, 1),
        "other_cores": round(max(busy_core_seconds - ours, 0.0) / wall, 2),
        "load_1min": loads,
        "trial_records": {r["tuner_id"]: r["trials"] for r in workers},
    }


def summarize(runs: list[dict], configs: list[str]) -> dict:
    summary = {}
    for name in configs:
        rows = [run for run in runs if run["config"] == name]
        summary[name] = {
            key: statistics.median(row[key] for row in rows)
            for key in (
                "trials_per_hour",
                "search_trials_per_hour",
                "epochs_per_hour",
                "mean_trial_s",
                "cpu_s_per_trial",
                "worker_cores",
                "main_thread_share",
                "run_queue_wait_s_per_trial",
                "runnable_threads",
                "uncontended_trials_per_hour",
                "other_cores",
            )
        }
    if "A" in summary and "B" in summary:
        summary["B/A"] = {
            key: round(summary["B"][key] / summary["A"][key], 3)
            for key in (
                "trials_per_hour",
                "search_trials_per_hour",
                "epochs_per_hour",
                "uncontended_trials_per_hour",
            )
        }
        pairs = zip(
            [r for r in runs if r["config"] == "A"],
            [r for r in runs if r["config"] == "B"],
            strict=False,
        )
        summary["B/A"]["per_repeat_trials_per_hour"] = [
            round(b["trials_per_hour"] / a["trials_per_hour"], 3) for a, b in pairs
        ]
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--configs", nargs="+", choices=sorted(CONFIGS), default=["A", "B", "C"]
    )
    parser.add_argument("--max-trials", type=int, default=16)
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-samples", type=int, default=3600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--keep", type=Path, help="keep run folders under this path")
    args = parser.parse_args(argv)
    # A SIGTERM to the launcher unwinds like Ctrl-C, so `finally` kills the runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    command = "python benchmarks/search_workers.py " + " ".join(argv or sys.argv[1:])
    started, load_before = time.time(), os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for repeat in range(args.repeats):
            for name in args.configs:
                row = run_config(name, args, base / f"{repeat}{name}")
                row["repeat"] = repeat
                runs.append(row)
                print(
                    f"{repeat} {name}: {row['trials_per_hour']:7.1f} trials/h "
                    f"(span {row['trial_span_s']:.0f} s, {row['statuses']}, "
                    f"{row['distinct_genomes']} genomes, other work "
                    f"{row['other_cores']:.2f} cores)",
                    flush=True,
                )
    result = {
        "command": command.strip(),
        "settings": {k: v for k, v in vars(args).items() if k != "keep"},
        "cores": os.cpu_count(),
        "total_seconds": round(time.time() - started, 1),
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "configs": {name: CONFIGS[name][0] for name in args.configs},
        "runs": runs,
        "summary": summarize(runs, args.configs),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    DOCS.write_text(render(result))
    print(table(result))
    print(f"wrote {RESULTS} and {DOCS}")
    return 0


def table(result: dict) -> str:
    lines = [
        "| config | trials/h (trial span) | trials/h (search span) | epochs/h "
        "| mean trial s | CPU s / trial | main-thread share | worker cores "
        "| run-queue wait s / trial | runnable threads per worker "
        "| other work, cores | est. trials/h without other work |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, description in result["configs"].items():
        s = result["summary"][name]
        lines.append(
            f"| {name}: {description} | {s['trials_per_hour']:.1f} "
            f"| {s['search_trials_per_hour']:.1f} | {s['epochs_per_hour']:.1f} "
            f"| {s['mean_trial_s']:.1f} | {s['cpu_s_per_trial']:.2f} "
            f"| {s['main_thread_share']:.0%} | {s['worker_cores']:.2f} "
            f"| {s['run_queue_wait_s_per_trial']:.2f} "
            f"| {s['runnable_threads']:.2f} | {s['other_cores']:.2f} "
            f"| {s['uncontended_trials_per_hour']:.1f} |"
        )
    ratio = result["summary"].get("B/A")
    if ratio:
        lines.append(
            f"| **B/A** | **{ratio['trials_per_hour']:.2f}x** "
            f"| {ratio['search_trials_per_hour']:.2f}x "
            f"| {ratio['epochs_per_hour']:.2f}x | | | | | | | "
            f"| {ratio['uncontended_trials_per_hour']:.2f}x |"
        )
        lines.append("")
        lines.append(
            "B/A (trials/h) per repeat: "
            + ", ".join(f"{r:.2f}x" for r in ratio["per_repeat_trials_per_hour"])
        )
    return "\n".join(lines)


def render(result: dict) -> str:
    settings = result["settings"]
    lines = [
        "# Distributed GAAF search: two workers vs one",
        "",
        f"Generated by `{result['command']}` on a shared {result['cores']}-core "
        "x86 host (TF 2.15 CPU, keras-tuner 1.4.8). GAAF search "
        '(`GeneticSearch(GAAFHyperModel(model="conv1d"))`, objective '
        "`val_accuracy`) on MNIST-1D (`max_samples="
        f"{settings['max_samples']}`, batch 64), {settings['max_trials']} trials, "
        f"population {settings['population']}, {settings['epochs']} epochs per "
        "candidate (early kill below 11 % after one epoch), seed "
        f"{settings['seed']}; every run in fresh processes on 127.0.0.1, "
        f"configurations interleaved, {settings['repeats']} repeat(s), medians. "
        f"Total {result['total_seconds'] / 60:.1f} min; load average "
        f"{result['load_before']} before, {result['load_after']} after.",
        "",
        "Threads (environment of each process): A's worker "
        "`TF_NUM_INTRAOP_THREADS=2 TF_NUM_INTEROP_THREADS=1`; each of B's workers "
        "`1` / `1`; C the same as A's worker; the chief `1` / `1`. TF 2.15 "
        "honours these variables (A's worker has one OS thread more than a B "
        "worker, see the last table; `tf.config.threading.set_intra_op_"
        "parallelism_threads` at the top of a script does the same, but the "
        "variables don't show in `tf.config.threading.get_*`). trials/h = "
        "ended trials / (last `run_trial` end - first `run_trial` start); search "
        "span: first worker's `search()` call to last worker's return. "
        "epochs/h: epochs actually trained (early-killed candidates train one). "
        "CPU s / trial: process CPU inside `run_trial`; main-thread share: the "
        "part of it on the Python main thread (the Keras loop, model building and "
        "tracing), which no intra-op thread can spread over cores. Worker cores: "
        "trial CPU / trial span. Run-queue wait: time the worker's threads were "
        "runnable but had no core (/proc/self/task/*/schedstat). Other work: CPU "
        "used by other processes on the machine during the run, in cores "
        "(/proc/stat minus our processes). Runnable threads per worker: its "
        "threads' (CPU + run-queue wait) / its trials' duration, the average "
        "number that wanted a core (spinning pool threads count). Est. trials/h "
        "without other work: the sum over workers of min(runnable threads, "
        "cores / workers) / (CPU s per trial) x 3600, i.e. each worker keeps the "
        "same CPU per trial and thread overlap but gets its share of the two "
        "cores to itself; an estimate from these runs, not a measurement on an "
        "idle machine.",
        "",
        table(result),
        "",
        "| repeat | config | trials (statuses) | distinct genomes | trials per "
        "worker | epochs | trial span s | trials/h | chief CPU s (search / total) "
        "| worker search CPU s | OS threads | load 1 min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        chief = (
            f"{run['chief_search_cpu_s']:.2f} / {run['chief_total_cpu_s']:.1f}"
            if run["chief_search_cpu_s"] is not None
            else "-"
        )
        threads = ", ".join(f"{k} {v['os_threads']}" for k, v in run["threads"].items())
        load = run["load_1min"]
        load_text = f"{min(load):.1f}-{max(load):.1f}" if load else "-"
        lines.append(
            f"| {run['repeat']} | {run['config']} | {run['trials']} "
            f"({', '.join(f'{k} {v}' for k, v in run['statuses'].items())}) "
            f"| {run['distinct_genomes']} | {run['trials_per_worker']} "
            f"| {run['epochs']} | {run['trial_span_s']:.0f} "
            f"| {run['trials_per_hour']:.1f} | {chief} "
            f"| {run['worker_search_cpu_s']:.0f} | {threads} | {load_text} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
