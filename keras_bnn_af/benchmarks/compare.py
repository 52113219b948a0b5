"""Interleaved A/B latency comparison on one device, with an A-vs-A control.

```python
with SshDevice("pi@raspberrypi.local") as pi:
    result = compare_on_device(pi, "lce_benchmark_model_aarch64",
                               "binarynet.tflite", "binarynet_float32.tflite",
                               threads=4, runs=50, rounds=5)
print(result.ratio.median, result.ratio.low, result.ratio.high)
print(result.control.median)  # the noise floor: 1.0 up to noise
```

Both files (and the binary) are pushed once; then every round runs file A,
file B, file A again, in one session, all with the same flags: so B always
sits between two runs of A, and slow drifts (heat, a background job) hit both
files alike. One of the two A runs is the reference `A`, the other
`A-control`; the reference alternates between rounds:

    round 0: A, B, A-control      round 1: A-control, B, A      ...

Per round the ratio is `B / A` and the control `A-control / A`. Alternating
keeps a position effect (say, the first run of a round running cold) out of
the ratio's median: it lands on both sides of the control instead, widening
its spread, where it shows. So the control's spread is what the ratio's
spread would be if B were A; if the ratio's range overlaps the control's,
the files are not told apart at this number of rounds.

Each run's value is the binary's `avg` over its `runs` timed inferences. A
file's latency is the median of its per-round values; its spread is their
min-max range (with 5 rounds a quartile is an interpolation between two
rounds; min-max shows every round). Ratios are medians of per-round ratios,
with the min-max of those.

A binary file is read (`read_elf`) and checked against the device's facts
(`check_binary`) before anything is pushed: a wrong architecture is a
`DeviceError` naming LCE's release asset; a run that fails with
``GLIBC_2.xx' not found`` becomes `glibc_error`'s error. `cpu_mask` runs the
binary under `taskset` (see `big_core_mask`) and is recorded in the flags.
"""

import os
import statistics
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from keras_bnn_af._files import file_sha256
from keras_bnn_af.benchmarks.devices import (
    Device,
    DeviceError,
    DeviceFacts,
    check_binary,
    glibc_error,
    read_elf,
)
from keras_bnn_af.benchmarks.logs import parse_benchmark_log
from keras_bnn_af.benchmarks.records import BenchmarkRecord

__all__ = [
    "TWIN_COMMAND",
    "TWIN_NAME",
    "Comparison",
    "Spread",
    "big_core_mask",
    "check_taskset",
    "compare_on_device",
    "no_pin_notice",
    "spread",
    "summarize",
]

#: The host twin, run by this Python (what `LocalDevice` runs by default).
TWIN_COMMAND = (sys.executable, "-m", "keras_bnn_af.benchmarks.benchmark_model")
TWIN_NAME = "keras-bnn-af-benchmark-model (host twin)"


@dataclass(frozen=True)
class Spread:
    """The median of per-round values and their min-max range."""

    median: float
    low: float
    high: float
    values: tuple[float, ...]

    def to_json(self) -> dict:
        return {
            "median": self.median,
            "low": self.low,
            "high": self.high,
            "values": list(self.values),
        }


def spread(values: Sequence[float]) -> Spread:
    """`Spread` of `values` (at least one)."""
    if not values:
        raise ValueError("spread of no values")
    values = tuple(float(value) for value in values)
    return Spread(statistics.median(values), min(values), max(values), values)


@dataclass(frozen=True)
class Comparison:
    """What `compare_on_device` measured (times in ms, per-round values).

    # Attributes
        a, b: per-file median and min-max of the per-round `avg` (B `None`
            without a second file).
        a_control: the same for the A-control runs (`None` without B).
        ratio: per-round `B / A`; `None` without B.
        control: per-round `A-control / A`; `None` without B.
        records: every run, in the order run.
        warnings: `check_binary`'s warnings about the binary on this device.
    """

    device: DeviceFacts
    threads: int
    runs: int
    rounds: int
    a_name: str
    b_name: str | None
    a: Spread
    b: Spread | None
    a_control: Spread | None
    ratio: Spread | None
    control: Spread | None
    records: tuple[BenchmarkRecord, ...]
    warnings: tuple[str, ...] = ()


def big_core_mask(facts: DeviceFacts) -> str | None:
    """The `taskset` mask (hex, no `0x`) of the probed big cores: the CPUs with
    the highest `cpuinfo_max_freq`. `None` when the max frequencies are all
    equal or unreadable (nothing to pin to; see `no_pin_notice`)."""
    if not facts.big_cores:
        return None
    return format(sum(1 << cpu for cpu in facts.big_cores), "x")


def no_pin_notice(facts: DeviceFacts) -> str:
    """Why `--pin-big-cores` does not pin on this device."""
    freqs = set(facts.max_freq_khz.values())
    if not facts.max_freq_khz:
        why = (
            "no per-CPU max frequency is readable there "
            "(/sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq), so its cores "
            "count as equal"
        )
    elif len(freqs) == 1:
        why = (
            f"all {len(facts.max_freq_khz)} cores have the same max frequency "
            f"({freqs.pop()} kHz)"
        )
    else:  # facts made by hand, without big_cores
        why = "the probe named no big cores"
    return f"--pin-big-cores: not pinning on {facts.device}: {why}."


def check_taskset(device: Device) -> None:
    """Raises a `DeviceError` (with the fix) when the device has no `taskset`."""
    completed = device.shell.run(
        ["sh", "-c", "command -v taskset >/dev/null 2>&1"], timeout=60
    )
    if completed.returncode != 0:
        raise DeviceError(
            f"--pin-big-cores needs `taskset` on {device.name}, and it has none.",
            "`taskset` on the device's PATH (util-linux on Linux, toybox on Android).",
            "install it (`sudo apt install util-linux` on Raspberry Pi OS / "
            "Debian), or drop --pin-big-cores.",
        )


def compare_on_device(
    device: Device,
    binary: str | os.PathLike | Sequence[str],
    a: str | os.PathLike,
    b: str | os.PathLike | None = None,
    *,
    threads: int,
    runs: int,
    rounds: int = 5,
    warmup: int = 1,
    extra_flags: Sequence[str] = (),
    timeout: float = 600,
    facts: DeviceFacts | None = None,
    binary_name: str | None = None,
    progress: Callable[[str], None] | None = None,
    cpu_mask: str | None = None,
    warn: Callable[[str], None] | None = None,
) -> Comparison:
    """Runs A, B, A-control for `rounds` rounds on `device` (see the module doc).

    # Arguments
        device: an open `Device` (the caller cleans it up).
        binary: a local binary file to push (`lce_benchmark_model_aarch64`),
            or a command already on the device (a list, e.g. `TWIN_COMMAND`).
        a, b: local `.tflite` files; without `b`, A alone runs `rounds` times.
        threads, runs, warmup, extra_flags, timeout: see `Device.run_benchmark`.
        facts: the device's facts if already probed; probed otherwise.
        binary_name: the name recorded for a command binary.
        progress: called with a line before every run.
        cpu_mask: run the binary under `taskset CPU_MASK` (hex, see
            `big_core_mask`); recorded in the flags as `taskset=0x<mask>`.
        warn: called with each of `check_binary`'s warnings (also returned in
            `Comparison.warnings`).

    # Raises
        DeviceError: a binary file that is not an ELF executable for the
            device (`check_binary`: checked before anything is pushed), a run
            that failed (a `GLIBC_2.xx not found` log becomes `glibc_error`'s
            error), no `taskset` on the device with `cpu_mask`.
    """
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(
            f"compare_on_device got rounds={rounds!r}; expected a positive integer. "
            "Pass e.g. rounds=5 (each round runs A, B and A again)."
        )
    if cpu_mask is not None and not (
        cpu_mask and all(c in "0123456789abcdefABCDEF" for c in cpu_mask)
    ):
        raise ValueError(
            f"compare_on_device got cpu_mask={cpu_mask!r}; expected a hex CPU mask "
            "such as f0 (CPUs 4-7). Pass such a mask (e.g. from big_core_mask), "
            "or None to run unpinned."
        )
    facts = facts or device.probe()
    elf = None
    warnings: list[str] = []
    is_file = isinstance(binary, str | os.PathLike)
    if is_file:
        binary_path = Path(binary)
        if _is_script(binary_path):
            warnings = [_script_warning(binary_path)]
        else:
            elf = read_elf(binary_path)
            warnings = check_binary(elf, facts)  # raises before anything is pushed
        for warning in warnings:
            if warn:
                warn(warning)
    if cpu_mask is not None:
        check_taskset(device)
    if is_file:
        remote_binary: str | list[str] = device.push_binary(binary_path).path
        name, binary_sha = binary_path.name, file_sha256(binary_path)
    else:
        remote_binary = list(binary)
        name, binary_sha = binary_name or TWIN_NAME, None
    command = remote_binary if isinstance(remote_binary, list) else [remote_binary]
    if cpu_mask is not None:
        command = ["taskset", cpu_mask, *command]
    files = {"A": Path(a)}
    if b is not None:
        files["B"] = Path(b)
    remote = {role: device.push_model(path).path for role, path in files.items()}
    digests = {role: file_sha256(path) for role, path in files.items()}
    orders = (
        (("A", "B", "A-control"), ("A-control", "B", "A"))
        if b is not None
        else (("A",),)
    )
    flags = [
        f"--num_threads={threads}",
        f"--num_runs={runs}",
        f"--warmup_runs={warmup}",
        *extra_flags,
        *([f"taskset=0x{cpu_mask}"] if cpu_mask is not None else []),
    ]
    session = uuid.uuid4().hex[:12]
    records: list[BenchmarkRecord] = []
    for round_ in range(rounds):
        for role in orders[round_ % len(orders)]:
            file_role = "B" if role == "B" else "A"
            path = files[file_role]
            if progress:
                progress(
                    f"round {round_ + 1}/{rounds}: {role} {path.name}, "
                    f"{threads} thread(s), {runs} runs"
                )
            try:
                raw = device.run_benchmark(
                    command,
                    remote[file_role],
                    threads=threads,
                    runs=runs,
                    warmup=warmup,
                    extra_flags=extra_flags,
                    timeout=timeout,
                )
            except DeviceError as error:
                # The run's log tail is in the message.
                clearer = elf and glibc_error(str(error), elf, facts)
                if clearer:
                    raise clearer from error
                raise
            records.append(
                BenchmarkRecord.from_log(
                    parse_benchmark_log(raw),
                    raw,
                    device=facts.to_json(),
                    model_name=path.stem,
                    model_path=str(path),
                    model_sha256=digests[file_role],
                    binary_name=name,
                    binary_sha256=binary_sha,
                    flags=flags,
                    threads=threads,
                    runs=runs,
                    warmup=warmup,
                    role=role if b is not None else None,
                    session=session,
                    round=round_,
                    index=len(records),
                    warnings=tuple(warnings),
                )
            )
    summary = summarize(records, facts=facts, threads=threads, runs=runs, rounds=rounds)
    return replace(summary, warnings=tuple(warnings))


def summarize(
    records: Sequence[BenchmarkRecord],
    *,
    facts: DeviceFacts,
    threads: int,
    runs: int,
    rounds: int,
) -> Comparison:
    """The `Comparison` of one session's records (roles A, B, A-control)."""
    by_role: dict[str | None, dict[int, float]] = {}
    for record in records:
        by_role.setdefault(record.role, {})[record.round] = record.avg_ms
    names = {record.role: record.model_name for record in records}
    if "B" not in by_role:  # a single file: role None
        (values,) = by_role.values()
        (a_name,) = names.values()
        return Comparison(
            device=facts,
            threads=threads,
            runs=runs,
            rounds=rounds,
            a_name=a_name,
            b_name=None,
            a=spread(list(values.values())),
            b=None,
            a_control=None,
            ratio=None,
            control=None,
            records=tuple(records),
        )
    a, b, c = by_role["A"], by_role["B"], by_role["A-control"]
    common = sorted(set(a) & set(b) & set(c))
    return Comparison(
        device=facts,
        threads=threads,
        runs=runs,
        rounds=rounds,
        a_name=names["A"],
        b_name=names["B"],
        a=spread([a[r] for r in common]),
        b=spread([b[r] for r in common]),
        a_control=spread([c[r] for r in common]),
        ratio=spread([b[r] / a[r] for r in common]),
        control=spread([c[r] / a[r] for r in common]),
        records=tuple(records),
    )


def _is_script(path: Path) -> bool:
    """Whether `path` starts with a `#!` line (e.g. the host twin's console script)."""
    try:
        with path.open("rb") as file:
            return file.read(2) == b"#!"
    except OSError:
        return False  # read_elf names the problem


def _script_warning(path: Path) -> str:
    return (
        f"{path} is a script, not LCE's lce_benchmark_model: it is pushed and run as "
        "it is, without the architecture and glibc checks. That is right for "
        "keras-bnn-af-benchmark-model (the host twin) on a device where its "
        "interpreter exists; for a device's figures use LCE's release binary."
    )
