"""Markdown tables and plots of benchmark records (`keras-bnn-af report`).

```python
records = read_records("bench.jsonl")
write_report(records, "bench-report")  # report.md, latency.png, threads.png
```

One table per device: model x threads, the median and min-max over runs of each
run's average latency, the ratio to the model's float32 twin (a model named
`<name>_float32` on the same device and threads), and each `--compare`
session's B/A ratio and A-vs-A control. x86 devices carry `X86_NOTE`.
"""

import os
from collections.abc import Sequence
from pathlib import Path

from keras_bnn_af.benchmarks.compare import Comparison, Spread, spread, summarize
from keras_bnn_af.benchmarks.devices import DeviceFacts
from keras_bnn_af.benchmarks.records import BenchmarkRecord

#: A model whose name is another's plus this suffix is its float32 twin.
FLOAT_TWIN_SUFFIX = "_float32"
REPORT_FILE = "report.md"
LATENCY_PLOT = "latency.png"
THREADS_PLOT = "threads.png"
_X86 = ("x86_64", "amd64", "i386", "i686")
X86_NOTE = (
    "x86 host latency ranks models on this host only: LCE has optimized binary "
    "kernels only for 32/64-bit ARM, so benchmark on the target device to rank "
    "models for it."
)


def is_x86(facts: dict) -> bool:
    return (facts.get("arch") or "").lower() in _X86


def device_label(facts: dict) -> str:
    """`name (arch, cpu, os)` from a record's device facts."""
    details = [
        facts.get(key)
        for key in ("arch", "board", "cpu_model", "os_name")
        if facts.get(key)
    ]
    return (
        f"{facts.get('device')} ({', '.join(details)})"
        if details
        else str(facts.get("device"))
    )


def report_markdown(records: Sequence[BenchmarkRecord]) -> str:
    """The markdown report of results-file records (see `write_report`)."""
    lines = [
        "# Benchmark report",
        "",
        f"{len(records)} runs. Per model and threads: the median and the min-max of "
        "the runs' average latency (each run's `avg` over its timed inferences; "
        "A-control runs count as runs of model A). `ratio` is the model's median "
        f"over its float32 twin's (the model named `<name>{FLOAT_TWIN_SUFFIX}`) on "
        "the same device and threads, where that twin was benchmarked. Comparison "
        "sessions (`bench --compare`) are listed below each table with their "
        "per-round B/A ratio and A-vs-A control.",
    ]
    for group in _by_device(records).values():
        facts = group[0].device
        lines += ["", f"## {device_label(facts)}", ""]
        if is_x86(facts):
            lines += [f"Note: {X86_NOTE}", ""]
        lines += [
            "| model | threads | runs | median ms | min-max ms "
            "| ratio to float32 twin |"
        ]
        lines += ["|---|---|---|---|---|---|"]
        cells = _cells(group)
        for (model, threads), cell in sorted(cells.items()):
            twin = cells.get((model + FLOAT_TWIN_SUFFIX, threads))
            ratio = f"{cell.median / twin.median:.3f}" if twin else "-"
            lines.append(
                f"| {model} | {threads} | {len(cell.values)} | {cell.median:.3f} | "
                f"{cell.low:.3f}-{cell.high:.3f} | {ratio} |"
            )
        sessions = _sessions(group)
        if sessions:
            lines += [
                "",
                "| session | threads | A | B | rounds | B/A median (min-max) | "
                "A-control/A median (min-max) |",
                "|---|---|---|---|---|---|---|",
            ]
            for session, comparison in sessions.items():
                ratio, control = comparison.ratio, comparison.control
                lines.append(
                    f"| {session} | {comparison.threads} | {comparison.a_name} | "
                    f"{comparison.b_name} | {len(ratio.values)} | "
                    f"{ratio.median:.3f} ({ratio.low:.3f}-{ratio.high:.3f}) | "
                    f"{control.median:.3f} ({control.low:.3f}-{control.high:.3f}) |"
                )
    lines += ["", f"![latency per model]({LATENCY_PLOT})", ""]
    lines += [f"![threads scaling]({THREADS_PLOT})", ""]
    return "\n".join(lines)


def write_report(
    records: Sequence[BenchmarkRecord], out: str | os.PathLike
) -> list[Path]:
    """Writes `report.md`, `latency.png` and `threads.png` into the folder `out`
    (created with its parents); the caller checks for an existing report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_bnn_af._files import write_atomic

    if not records:
        raise ValueError(
            "The results file has no records. Expected: runs appended by "
            "`keras-bnn-af bench --results`. Fix: run bench with --results first."
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    devices = _by_device(records)
    written = []
    figure, axes = plt.subplots(
        len(devices), 1, figsize=(8, 3.5 * len(devices)), squeeze=False
    )
    for axis, group in zip(axes[:, 0], devices.values(), strict=True):
        cells = _cells(group)
        models = sorted({model for model, _ in cells})
        threads = sorted({t for _, t in cells})
        width = 0.8 / len(threads)
        for i, count in enumerate(threads):
            xs, heights, errors = [], [], [[], []]
            for j, model in enumerate(models):
                if (cell := cells.get((model, count))) is None:
                    continue
                xs.append(j + (i - (len(threads) - 1) / 2) * width)
                heights.append(cell.median)
                errors[0].append(cell.median - cell.low)
                errors[1].append(cell.high - cell.median)
            axis.bar(xs, heights, width, yerr=errors, capsize=3, label=f"{count} thr")
        axis.set_xticks(range(len(models)), models, rotation=20, ha="right")
        axis.set_ylabel("median latency (ms)")
        axis.set_title(device_label(group[0].device), fontsize=9)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / LATENCY_PLOT, dpi=100)
    plt.close(figure)
    written.append(out / LATENCY_PLOT)

    figure, axes = plt.subplots(
        len(devices), 1, figsize=(6, 3.5 * len(devices)), squeeze=False
    )
    for axis, group in zip(axes[:, 0], devices.values(), strict=True):
        cells = _cells(group)
        for model in sorted({model for model, _ in cells}):
            points = sorted((t, c) for (m, t), c in cells.items() if m == model)
            axis.errorbar(
                [t for t, _ in points],
                [c.median for _, c in points],
                yerr=[
                    [c.median - c.low for _, c in points],
                    [c.high - c.median for _, c in points],
                ],
                marker="o",
                capsize=3,
                label=model,
            )
        axis.set_xlabel("threads")
        axis.set_ylabel("median latency (ms)")
        axis.set_title(device_label(group[0].device), fontsize=9)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / THREADS_PLOT, dpi=100)
    plt.close(figure)
    written.append(out / THREADS_PLOT)
    write_atomic(out / REPORT_FILE, report_markdown(records))
    return [out / REPORT_FILE, *written]


def _by_device(records: Sequence[BenchmarkRecord]) -> dict[str, list[BenchmarkRecord]]:
    groups: dict[str, list[BenchmarkRecord]] = {}
    for record in records:
        groups.setdefault(device_label(record.device), []).append(record)
    return groups


def _cells(records: Sequence[BenchmarkRecord]) -> dict[tuple[str, int], Spread]:
    values: dict[tuple[str, int], list[float]] = {}
    for record in records:
        values.setdefault((record.model_name, record.threads), []).append(record.avg_ms)
    return {key: spread(group) for key, group in values.items()}


def _sessions(records: Sequence[BenchmarkRecord]) -> dict[str, Comparison]:
    """Comparison sessions (records with roles A, B and A-control)."""
    grouped: dict[str, list[BenchmarkRecord]] = {}
    for record in records:
        if record.session and record.role in ("A", "B", "A-control"):
            grouped.setdefault(record.session, []).append(record)
    result = {}
    for session, group in grouped.items():
        if {r.role for r in group} != {"A", "B", "A-control"}:
            continue
        first = group[0]
        result[session] = summarize(
            group,
            facts=DeviceFacts(device=first.device.get("device", "?")),
            threads=first.threads,
            runs=first.runs,
            rounds=len({r.round for r in group}),
        )
    return result
