"""Benchmark records: one JSON line per benchmark run, in an append-only file.

```python
append_records("bench.jsonl", comparison.records)
records = read_records("bench.jsonl")
```

A results file is JSON lines: every line one JSON object (a
`BenchmarkRecord.to_json()`). It is only ever appended to: opened in append
mode, one `write` per line, never truncated or rewritten. Before appending,
an existing file is read and must already be JSON lines; otherwise nothing is
written and a `ResultsFileError` (a `ValueError`) names the file and the first
bad line, with what was expected and how to fix it.
"""

import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from keras_bnn_af.benchmarks.logs import BenchmarkLog

__all__ = [
    "ROLES",
    "BenchmarkRecord",
    "ResultsFileError",
    "append_records",
    "check_results_file",
    "read_records",
    "utc_now",
]

#: `A` and `B` of `--compare`; `A-control` is A run again after B.
ROLES = ("A", "B", "A-control")
SCHEMA = 1


class ResultsFileError(ValueError):
    """A results file that is not JSON lines (what / expected / fix)."""


def utc_now() -> str:
    """The time now in UTC, ISO 8601 with seconds (`2024-05-01T12:00:00+00:00`)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class BenchmarkRecord:
    """One run of the benchmark binary (or its host twin) on one model.

    # Attributes
        time: when the run finished, UTC, ISO 8601.
        device: `DeviceFacts.to_json()` of the device it ran on.
        model_name: the model file's stem (`binarynet`, `binarynet_float32`).
        model_path: the model file as given on this machine.
        model_sha256: the model file's sha256.
        binary_name: the binary's file name, or the host twin's name.
        binary_sha256: the binary's sha256; `None` for the host twin.
        flags: every flag passed to the binary (`--graph` excepted).
        threads, runs, warmup: `--num_threads`, `--num_runs`, `--warmup_runs`.
        avg_ms, std_ms, min_ms, count: the timed phase.
        first_ms, warmup_avg_ms, init_ms: the log's summary, `None` if absent.
        memory_mb: the memory footprint's `overall`, `None` if absent.
        role: `A`, `B` or `A-control` within a comparison; `None` otherwise.
        session: the id shared by the records of one comparison.
        round: the round of the comparison (0-based).
        index: the run's position in its session (0-based).
        log: the binary's raw log (stdout and stderr).
        warnings: what `check_binary` warned about this binary on this device
            (a 32-bit OS on a 64-bit CPU, a script instead of LCE's binary).
    """

    time: str
    device: dict
    model_name: str
    model_path: str
    model_sha256: str
    binary_name: str
    binary_sha256: str | None
    flags: list[str]
    threads: int
    runs: int
    warmup: int
    avg_ms: float
    std_ms: float
    min_ms: float
    count: int
    first_ms: float | None
    warmup_avg_ms: float | None
    init_ms: float | None
    memory_mb: float | None
    role: str | None
    session: str | None
    round: int | None
    index: int | None
    log: str
    warnings: tuple[str, ...] = ()
    schema: int = SCHEMA

    @classmethod
    def from_log(cls, log: BenchmarkLog, raw_log: str, **given) -> "BenchmarkRecord":
        """A record from a parsed log; `given` has the rest (`time`: now)."""
        given.setdefault("time", utc_now())
        return cls(
            avg_ms=log.inference_avg_ms,
            std_ms=log.inference_std_ms,
            min_ms=log.inference_min_ms,
            count=log.count,
            first_ms=log.first_ms,
            warmup_avg_ms=log.warmup_avg_ms,
            init_ms=log.init_ms,
            memory_mb=log.memory_overall_mb,
            log=raw_log,
            **given,
        )

    def to_json(self) -> dict:
        data = asdict(self)
        data["flags"] = list(self.flags)
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "BenchmarkRecord":
        """The record of `to_json()`'s dict; keys it does not know are ignored."""
        names = [field.name for field in fields(cls)]
        optional = {"schema", "warnings"}  # records written before `warnings`
        missing = [name for name in names if name not in optional | set(data)]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        given = {name: data[name] for name in names if name in data}
        given["warnings"] = tuple(given.get("warnings", ()))
        return cls(**given)


def append_records(
    path: str | os.PathLike, records: list[BenchmarkRecord] | tuple
) -> Path:
    """Appends `records` to `path` as JSON lines; creates the file if missing.

    # Raises
        ResultsFileError: `path` exists and is not JSON lines; it is left
            untouched.
    """
    path = Path(path)
    lines = [json.dumps(record.to_json(), sort_keys=True) + "\n" for record in records]
    # Serialize everything before touching the file, and check what is there.
    ends_with_newline = _check_json_lines(path)
    with path.open("a", encoding="utf-8") as file:
        if not ends_with_newline:
            file.write("\n")  # the last line had no newline: end it, still appending
        for line in lines:
            file.write(line)
    return path


def read_records(path: str | os.PathLike) -> list[BenchmarkRecord]:
    """The records of a results file, in file order.

    # Raises
        ResultsFileError: the file is missing, not JSON lines, or a line is
            not a record; the message names the line.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(
            f"Results file {str(path)!r} does not exist. Expected: a JSON-lines file "
            "written by `keras-bnn-af bench --results`. Fix: check the path."
        )
    _check_json_lines(path)
    records = []
    for number, line in enumerate(_lines(path.read_text(encoding="utf-8")), 1):
        try:
            records.append(BenchmarkRecord.from_json(json.loads(line)))
        except (TypeError, ValueError) as error:
            raise ResultsFileError(
                f"Line {number} of {str(path)!r} is not a benchmark record ({error}). "
                "Expected: every line a record written by `keras-bnn-af bench "
                "--results`. Fix: remove that line, or pass the right file."
            ) from None
    return records


def check_results_file(path: str | os.PathLike) -> None:
    """Refuses (`ResultsFileError`) an existing `path` that is not JSON lines."""
    _check_json_lines(Path(path))


def _check_json_lines(path: Path) -> bool:
    """Refuses a file that is not JSON lines; whether it ends with a newline
    (`True` for a missing or empty file)."""
    if not path.exists():
        return True
    if not path.is_file():
        raise ResultsFileError(
            f"Results file {str(path)!r} is not a regular file. Expected: a JSON-lines "
            "file (one JSON object a line). Fix: pass a file path."
        )
    content = path.read_bytes()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ResultsFileError(
            f"Results file {str(path)!r} is not UTF-8 text (byte {error.start}). "
            "Expected: a JSON-lines file (one JSON object a line). Fix: pass another "
            "--results file; this one was left untouched."
        ) from None
    for number, line in enumerate(_lines(text), 1):
        problem = None
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            problem = f"it does not parse as JSON ({error.msg})"
        else:
            if not isinstance(value, dict):
                problem = f"it is a JSON {type(value).__name__}, not an object"
        if problem:
            raise ResultsFileError(
                f"Line {number} of results file {str(path)!r} is not a JSON object: "
                f"{problem}. Expected: a JSON-lines file (one JSON object a line), "
                "which results are only appended to. Fix: pass another --results "
                "file; this one was left untouched."
            )
    return not content or content.endswith(b"\n")


def _lines(text: str) -> list[str]:
    """Lines split on `\\n` only (JSON strings may hold other line separators)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines
