"""Devices: probe, push a model, run LCE's benchmark binary, clean up.

A `Device` holds a `Shell` (the transport) and does everything else with
POSIX shell commands built from quoted arguments, so ssh and adb share this
code and differ only in the transport. Use it as a context manager: its
private work dir (`mktemp -d`, mode 700) is removed, and a benchmark still
running there is killed, when the block ends on success, on an exception and
on Ctrl-C.

```python
with SshDevice("pi@raspberrypi.local", identity="~/.ssh/id_ed25519") as pi:
    facts = pi.probe()
    model, _ = pi.push_model("binarynet.tflite")
    binary, _ = pi.push_binary("lce_benchmark_model_aarch64")
    log = pi.run_benchmark(binary, model, threads=4, runs=50)
```

The benchmark runs on the device under coreutils' `timeout` (where the device
has it), in its own process group whose id is written to the work dir, so
clean-up can kill it even when the local ssh client was killed first.
"""

import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

from keras_bnn_af._files import file_sha256
from keras_bnn_af.benchmarks.devices.shell import (
    DeviceError,
    LocalShell,
    Shell,
    SshShell,
)

__all__ = [
    "Device",
    "DeviceFacts",
    "HostDevice",
    "LocalDevice",
    "Pushed",
    "SshDevice",
    "parse_probe",
]

#: One remote round trip for every fact; each line `key<TAB>value`, missing
#: files and commands simply leave their line out or empty.
PROBE_SCRIPT = r"""
say() { printf '%s\t%s\n' "$1" "$2"; }
say arch "$(uname -m 2>/dev/null)"
say kernel "$(uname -sr 2>/dev/null)"
say long_bit "$(getconf LONG_BIT 2>/dev/null)"
say gnu_libc "$(getconf GNU_LIBC_VERSION 2>/dev/null)"
say ldd "$(ldd --version 2>&1 | head -n 1)"
say nproc "$(nproc 2>/dev/null)"
if [ -r /etc/os-release ]; then
  say os_release "$(. /etc/os-release 2>/dev/null; printf '%s' "$PRETTY_NAME")"
fi
say android "$(getprop ro.build.version.release 2>/dev/null)"
say abi "$(getprop ro.product.cpu.abi 2>/dev/null)"
say has_timeout "$(command -v timeout >/dev/null 2>&1 && echo yes)"
if [ -r /proc/cpuinfo ]; then
  say processors "$(grep -c '^processor' /proc/cpuinfo 2>/dev/null)"
  grep -E '^(model name|Hardware|Processor|cpu model|Model)[[:space:]]*:' \
    /proc/cpuinfo 2>/dev/null | while IFS= read -r line; do say cpuinfo "$line"; done
fi
for dir in /sys/devices/system/cpu/cpu[0-9]*; do
  cpu=${dir##*/cpu}
  [ -r "$dir/cpufreq/cpuinfo_max_freq" ] &&
    say "max_freq.$cpu" "$(cat "$dir/cpufreq/cpuinfo_max_freq" 2>/dev/null)"
  [ -r "$dir/cpufreq/scaling_governor" ] &&
    say "governor.$cpu" "$(cat "$dir/cpufreq/scaling_governor" 2>/dev/null)"
done
for zone in /sys/class/thermal/thermal_zone*; do
  [ -r "$zone/temp" ] || continue
  temp=$(cat "$zone/temp" 2>/dev/null) || continue
  say "temp.$(cat "$zone/type" 2>/dev/null || echo "${zone##*/}")" "$temp"
done
if command -v dumpsys >/dev/null 2>&1; then  # Android: no readable thermal zones
  say battery_temp "$(dumpsys battery 2>/dev/null | sed -n 's/^ *temperature: *//p')"
  dumpsys thermalservice 2>/dev/null | grep 'Temperature{' |
    while IFS= read -r line; do say thermal "$line"; done
fi
true
"""

#: $1 the directory to make it in; empty for the device's $TMPDIR or /tmp.
_WORK_DIR_SCRIPT = (
    "umask 077 && root=${1:-${TMPDIR:-/tmp}} && "
    'd=$(mktemp -d "$root/keras-bnn-af.XXXXXXXX") && chmod 700 "$d" && '
    'printf "%s\\n" "$d"'
)
#: $1 pid file, $2 time limit (s), the rest the command; stdout and stderr
#: merged in order. `timeout` makes itself a process-group leader, so the
#: pid written is the group's id.
_RUN_SCRIPT = r"""
exec 2>&1
pidfile=$1; limit=$2; shift 2
if command -v timeout >/dev/null 2>&1; then
  timeout -k 5 "$limit" "$@" </dev/null &
else
  "$@" </dev/null &
fi
pid=$!
echo "$pid" > "$pidfile"
wait "$pid"; status=$?
rm -f "$pidfile"
exit "$status"
"""
#: $1 the work dir: kill what still runs from it, then remove it.
_CLEANUP_SCRIPT = r"""
if [ -f "$1/.benchmark.pid" ]; then
  pid=$(cat "$1/.benchmark.pid")
  case "$pid" in
    ''|*[!0-9]*) ;;
    *) kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
       sleep 1
       kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null ;;
  esac
fi
rm -rf -- "$1"
"""
_PID_FILE = ".benchmark.pid"
#: A line of `dumpsys thermalservice`: `Temperature{mValue=41.5, mType=0,
#: mName=CPU0, mStatus=0}`.
_THERMAL_SERVICE = re.compile(
    r"mValue=(?P<value>-?[0-9]+(?:\.[0-9]+)?),.*?mName=(?P<name>[^,}]+)"
)
_TIMED_OUT = 124


@dataclass(frozen=True)
class DeviceFacts:
    """What `Device.probe` found; `None` (or empty) where the device did not say.

    # Attributes
        device: the device's name (`ssh://user@host:port`, `local`...).
        arch: `uname -m` (`aarch64`, `armv7l`, `x86_64`...).
        os_bits: the userland's word size (`getconf LONG_BIT`, else from
            Android's ABI): 32 on a 32-bit Raspberry Pi OS even on a 64-bit CPU.
        abi: Android's primary ABI (`ro.product.cpu.abi`: `arm64-v8a`,
            `armeabi-v7a`...), `None` elsewhere.
        kernel: `uname -sr`.
        os_name: `PRETTY_NAME` of /etc/os-release, or `Android <release>`.
        glibc: the glibc version (`2.36`), `None` without glibc (Android, musl).
        libc: the first line of `ldd --version` (or getconf's answer), as said.
        cpu_model: `/proc/cpuinfo`'s model name (or Hardware / Processor).
        board: `/proc/cpuinfo`'s `Model` line (Raspberry Pi boards).
        cores: processors in /proc/cpuinfo (else `nproc`).
        cores_available: `nproc` (cores this user's processes may use).
        max_freq_khz: per CPU index, `cpuinfo_max_freq` where readable.
        big_cores: CPU indices with the highest max frequency, when max
            frequencies differ (big.LITTLE); empty otherwise.
        governor: the cpufreq governor (`a,b` when CPUs differ).
        temperature_c: the hottest readable thermal zone (degrees C).
        temperatures_c: every readable thermal zone by type.
        has_timeout: the device has a `timeout` command.
    """

    device: str
    arch: str | None = None
    os_bits: int | None = None
    abi: str | None = None
    kernel: str | None = None
    os_name: str | None = None
    glibc: str | None = None
    libc: str | None = None
    cpu_model: str | None = None
    board: str | None = None
    cores: int | None = None
    cores_available: int | None = None
    max_freq_khz: dict[int, int] = field(default_factory=dict)
    big_cores: tuple[int, ...] = ()
    governor: str | None = None
    temperature_c: float | None = None
    temperatures_c: dict[str, float] = field(default_factory=dict)
    has_timeout: bool = False

    def to_json(self) -> dict:
        """A JSON-ready dict (CPU indices as string keys)."""
        data = asdict(self)
        data["max_freq_khz"] = {str(k): v for k, v in self.max_freq_khz.items()}
        data["big_cores"] = list(self.big_cores)
        json.dumps(data)  # fails here, not in a results file, if it cannot
        return data


class Pushed(NamedTuple):
    """Where a file is on the device, and whether this call copied it."""

    path: str
    pushed: bool


def parse_probe(text: str, device: str) -> DeviceFacts:
    """`DeviceFacts` from `PROBE_SCRIPT`'s output; unknown lines are ignored."""
    values: dict[str, str] = {}
    cpuinfo: dict[str, str] = {}
    freqs: dict[int, int] = {}
    governors: dict[int, str] = {}
    temps: dict[str, float] = {}
    for line in text.splitlines():
        key, tab, value = line.partition("\t")
        value = value.strip()
        if not tab or not value:
            continue
        prefix, _, suffix = key.partition(".")
        if key == "cpuinfo":
            name, _, said = value.partition(":")
            cpuinfo.setdefault(name.strip(), said.strip())
        elif prefix == "max_freq" and suffix.isdigit() and value.isdigit():
            freqs[int(suffix)] = int(value)
        elif prefix == "governor" and suffix.isdigit():
            governors[int(suffix)] = value
        elif prefix == "temp" and suffix:
            temp = _number(value)
            if temp is not None:
                # The kernel reports millidegrees; a few drivers report degrees.
                temps[suffix] = round(temp / 1000 if abs(temp) > 200 else temp, 1)
        elif key == "battery_temp":
            temp = _number(value)
            if temp is not None:  # `dumpsys battery` says tenths of a degree
                temps.setdefault("battery", round(temp / 10, 1))
        elif key == "thermal":
            match = _THERMAL_SERVICE.search(value)
            if match:
                temps.setdefault(match["name"], round(float(match["value"]), 1))
        else:
            values.setdefault(key, value)
    android = values.get("android")
    big = ()
    if len(set(freqs.values())) > 1:
        top = max(freqs.values())
        big = tuple(sorted(cpu for cpu, freq in freqs.items() if freq == top))
    return DeviceFacts(
        device=device,
        arch=values.get("arch"),
        os_bits=_integer(values.get("long_bit")) or _abi_bits(values.get("abi")),
        abi=values.get("abi"),
        kernel=values.get("kernel"),
        os_name=values.get("os_release") or (f"Android {android}" if android else None),
        glibc=_glibc(values.get("gnu_libc"), values.get("ldd")),
        libc=values.get("gnu_libc") or values.get("ldd"),
        cpu_model=next(
            (
                cpuinfo[name]
                for name in ("model name", "Processor", "cpu model", "Hardware")
                if cpuinfo.get(name)
            ),
            None,
        ),
        board=cpuinfo.get("Model") or None,
        cores=_integer(values.get("processors")) or _integer(values.get("nproc")),
        cores_available=_integer(values.get("nproc")),
        max_freq_khz=dict(sorted(freqs.items())),
        big_cores=big,
        governor=",".join(sorted(set(governors.values()))) or None,
        temperature_c=max(temps.values()) if temps else None,
        temperatures_c=temps,
        has_timeout=values.get("has_timeout") == "yes",
    )


def _abi_bits(abi: str | None) -> int | None:
    """The word size of an Android ABI (`arm64-v8a` 64, `armeabi-v7a` 32)."""
    if not abi:
        return None
    return 64 if "64" in abi else 32


class Device:
    """A machine that runs LCE's benchmark binary, reached through a `Shell`.

    # Arguments
        shell: the transport.
        temp_root: the remote directory the work dir is made in; `None` for
            the device's `$TMPDIR` or `/tmp`.
    """

    def __init__(self, shell: Shell, temp_root: str | None = None):
        self.shell = shell
        self.temp_root = temp_root
        self._work_dir: str | None = None

    @property
    def name(self) -> str:
        return self.shell.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.cleanup()

    def probe(self, timeout: float = 60) -> DeviceFacts:
        """The device's facts, in one remote round trip."""
        completed = self.shell.run(["sh", "-c", PROBE_SCRIPT], timeout=timeout)
        if completed.returncode != 0:
            raise DeviceError(
                f"Probing {self.name} failed (exit status {completed.returncode}: "
                f"{_tail(completed.stderr + completed.stdout)!r}).",
                "a POSIX shell (`sh`) on the device.",
                "check that you can log in and run `uname -m` there.",
            )
        return parse_probe(completed.stdout, self.name)

    def work_dir(self) -> str:
        """This session's private remote dir (mode 700), made on first use."""
        if self._work_dir is None:
            root = self.temp_root or "$TMPDIR or /tmp"
            argv = ["sh", "-c", _WORK_DIR_SCRIPT, "sh", self.temp_root or ""]
            completed = self.shell.run(argv, timeout=60)
            path = completed.stdout.strip()
            if completed.returncode != 0 or not path.startswith("/"):
                raise DeviceError(
                    f"Could not make a work dir in {root} on {self.name} "
                    f"({_tail(completed.stderr + completed.stdout)!r}).",
                    "a writable temporary directory with free space.",
                    "free space there (`df -h`), or pass another temp_root.",
                )
            self._work_dir = path
        return self._work_dir

    def push_model(self, path: str | os.PathLike) -> Pushed:
        """Copies a model to `<work dir>/<sha256>.tflite`, unless already there."""
        return self._push(Path(path), ".tflite", executable=False)

    def push_binary(self, path: str | os.PathLike) -> Pushed:
        """Copies an executable to `<work dir>/<sha256>.bin` (mode 700)."""
        return self._push(Path(path), ".bin", executable=True)

    def remotefile_sha256(self, remote_path: str) -> str | None:
        """The remote file's sha256, `None` if it is missing (or no sha256sum)."""
        completed = self.shell.run(
            ["sh", "-c", 'sha256sum -- "$1" 2>/dev/null', "sh", remote_path],
            timeout=120,
        )
        digest = completed.stdout.split(maxsplit=1)[:1]
        if (
            completed.returncode == 0
            and digest
            and re.fullmatch(r"[0-9a-f]{64}", digest[0])
        ):
            return digest[0]
        return None

    def run_benchmark(
        self,
        binary_remote_path: str | Sequence[str],
        model_remote_path: str,
        threads: int = 1,
        runs: int = 50,
        warmup: int = 1,
        extra_flags: Sequence[str] = (),
        timeout: float = 600,
    ) -> str:
        """Runs the benchmark binary on a pushed model; its log (stdout+stderr).

        # Arguments
            binary_remote_path: the binary on the device, or a command prefix
                (e.g. `[python, "-m", "keras_bnn_af.benchmarks.benchmark_model"]`).
            model_remote_path: the model on the device.
            threads, runs, warmup: `--num_threads`, `--num_runs`, `--warmup_runs`.
            extra_flags: more flags, e.g. `["--use_xnnpack=true"]`.
            timeout: seconds; the device's `timeout` stops the run after it.
        """
        for label, value in (("threads", threads), ("runs", runs), ("warmup", warmup)):
            if not isinstance(value, int) or value < (0 if label == "warmup" else 1):
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        prefix = (
            [binary_remote_path]
            if isinstance(binary_remote_path, str)
            else list(binary_remote_path)
        )
        argv = [
            *prefix,
            f"--graph={model_remote_path}",
            f"--num_threads={threads}",
            f"--num_runs={runs}",
            f"--warmup_runs={warmup}",
            *extra_flags,
        ]
        pid_file = f"{self.work_dir()}/{_PID_FILE}"
        limit = f"{max(1, round(timeout))}"
        completed = self.shell.run(
            ["sh", "-c", _RUN_SCRIPT, "sh", pid_file, limit, *argv],
            timeout=timeout + 30,
        )
        log = completed.stdout + completed.stderr
        if completed.returncode == _TIMED_OUT:
            raise DeviceError(
                f"The benchmark of {model_remote_path} on {self.name} ran past its "
                f"{timeout:g} s timeout and was stopped.",
                f"{runs} runs within {timeout:g} s.",
                "raise --timeout, or lower --runs.",
            )
        if completed.returncode in (126, 127):
            problem = (
                "is not executable" if completed.returncode == 126 else "was not found"
            )
            raise DeviceError(
                f"The benchmark binary {prefix[0]} on {self.name} {problem} "
                f"({_tail(log)!r}).",
                "LCE's lce_benchmark_model for this device, executable.",
                "pass --binary with the release asset for the device's architecture "
                "(lce_benchmark_model_aarch64 on a 64-bit Raspberry Pi OS).",
            )
        if completed.returncode != 0:
            raise DeviceError(
                f"The benchmark of {model_remote_path} on {self.name} failed "
                f"(exit status {completed.returncode}); its last lines: "
                f"{_tail(log, 5)!r}.",
                "the binary to run the model and exit 0.",
                "read the log above; run the same command on the device by hand.",
            )
        return log

    def cleanup(self) -> None:
        """Kills a benchmark still running and removes the work dir."""
        if self._work_dir is None:
            return
        work_dir, self._work_dir = self._work_dir, None
        completed = self.shell.run(
            ["sh", "-c", _CLEANUP_SCRIPT, "sh", work_dir], timeout=60
        )
        if completed.returncode != 0:
            raise DeviceError(
                f"Could not remove the work dir {work_dir} on {self.name} "
                f"({_tail(completed.stderr + completed.stdout)!r}).",
                "the work dir to be removable by its owner.",
                f"remove it by hand: `rm -rf {work_dir}` on the device.",
            )

    def _push(self, path: Path, suffix: str, *, executable: bool) -> Pushed:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist or is not a file. Expected the file to copy "
                "to the device. Fix: check the path."
            )
        digest = file_sha256(path)
        remote = f"{self.work_dir()}/{digest}{suffix}"
        if self.remotefile_sha256(remote) == digest:
            return Pushed(remote, False)
        self.shell.push(path, remote, executable=executable)
        return Pushed(remote, True)


class SshDevice(Device):
    """A Linux device reached with ssh (a Raspberry Pi, a board, this host).

    # Arguments
        target: `user@host`.
        port, identity, connect_timeout, accept_new_host_key, known_hosts:
            see `SshShell`.
        temp_root: see `Device`.
    """

    def __init__(
        self,
        target: str,
        port: int | None = None,
        identity: str | os.PathLike | None = None,
        *,
        connect_timeout: float = 10,
        accept_new_host_key: bool = False,
        known_hosts: str | os.PathLike | None = None,
        temp_root: str | None = None,
    ):
        shell = SshShell(
            target,
            port=port,
            identity=identity,
            connect_timeout=connect_timeout,
            accept_new_host_key=accept_new_host_key,
            known_hosts=known_hosts,
        )
        super().__init__(shell, temp_root=temp_root)


class LocalDevice(Device):
    """This machine through `LocalShell` (tests, and the host path's twin).

    Also named `HostDevice`: with `TWIN_COMMAND` as the binary it runs LCE's
    Python interpreter here, as `--device host` does in-process.
    """

    def __init__(self, temp_root: str | None = None):
        super().__init__(LocalShell(), temp_root=temp_root)


HostDevice = LocalDevice


def _glibc(getconf: str | None, ldd: str | None) -> str | None:
    if getconf and (match := re.fullmatch(r"glibc\s+(\d+\.\d+(?:\.\d+)?)", getconf)):
        return match.group(1)
    if ldd and re.search(r"GLIBC|GNU libc", ldd):
        match = re.search(r"(\d+\.\d+(?:\.\d+)?)\s*$", ldd)
        return match.group(1) if match else None
    return None


def _integer(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _tail(text: str, lines: int = 3) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
