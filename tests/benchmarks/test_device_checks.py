"""The binary checks, `--timeout` and `--pin-big-cores` wired into
`compare_on_device` and `bench --device`: real runs on `LocalDevice` (the host
twin, this machine's `taskset` and `timeout`), synthetic ELF headers built with
`struct`, and probe outputs of a big.LITTLE phone written by hand."""

import json
import os
import platform
import struct
import sys
from pathlib import Path

import pytest

from keras_bnn_af import cli
from keras_bnn_af.benchmarks import compare
from keras_bnn_af.benchmarks.compare import (
    TWIN_COMMAND,
    big_core_mask,
    check_taskset,
    compare_on_device,
    no_pin_notice,
)
from keras_bnn_af.benchmarks.devices import (
    DeviceError,
    DeviceFacts,
    ElfInfo,
    LocalDevice,
    parse_probe,
    read_elf,
)
from keras_bnn_af.benchmarks.devices.binary import device_machine

EM = {"aarch64": 183, "x86_64": 62}
PI64 = DeviceFacts(
    device="ssh://pi@raspberrypi.local:22",
    arch="aarch64",
    os_bits=64,
    os_name="Debian GNU/Linux 12 (bookworm)",
    glibc="2.36",
    board="Raspberry Pi 5 Model B Rev 1.0",
)
TWIN_SCRIPT = (
    "from keras_bnn_af.benchmarks.benchmark_model import main\n"
    "raise SystemExit(main())\n"
)
GLIBC_LOG = (
    "./lce_benchmark_model: /lib/aarch64-linux-gnu/libm.so.6: version "
    "`GLIBC_2.29' not found (required by ./lce_benchmark_model)"
)


def elf64(path: Path, machine: str) -> Path:
    """A minimal 64-bit little-endian ELF executable header, no program headers."""
    ident = (b"\x7fELF" + bytes([2, 1, 1])).ljust(16, b"\0")
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 2, EM[machine], 1, 0, 0, 0, 0, 64, 56, 0, 0, 0, 0
    )
    path.write_bytes(header)
    path.chmod(0o755)
    return path


def wrong_machine() -> tuple[str, str]:
    """An ELF machine this host cannot run, and what the error's fix names."""
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "x86_64", "use lce_benchmark_model_aarch64"
    return "aarch64", "LCE publishes no benchmark binary for linux on x86_64"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import larq_compute_engine as lce

    from keras_bnn_af.testing import binary_block_net

    path = tmp_path_factory.mktemp("checks") / "tiny.tflite"
    path.write_bytes(
        lce.convert_keras_model(binary_block_net("ste_sign", filters=(8,)))
    )
    return path


# --- big cores ------------------------------------------------------------------------


def _probe(freqs: dict[int, int]) -> str:
    lines = ["arch\taarch64", "long_bit\t64", "android\t14"]
    lines += [f"max_freq.{cpu}\t{freq}" for cpu, freq in freqs.items()]
    return "\n".join(lines) + "\n"


def test_big_core_mask_covers_the_cpus_with_the_highest_max_frequency():
    # A Snapdragon 8 Gen 2 layout: 3 little, 4 mid, 1 prime core.
    prime = {**dict.fromkeys(range(3), 2016000), **dict.fromkeys(range(3, 7), 2803200)}
    facts = parse_probe(_probe({**prime, 7: 3187200}), "adb:R5CT")
    assert facts.big_cores == (7,) and big_core_mask(facts) == "80"
    # 4 little + 4 big (Exynos, Helio): cpus 4-7.
    facts = parse_probe(
        _probe(
            {**dict.fromkeys(range(4), 1800000), **dict.fromkeys(range(4, 8), 2400000)}
        ),
        "adb:R5CT",
    )
    assert facts.big_cores == (4, 5, 6, 7) and big_core_mask(facts) == "f0"
    # 12 cores, big ones above index 7: the mask is wider than a byte.
    facts = parse_probe(
        _probe({**dict.fromkeys(range(8), 1000), **dict.fromkeys(range(8, 12), 2000)}),
        "x",
    )
    assert big_core_mask(facts) == "f00"


def test_equal_or_unreadable_max_frequencies_are_not_pinned_with_a_notice():
    equal = parse_probe(_probe(dict.fromkeys(range(4), 1800000)), "ssh://pi@pi:22")
    assert big_core_mask(equal) is None
    assert "all 4 cores have the same max frequency (1800000 kHz)" in no_pin_notice(
        equal
    )
    unreadable = parse_probe(_probe({}), "local")
    assert big_core_mask(unreadable) is None
    assert "no per-CPU max frequency is readable" in no_pin_notice(unreadable)


# --- compare_on_device ----------------------------------------------------------------


def test_a_binary_for_the_wrong_architecture_is_refused_before_any_push(
    model, tmp_path
):
    binary = elf64(tmp_path / "lce_benchmark_model_x86", "x86_64")
    with LocalDevice() as device:
        with pytest.raises(DeviceError) as raised:
            compare_on_device(device, binary, model, threads=1, runs=1, facts=PI64)
        assert device._work_dir is None  # nothing pushed: no work dir made
    assert "is a 64-bit x86_64 binary" in raised.value.what
    assert raised.value.fix.startswith("use lce_benchmark_model_aarch64 from https://")


def test_read_elf_refuses_a_script(tmp_path):
    script = tmp_path / "lce_benchmark_model"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(DeviceError, match="is a script"):
        read_elf(script)


def test_a_glibc_not_found_run_becomes_the_glibc_error(model, tmp_path, monkeypatch):
    """The run is real (a shell script on `LocalDevice` that prints the loader's
    message and exits 1); a script is otherwise pushed unchecked, so here it
    is taken for an ELF file with the `ElfInfo` of a glibc binary for this
    machine."""
    script = tmp_path / "lce_benchmark_model"
    script.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{GLIBC_LOG}\nEOF\nexit 1\n")
    script.chmod(0o755)
    warnings = []
    with LocalDevice() as device:
        facts = device.probe()
        info = ElfInfo(
            path=str(script),
            bits=64,
            machine=device_machine(facts),
            interpreter="/lib/ld-linux.so",
            needed_glibc=None,
        )
        monkeypatch.setattr(compare, "read_elf", lambda path: info)
        monkeypatch.setattr(compare, "_is_script", lambda path: False)
        with pytest.raises(DeviceError) as raised:
            compare_on_device(
                device, script, model, threads=1, runs=1, rounds=1, warn=warnings.append
            )
    error = raised.value
    assert f"needs glibc 2.29 (GLIBC_2.29), but local has glibc {facts.glibc}" in str(
        error
    )
    assert "lce_benchmark_model_aarch64" in error.fix and "bazel" in error.fix
    assert "exit status 1" in str(error.__cause__)
    if facts.arch in ("x86_64", "amd64"):
        assert any("only for 32/64-bit ARM" in warning for warning in warnings)


def test_a_script_binary_runs_unchecked_with_a_warning(model, tmp_path):
    # The host twin's console script is how an x86 machine plays a device.
    twin = tmp_path / "keras-bnn-af-benchmark-model"
    twin.write_text(f"#!{sys.executable}\n" + TWIN_SCRIPT)
    twin.chmod(0o755)
    warnings = []
    with LocalDevice() as device:
        result = compare_on_device(
            device, twin, model, threads=1, runs=2, rounds=1, warn=warnings.append
        )
    (warning,) = warnings
    assert "is a script" in warning and "without the architecture" in warning
    assert [record.count for record in result.records] == [2]
    assert result.records[0].warnings == (warning,)  # kept in the results file


def test_cpu_mask_runs_under_taskset_and_is_recorded(model):
    with LocalDevice() as device:
        result = compare_on_device(
            device, TWIN_COMMAND, model, threads=1, runs=1, rounds=1, cpu_mask="1"
        )
    (record,) = result.records
    assert record.flags[-1] == "taskset=0x1"
    assert record.count == 1 and record.avg_ms > 0


def test_no_taskset_on_the_device_is_an_error_with_the_fix(
    model, tmp_path, monkeypatch
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink("/bin/sh", bin_dir / "sh")
    monkeypatch.setenv("PATH", str(bin_dir))
    with LocalDevice() as device:
        with pytest.raises(DeviceError) as raised:
            check_taskset(device)
    assert "needs `taskset` on local" in raised.value.what
    assert "sudo apt install util-linux" in raised.value.fix


# --- bench --device -------------------------------------------------------------------


def test_bench_refuses_a_wrong_architecture_binary_naming_the_asset(
    model, tmp_path, capsys
):
    machine, fix = wrong_machine()
    binary = elf64(tmp_path / "lce_benchmark_model", machine)
    args = ["bench", str(model), "--device", "local", "--binary", str(binary)]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "keras-bnn-af bench: error: " in err and f"{machine} binary" in err
    assert fix in err and "round 1/" not in err  # refused before any run


def test_bench_on_a_pi_names_the_pi_asset(model, tmp_path, capsys, monkeypatch):
    """The same through the CLI with the probe answering as a 64-bit Pi."""
    binary = elf64(tmp_path / "lce_benchmark_model_x86", "x86_64")
    monkeypatch.setattr(LocalDevice, "probe", lambda self, timeout=60: PI64)
    args = ["bench", str(model), "--device", "local", "--binary", str(binary)]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "runs 64-bit Debian GNU/Linux 12 (bookworm) on aarch64" in err
    assert "Fix: use lce_benchmark_model_aarch64 from" in err


def test_bench_pin_big_cores_on_equal_cores_notes_it_and_does_not_pin(
    model, tmp_path, capsys
):
    results = tmp_path / "bench.jsonl"
    args = ["bench", str(model), "--device", "local", "--pin-big-cores"]
    args += ["--runs", "1", "--rounds", "1", "--timeout", "120"]
    with LocalDevice() as device:
        facts = device.probe()
    assert facts.big_cores == ()  # this machine's cores are all alike
    assert cli.main([*args, "--results", str(results)]) == 0
    err = capsys.readouterr().err
    assert "notice: --pin-big-cores: not pinning on local: " in err
    (line,) = results.read_text().splitlines()
    assert not any(flag.startswith("taskset") for flag in json.loads(line)["flags"])


def test_a_run_past_the_timeout_is_stopped(model):
    sleeper = ["sh", "-c", "sleep 30", "sh"]  # the flags become $1...
    with LocalDevice() as device:
        with pytest.raises(DeviceError, match="ran past its 1 s timeout"):
            compare_on_device(
                device, sleeper, model, threads=1, runs=1, rounds=1, timeout=1
            )


def test_bench_timeout_stops_a_run_past_it(model, capsys, monkeypatch):
    """`--device local` runs `TWIN_COMMAND`: here a command that sleeps."""
    monkeypatch.setattr(compare, "TWIN_COMMAND", ("sh", "-c", "sleep 30", "sh"))
    args = ["bench", str(model), "--device", "local", "--timeout", "1"]
    assert cli.main([*args, "--runs", "1", "--rounds", "1"]) == 1
    err = capsys.readouterr().err
    assert "ran past its 1 s timeout and was stopped" in err
    assert "Fix: raise --timeout" in err


def test_timeout_and_pin_are_device_options(model, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", str(model), "--timeout", "5", "--pin-big-cores"])
    assert exit_.value.code == 2
    assert "--timeout, --pin-big-cores need(s) a device" in capsys.readouterr().err


@pytest.mark.parametrize("mask", ["", "0xf0", "cpu4"])
def test_a_malformed_cpu_mask_is_refused_before_any_work(mask):
    with pytest.raises(ValueError, match="expected a hex CPU mask") as raised:
        compare_on_device(
            LocalDevice(), "unused", "unused.tflite", threads=1, runs=1, cpu_mask=mask
        )
    assert repr(mask) in str(raised.value) and "or None" in str(raised.value)
