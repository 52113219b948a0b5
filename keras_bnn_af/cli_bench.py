"""The `keras-bnn-af bench` and `report` commands: latency on this host or a device.

```
keras-bnn-af bench m.tflite                          # this host, fastest kernels
keras-bnn-af bench m.tflite --device ssh://pi@raspberrypi.local --threads 1,4 \\
    --compare m_float32.tflite --results bench.jsonl
keras-bnn-af report bench.jsonl --out bench-report
```
"""

import argparse
import re
import sys
from pathlib import Path

from keras_bnn_af._cli_options import (
    positive_float,
    positive_int,
)
from keras_bnn_af._files import check_output_file

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEVICE_BINARY_DIR",
    "add_commands",
    "add_device_options",
    "bench_on_device",
    "check_device_options",
    "device_spec",
    "threads_list",
]

DEVICE_BINARY_DIR = Path("~/.cache/keras-bnn-af/bin")
#: Seconds a run on a device may take (`--timeout`).
DEFAULT_TIMEOUT = 600.0
_DEVICE_FORMS = "host, local, ssh://user@host[:port] or adb[:SERIAL]"
_SSH = re.compile(
    r"ssh://(?P<user>[^@\s/:\[\]]+)@(?P<host>\[[0-9A-Fa-f:.]+\]|[^@\s/:\[\]]+)"
    r"(?::(?P<port>[^/]*))?/?"
)


def non_negative_int(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(
            f"expected 0 or a positive integer, got {text!r}; pass e.g. 1"
        )
    return int(text)


def threads_list(text: str) -> list[int]:
    """`1,4` -> [1, 4]: positive integers, comma-separated, no repeats."""
    items = [item.strip() for item in text.split(",")]
    if not all(item.isdigit() and int(item) > 0 for item in items):
        raise argparse.ArgumentTypeError(
            f"expected positive integers separated by commas, got {text!r}; pass "
            "e.g. 1 or 1,4"
        )
    return list(dict.fromkeys(int(item) for item in items))


def device_spec(text: str) -> tuple:
    """`host`, `local`, `ssh://user@host[:port]` or `adb[:SERIAL]` as a tuple:
    `("host",)`, `("local",)`, `("ssh", user, host, port)`, `("adb", serial)`."""
    value = text.strip()
    if value.lower() in ("host", "local"):
        return (value.lower(),)
    if value == "adb" or value.startswith("adb:"):
        from keras_bnn_af.benchmarks import devices

        if getattr(devices, "AdbDevice", None) is None:
            raise argparse.ArgumentTypeError(
                f"{text!r}: adb devices are not available yet in this "
                f"version. Expected: host, local or ssh://user@host[:port]. Fix: "
                "benchmark over ssh, or run the binary with `adb shell` by hand "
                "(see the README's benchmark section)."
            )
        serial = value.partition(":")[2] or None
        return ("adb", serial)
    match = _SSH.fullmatch(value)
    if match:
        port = match["port"]
        if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
            raise argparse.ArgumentTypeError(
                f"{text!r} has port {port!r}, which is not a port. "
                f"Expected: {_DEVICE_FORMS}, a port 1-65535. Fix: pass e.g. "
                f"ssh://{match['user']}@{match['host']}:22."
            )
        return ("ssh", match["user"], match["host"], int(port) if port else None)
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a device. Expected: {_DEVICE_FORMS}. "
        f"Fix: {_device_hint(value)}"
    )


def _device_hint(value: str) -> str:
    import difflib

    rest = re.sub(r"^ssh:/*", "", value, flags=re.IGNORECASE)
    if rest != value or "@" in value:
        if "@" not in rest:
            host = rest.strip("/") or "HOST"
            return f"name the user: did you mean ssh://USER@{host}?"
        return f"did you mean ssh://{rest.strip('/')}?"
    close = difflib.get_close_matches(value.lower(), ["host", "local", "adb"], n=1)
    if close:
        return f"did you mean {close[0]}?"
    if value and re.fullmatch(r"[\w.-]+(:\d+)?", value):
        return f"for a machine reached over ssh, pass ssh://USER@{value}."
    return f"pass one of {_DEVICE_FORMS}."


def add_device_options(group) -> None:
    """Adds the options of a benchmark on a device (`--binary`, `--identity`,
    `--accept-new-host-key`, `--warmup`, `--rounds`, `--results`, `--timeout`,
    `--pin-big-cores`) to `group`; `bench` and `export --device` share them and
    `bench_on_device`, which reads them."""
    group.add_argument(
        "--binary",
        type=Path,
        default=None,
        help="LCE's lce_benchmark_model for the device (default: the host twin for "
        f"local; for ssh and adb a lce_benchmark_model* file in {DEVICE_BINARY_DIR})",
    )
    group.add_argument(
        "--identity", type=Path, default=None, help="ssh private key file"
    )
    group.add_argument(
        "--accept-new-host-key",
        action="store_true",
        help="ssh: trust an unknown host's key on first contact (never a changed one)",
    )
    group.add_argument(
        "--warmup",
        type=non_negative_int,
        default=None,
        help="warm-up runs (default: 1)",
    )
    group.add_argument(
        "--rounds", type=positive_int, default=None, help="rounds (default: 5)"
    )
    group.add_argument(
        "--results",
        type=Path,
        default=None,
        help="JSON-lines file to append every run to (created if missing; never "
        "rewritten)",
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help=f"stop a run on the device after SECONDS (default: {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--pin-big-cores",
        action="store_true",
        help="run the binary under `taskset` on the device's big cores (the CPUs "
        "with the highest max frequency); a notice and no pinning when all are equal",
    )


def add_commands(commands) -> None:
    """Adds `bench` and `report` to the `keras-bnn-af` subparsers `commands`."""
    bench = commands.add_parser(
        "bench",
        help="latency of a .tflite model: on this host, or on a device with LCE's "
        "benchmark binary",
        description="Latency of a .tflite model. --device host (the default) times "
        "it in LCE's Python interpreter with the fastest kernel configuration; "
        "--device local, ssh://user@host[:port] or adb[:SERIAL] run LCE's "
        "lce_benchmark_model (--binary) on the device, --rounds times, and with "
        "--compare interleave A, B and an A-vs-A control run in one session.",
    )
    bench.add_argument("tflite", type=Path, metavar="MODEL.tflite")
    bench.add_argument(
        "--device",
        type=device_spec,
        default=("host",),
        metavar="DEVICE",
        help="host (default), local, ssh://user@host[:port] or adb[:SERIAL]",
    )
    bench.add_argument(
        "--threads",
        type=threads_list,
        default=[1],
        help="thread counts, comma-separated, e.g. 1,4 (default: 1)",
    )
    bench.add_argument(
        "--runs",
        type=positive_int,
        default=None,
        help="timed inferences per run (default: 30 on host, 50 on a device)",
    )
    bench.add_argument(
        "--kernel",
        default="auto",
        help="--device host only: auto (time each configuration, keep the fastest) "
        "or one of lce_default, indirect_bgemm, xnnpack, indirect_bgemm+xnnpack",
    )
    bench.add_argument(
        "--json",
        type=Path,
        default=None,
        help="--device host only: JSON file to write the results to, in an existing "
        "folder",
    )
    bench.add_argument("--overwrite", action="store_true", help="replace --json")
    device_only = bench.add_argument_group(
        "device options (--device local, ssh://..., adb...)"
    )
    add_device_options(device_only)
    bench.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="OTHER.tflite",
        help="model B, timed interleaved with MODEL (A) and an A-vs-A control in "
        "every round; on the host with one kernel configuration for both and "
        "--rounds (default 7) rounds of --runs (default 20)",
    )
    bench.set_defaults(handler=_bench)

    report = commands.add_parser(
        "report",
        help="markdown tables and plots from a `bench --results` file",
        description="Reads a `bench --results` JSON-lines file and writes "
        "DIR/report.md (a table per device: model x threads, median and min-max of "
        "the runs' average latency, ratio to the model's float32 twin named "
        "<model>_float32, and the --compare sessions' ratios and controls) with "
        "latency.png and threads.png.",
    )
    report.add_argument("results", type=Path, metavar="RESULTS.jsonl")
    report.add_argument(
        "--out",
        type=Path,
        required=True,
        help="report folder (created with missing parents)",
    )
    report.add_argument(
        "--overwrite", action="store_true", help="replace an existing report.md"
    )
    report.set_defaults(handler=_report)


#: Options only a device run uses: (flag, attribute of the parsed arguments).
_DEVICE_ONLY = (
    ("--binary", "binary"),
    ("--identity", "identity"),
    ("--accept-new-host-key", "accept_new_host_key"),
    ("--warmup", "warmup"),
    ("--rounds", "rounds"),
    ("--results", "results"),
    ("--timeout", "timeout"),
    ("--pin-big-cores", "pin_big_cores"),
)


def device_options_given(
    args: argparse.Namespace, *extra: tuple[str, str]
) -> list[str]:
    """The device-only options (and `extra` ones) the user gave, as flags."""
    return [
        flag
        for flag, name in (*_DEVICE_ONLY, *extra)
        if getattr(args, name) not in (None, False)
    ]


def _bench(args: argparse.Namespace) -> int:
    if args.device == ("host",):
        from keras_bnn_af.cli_bench_host import bench_host

        return bench_host(args, device_options_given(args))
    return _bench_device(args)


def _bench_device(args: argparse.Namespace) -> int:
    given = [
        option
        for option, value in (
            ("--json", args.json),
            ("--kernel", args.kernel if args.kernel != "auto" else None),
        )
        if value is not None
    ]
    if given:
        raise ValueError(
            f"{', '.join(given)} apply only to --device host. Expected: --results "
            "for device runs (the binary chooses its kernels). Fix: drop "
            f"{', '.join(given)}, or use --device host."
        )
    return bench_on_device(args, args.tflite, args.compare, command="bench")


def bench_on_device(
    args: argparse.Namespace,
    model: Path,
    compare: Path | None = None,
    *,
    command: str = "bench",
) -> int:
    """`bench --device` on `model` (A) and `compare` (B): the device path of
    `bench` and of `export --device`. `args` holds the options of
    `add_device_options` with `device`, `threads` and `runs`. Returns the exit
    status (1 after a `DeviceError`, printed as `keras-bnn-af COMMAND: error:`).

    A binary file is checked against the probed device before anything is
    pushed (`check_binary`: a wrong architecture is an error naming the right
    LCE release asset; warnings go to stderr, once).
    """
    from keras_bnn_af.benchmarks import devices
    from keras_bnn_af.benchmarks.compare import (
        TWIN_COMMAND,
        big_core_mask,
        compare_on_device,
        no_pin_notice,
    )
    from keras_bnn_af.benchmarks.records import append_records

    for option, path in (("MODEL.tflite", model), ("--compare", compare)):
        if path is not None and not path.is_file():
            raise ValueError(
                f"{option} {str(path)!r} does not exist or is not a file. Expected: "
                "a .tflite model on this machine. Fix: check the path."
            )
    candidates = check_device_options(args)
    kind = args.device[0]
    binary = args.binary
    if kind == "local":
        device = devices.LocalDevice()
        name = "local"
    elif kind == "ssh":
        _, user, host, port = args.device
        device = devices.SshDevice(
            f"{user}@{host.strip('[]')}",
            port=port,
            identity=args.identity,
            accept_new_host_key=args.accept_new_host_key,
        )
        name = device.name
    else:
        device = devices.AdbDevice(args.device[1])
        name = device.name
    runs, warmup, rounds = args.runs or 50, args.warmup, args.rounds or 5
    warmup = 1 if warmup is None else warmup
    timeout = args.timeout or DEFAULT_TIMEOUT
    shown: set[str] = set()

    def warn(text: str) -> None:
        if text not in shown:
            shown.add(text)
            print(f"warning: {text}", file=sys.stderr)

    try:
        with device:
            print(f"probing {name}...", file=sys.stderr)
            facts = device.probe()
            if kind == "local" and binary is None:
                binary_or_command: Path | tuple = TWIN_COMMAND
            else:
                binary_or_command = binary or _pick_binary(candidates, facts.arch)
            cpu_mask = None
            if args.pin_big_cores:
                cpu_mask = big_core_mask(facts)
                if cpu_mask is None:
                    print(f"notice: {no_pin_notice(facts)}", file=sys.stderr)
                else:
                    cores = ",".join(map(str, facts.big_cores))
                    print(
                        f"pinning to big cores {cores} (taskset {cpu_mask})",
                        file=sys.stderr,
                    )
            for threads in args.threads:
                comparison = compare_on_device(
                    device,
                    binary_or_command,
                    model,
                    compare,
                    threads=threads,
                    runs=runs,
                    rounds=rounds,
                    warmup=warmup,
                    timeout=timeout,
                    facts=facts,
                    cpu_mask=cpu_mask,
                    warn=warn,
                    progress=lambda line: print(line, file=sys.stderr),
                )
                print(_comparison_table(comparison))
                if args.results is not None:
                    append_records(args.results, comparison.records)
    except devices.DeviceError as error:
        print(f"keras-bnn-af {command}: error: {error}", file=sys.stderr)
        return 1
    if args.results is not None:
        print(f"appended {len(args.threads)} table(s) of runs to {args.results}")
    return 0


def check_device_options(args: argparse.Namespace) -> list[Path]:
    """Checks, before any work, what `bench_on_device` will use: a device that
    runs a binary, the `--results` file (JSON lines or new), the `--binary`
    file; returns the cached binaries to pick from (empty with --binary or for
    `local`)."""
    from keras_bnn_af.benchmarks.records import check_results_file

    kind = args.device[0]
    if kind == "host":
        raise ValueError(
            "--device host runs no benchmark binary. Expected: --device local, "
            "ssh://user@host[:port] or adb[:SERIAL]. Fix: pass --device local for "
            "this machine."
        )
    if args.results is not None:
        check_output_file(args.results, "--results")
        check_results_file(args.results)
    if args.binary is not None and not args.binary.is_file():
        raise ValueError(
            f"--binary {str(args.binary)!r} does not exist or is not a file. "
            "Expected: LCE's lce_benchmark_model for the device. Fix: check the path."
        )
    if args.binary is None and kind != "local":
        return _cached_binaries()
    return []


def _cached_binaries() -> list[Path]:
    folder = DEVICE_BINARY_DIR.expanduser()
    found = sorted(
        path for path in folder.glob("lce_benchmark_model*") if path.is_file()
    )
    if not found:
        raise ValueError(
            f"No benchmark binary given and none in {folder}. Expected: LCE's "
            "lce_benchmark_model for the device (release assets of "
            "larq/compute-engine: lce_benchmark_model_aarch64 for a 64-bit Raspberry "
            "Pi OS, lce_benchmark_model_android_arm64 for a phone); keras-bnn-af "
            "never downloads it. Fix: pass --binary PATH, or put the file in "
            f"{folder}."
        )
    return found


def _pick_binary(candidates: list[Path], arch: str | None) -> Path:
    if len(candidates) == 1:
        return candidates[0]
    suffix = {"aarch64": "aarch64", "arm64": "aarch64", "armv7l": "aarch32"}.get(
        arch or ""
    )
    matching = [path for path in candidates if suffix and path.name.endswith(suffix)]
    if len(matching) == 1:
        return matching[0]
    raise ValueError(
        f"Several benchmark binaries in {DEVICE_BINARY_DIR}: "
        f"{', '.join(path.name for path in candidates)}, and the device's arch "
        f"({arch}) does not pick one. Expected: one binary for the device. Fix: "
        "pass --binary PATH."
    )


def _comparison_table(comparison) -> str:
    from keras_bnn_af.benchmarks.bench_report import X86_NOTE, device_label, is_x86

    facts = comparison.device.to_json()
    record = comparison.records[0]
    lines = [
        "",
        f"{device_label(facts)}: {comparison.threads} thread(s), {comparison.runs} "
        f"runs x {comparison.rounds} round(s), binary {record.binary_name}",
        "| model | median ms | spread (min-max over rounds) | ratio |",
        "|---|---|---|---|",
    ]
    rows = [(comparison.a_name, "A", comparison.a, None)]
    if comparison.b is not None:
        rows += [
            (comparison.b_name, "B", comparison.b, comparison.ratio),
            (comparison.a_name, "A-control", comparison.a_control, comparison.control),
        ]
    for model, role, values, ratio in rows:
        label = f"{model} ({role})" if comparison.b is not None else model
        lines.append(
            f"| {label} | {values.median:.3f} | {values.low:.3f}-{values.high:.3f} | "
            + (f"{ratio.median:.3f} |" if ratio else "1 |")
        )
    if comparison.ratio is not None:
        for label, ratio in (
            ("B / A", comparison.ratio),
            ("A-control / A (noise floor)", comparison.control),
        ):
            lines.append(
                f"| {label} | - | {ratio.low:.3f}-{ratio.high:.3f} | "
                f"{ratio.median:.3f} |"
            )
    if is_x86(facts):
        lines.append(f"Note: {X86_NOTE}")
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> int:
    from keras_bnn_af._files import check_output_folder
    from keras_bnn_af.benchmarks.bench_report import REPORT_FILE, write_report
    from keras_bnn_af.benchmarks.records import read_records

    check_output_folder(args.out, "--out")
    report = args.out / REPORT_FILE
    if report.exists() and not args.overwrite:
        raise FileExistsError(
            f"{str(report)!r} already exists; expected --out to hold no report.md. "
            "Pass another --out folder, or --overwrite to replace it."
        )
    records = read_records(args.results)
    for path in write_report(records, args.out):
        print(f"wrote {path}")
    return 0
