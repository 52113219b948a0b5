"""Reading (and writing) the output of LCE's `lce_benchmark_model`.

```python
log = parse_benchmark_log(ssh_output)  # stdout and stderr, mixed
log.inference_avg_ms, log.count, log.ops[:3]
```

`lce_benchmark_model` is TFLite's `benchmark_model` with LCE's operators, so
it prints TFLite's log, with or without an `INFO: ` (`ERROR: `, ...) prefix
on every line depending on the TFLite version:

- per phase (a warm-up, then the timed runs) an optional
  `Running benchmark for at least N iterations ...` line, then
  `count=N first=US curr=US min=US max=US avg=US std=US` (only
  `count=1 curr=US` for a single run; newer builds append `p5= median= p95=`);
- `Inference timings in us: Init: US, First inference: US, Warmup (avg): US,
  Inference (avg): US`;
- `Memory footprint delta from the start of the tool (MB): init=X overall=Y`
  (older builds: `Peak memory footprint (MB): ...`);
- with `--enable_op_profiling=true`, after everything above, a
  `Profiling Info for Benchmark Initialization:` section and an
  `Operator-wise Profiling Info for Regular Benchmark Runs:` one, each of
  `=====`-framed tables; the latter's `Run Order` table gives `ops`.

Times in the log are microseconds; every `*_ms` field is `us / 1000`, rounded
to the nanosecond (6 decimals). The timed phase is the `count=` line after the
last `Running benchmark` line when those lines are present (there must be
two: warm-up and timed); without them it is the last `count=` line, provided
a warm-up line precedes it or the `Inference timings` summary follows it.
`count=` lines inside the profiling sections (`Timings (microseconds): ...`)
are never read as phases. A log without a timed phase (a crash, a missing
model) is a `ValueError` quoting the log's last lines.

`format_benchmark_log` writes the phases and summary in the same format from
measured times: the host twin (`keras-bnn-af-benchmark-model`) prints with it.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["BenchmarkLog", "OpTiming", "format_benchmark_log", "parse_benchmark_log"]

#: Lines of a failed log quoted in the error.
QUOTED_LINES = 8
US_PER_MS = 1000.0
PROFILE_INIT = "Profiling Info for Benchmark Initialization:"
PROFILE_RUNS = "Operator-wise Profiling Info for Regular Benchmark Runs:"

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PREFIX = re.compile(r"^(?:INFO|WARNING|ERROR|VERBOSE|DEBUG):\s?")
_STATS = re.compile(rf"^count=(\d+)((?:\s+\w+={_NUMBER})*)\s*$")
_PAIR = re.compile(rf"(\w+)=({_NUMBER})")
_PHASE = re.compile(r"^Running benchmark for at least \d+ iterations")
_SUMMARY = re.compile(r"(?:^|\s)[Ii]nference timings in us:(.*)$")
_SUMMARY_PAIR = re.compile(rf"([A-Za-z][A-Za-z ()]*?):\s*({_NUMBER})")
_MEMORY = re.compile(
    r"(?:Memory footprint delta from the start of the tool|Peak memory footprint)"
    rf" \(MB\): init=({_NUMBER}) overall=({_NUMBER})"
)
_COLUMN = re.compile(r"\[([^\]]+)\]")


@dataclass(frozen=True)
class OpTiming:
    """One row of the op profile's "Run Order" table (one node of the graph)."""

    node_type: str
    name: str
    avg_ms: float
    percent: float
    times_called: int


@dataclass(frozen=True)
class BenchmarkLog:
    """The numbers of one `lce_benchmark_model` run, in milliseconds.

    `count`, `inference_avg_ms`, `inference_std_ms` and `inference_min_ms`
    are the timed phase's `count`, `avg`, `std` and `min` (a single run has
    `std` 0 and `avg = min = curr`). `init_ms`, `first_ms` and
    `warmup_avg_ms` come from the `Inference timings` summary (`first_ms`
    and `warmup_avg_ms` fall back to the warm-up phase's line), each `None`
    when the log has neither. `memory_overall_mb` is the footprint line's
    `overall`, `None` when absent. `ops` is the op profile in run order, empty
    without `--enable_op_profiling=true`.
    """

    count: int
    inference_avg_ms: float
    inference_std_ms: float
    inference_min_ms: float
    init_ms: float | None = None
    first_ms: float | None = None
    warmup_avg_ms: float | None = None
    memory_overall_mb: float | None = None
    ops: tuple[OpTiming, ...] = ()

    def to_json(self) -> dict:
        data = asdict(self)
        data["ops"] = [asdict(op) for op in self.ops]
        return data


def parse_benchmark_log(text: str) -> BenchmarkLog:
    """The timings of a `lce_benchmark_model` (or TFLite `benchmark_model`) log.

    # Arguments
        text: the tool's stdout and stderr, in any interleaving, with or
            without `INFO: ` prefixes.

    # Raises
        ValueError: the log has no timed phase (see the module docstring).
    """
    lines = [_clean(line) for line in text.splitlines()]
    main, profile = _split_profile(lines)
    warmup, timed = _phases(main)
    if timed is None:
        raise ValueError(_no_timed_phase(text))
    summary = _summary(main)
    memory = _memory(main)
    return BenchmarkLog(
        count=int(timed["count"]),
        inference_avg_ms=_ms(timed["avg"]),
        inference_std_ms=_ms(timed["std"]),
        inference_min_ms=_ms(timed["min"]),
        init_ms=_ms(summary.get("Init")),
        first_ms=_ms(summary.get("First inference", warmup.get("first"))),
        warmup_avg_ms=_ms(summary.get("Warmup", warmup.get("avg"))),
        memory_overall_mb=memory,
        ops=_run_order(profile),
    )


def format_benchmark_log(
    warmup_us: Sequence[float],
    timed_us: Sequence[float],
    *,
    init_us: float,
    warmup_runs: int | None = None,
    num_runs: int | None = None,
    min_secs: float = 0.0,
    max_secs: float = 150.0,
    memory_mb: tuple[float, float] | None = None,
    prefix: str = "INFO: ",
) -> str:
    """The phase lines, timings summary and memory line for measured times.

    The inverse of `parse_benchmark_log` (to the microsecond). As in TFLite,
    times are whole microseconds except the averages (6 significant digits),
    and `std` is the population standard deviation, truncated:
    `std = floor(sqrt(mean(t^2) - mean(t)^2))`.

    # Arguments
        warmup_us, timed_us: the duration of each warm-up and timed run (us).
        init_us: interpreter construction time (us).
        warmup_runs, num_runs: the requested minimum numbers of runs, shown in
            the `Running benchmark for at least N iterations` lines (default:
            the number of times given).
        min_secs, max_secs: the time bounds shown in those lines.
        memory_mb: `(init, overall)` for the footprint line, or `None`.
        prefix: put before every non-blank line (`""` for the older, bare
            format).
    """
    if not warmup_us or not timed_us:
        raise ValueError(
            f"format_benchmark_log got {len(warmup_us)} warm-up and "
            f"{len(timed_us)} timed runs; it needs at least one of each. "
            "Pass the measured durations of both phases, in microseconds."
        )
    lines = []
    for runs, times in ((warmup_runs, warmup_us), (num_runs, timed_us)):
        lines += [
            f"Running benchmark for at least {runs or len(times)} iterations and "
            f"at least {min_secs:g} seconds but terminate if exceeding "
            f"{max_secs:g} seconds.",
            _stats_line(times),
            "",
        ]
    lines.append(
        f"Inference timings in us: Init: {round(init_us)}, First inference: "
        f"{round(warmup_us[0])}, Warmup (avg): {_mean(warmup_us):.6g}, "
        f"Inference (avg): {_mean(timed_us):.6g}"
    )
    if memory_mb is not None:
        lines.append(
            "Memory footprint delta from the start of the tool (MB): "
            f"init={memory_mb[0]:.6g} overall={memory_mb[1]:.6g}"
        )
    return "\n".join(prefix + line if line else "" for line in lines) + "\n"


def _clean(line: str) -> str:
    return _PREFIX.sub("", line.strip()).strip()


def _split_profile(lines: list[str]) -> tuple[list[str], list[str]]:
    """Lines before the first profiling section, and the sections themselves."""
    for index, line in enumerate(lines):
        if line in (PROFILE_INIT, PROFILE_RUNS):
            return lines[:index], lines[index:]
    return lines, []


def _phases(lines: list[str]) -> tuple[dict, dict | None]:
    """The warm-up phase's statistics ({} if unknown) and the timed one's."""
    markers = [i for i, line in enumerate(lines) if _PHASE.match(line)]
    stats = [(i, s) for i, line in enumerate(lines) if (s := _stats(line))]
    if markers:
        bounds = [*markers, len(lines)]
        phases = [
            [s for i, s in stats if start < i < end]
            for start, end in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        warmup = phases[0][-1] if phases[0] else {}
        timed = phases[-1][-1] if len(phases) > 1 and phases[-1] else None
        return warmup, timed
    if not stats:
        return {}, None
    summarized = any(_SUMMARY.search(line) for line in lines[stats[-1][0] :])
    if len(stats) == 1 and not summarized:
        return stats[0][1], None
    return (stats[-2][1] if len(stats) > 1 else {}), stats[-1][1]


def _stats(line: str) -> dict[str, float] | None:
    """`count=... avg=...` as numbers; a single run's `curr` fills the rest."""
    match = _STATS.match(line)
    if match is None:
        return None
    values = {key: float(value) for key, value in _PAIR.findall(line)}
    if values["count"] <= 1 and "curr" in values:
        curr = values["curr"]
        for key, default in (("first", curr), ("min", curr), ("avg", curr)):
            values.setdefault(key, default)
        values.setdefault("std", 0.0)
    return values if {"avg", "std", "min"} <= set(values) else None


def _summary(lines: list[str]) -> dict[str, float]:
    """`Inference timings in us: Init: ...` as {"Init": us, "Warmup": us, ...}."""
    for line in reversed(lines):
        if match := _SUMMARY.search(line):
            pairs = _SUMMARY_PAIR.findall(match.group(1))
            return {key.replace(" (avg)", ""): float(us) for key, us in pairs}
    return {}


def _memory(lines: list[str]) -> float | None:
    for line in reversed(lines):
        if match := _MEMORY.search(line):
            return float(match.group(2))
    return None


def _run_order(lines: list[str]) -> tuple[OpTiming, ...]:
    """The regular runs' "Run Order" table (not the initialization's)."""
    if PROFILE_RUNS not in lines:
        return ()
    lines = lines[lines.index(PROFILE_RUNS) + 1 :]
    starts = [
        i
        for i, line in enumerate(lines)
        if line.startswith("=") and "Run Order" in line
    ]
    if not starts or starts[0] + 1 >= len(lines):
        return ()
    columns = [name.lower() for name in _COLUMN.findall(lines[starts[0] + 1])]
    ops = []
    for line in lines[starts[0] + 2 :]:
        if not line or line.startswith("="):
            break
        ops.append(_op(columns, line))
    return tuple(ops)


def _op(columns: list[str], line: str) -> OpTiming:
    """One table row: node type, one number per middle column, then the name."""
    numbers = len(columns) - 2
    match = re.match(
        rf"^(?P<type>.+?)\s+(?P<numbers>{_NUMBER}%?(?:\s+{_NUMBER}%?){{{numbers - 1}}})"
        r"\s+(?P<name>\S.*)$",
        line,
    )
    needed = {"avg ms", "%", "times called"}
    if match is None or columns[:1] != ["node type"] or not needed <= set(columns):
        raise ValueError(
            f"Could not read the op-profile row {line!r} under the columns "
            f"{columns!r}. Expected TFLite's Run Order layout: `[node type]`, then "
            f"numeric columns including {sorted(needed)}, then `[Name]`. Check that "
            "the log is complete and unedited (one table row per line)."
        )
    row = dict(zip(columns[1:-1], match["numbers"].split(), strict=True))
    return OpTiming(
        node_type=match["type"],
        name=match["name"],
        avg_ms=float(row["avg ms"]),
        percent=float(row["%"].rstrip("%")),
        times_called=int(float(row["times called"])),
    )


def _no_timed_phase(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    tail = lines[-QUOTED_LINES:]
    quoted = "\n".join(f"    {line}" for line in tail) if tail else "    (empty)"
    return (
        "The benchmark log has no timed phase: no `count=N ... avg=US std=US` line "
        "after the warm-up one. Its last lines:\n"
        f"{quoted}\n"
        "Expected the output of a completed `lce_benchmark_model` run (a warm-up "
        "and a timed `count=` line, then `Inference timings in us: ...`). Check "
        "that --graph names a model that exists where the binary runs, that the "
        "binary did not crash (its exit status), and that both stdout and stderr "
        "were captured (`2>&1`)."
    )


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / US_PER_MS, 6)


def _mean(values: Sequence[float]) -> float:
    return sum(round(v) for v in values) / len(values)


def _stats_line(times_us: Sequence[float]) -> str:
    """TFLite's `Stat::OutputToStream` for whole-microsecond times."""
    times = [round(t) for t in times_us]
    if len(times) == 1:
        return f"count=1 curr={times[0]}"
    mean = _mean(times)
    variance = max(sum(t * t for t in times) / len(times) - mean * mean, 0.0)
    return (
        f"count={len(times)} first={times[0]} curr={times[-1]} min={min(times)} "
        f"max={max(times)} avg={mean:.6g} std={math.floor(math.sqrt(variance))}"
    )
