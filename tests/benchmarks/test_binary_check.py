"""`read_elf` and `check_binary`: synthetic ELF files built here with
`struct` (no downloaded binaries), this machine's `/bin/ls`, and files that
are not ELF."""

import platform
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from keras_bnn_af.benchmarks.devices import (
    DeviceError,
    DeviceFacts,
    LocalDevice,
    check_binary,
    glibc_error,
    read_elf,
)
from keras_bnn_af.benchmarks.devices.binary import device_machine

EM = {"aarch64": 183, "arm": 40, "x86_64": 62, "x86": 3}
GLIBC_LOADER = "/lib/ld-linux-aarch64.so.1"
PI64 = DeviceFacts(
    device="ssh://pi@raspberrypi.local:22",
    arch="aarch64",
    os_bits=64,
    os_name="Debian GNU/Linux 11 (bullseye)",
    glibc="2.31",
    board="Raspberry Pi 4 Model B Rev 1.4",
)
PI32 = DeviceFacts(
    device="ssh://pi@raspberrypi.local:22",
    arch="armv7l",
    os_bits=32,
    os_name="Raspbian GNU/Linux 10 (buster)",
    glibc="2.28",
    cpu_model="ARMv7 Processor rev 3 (v7l)",
    board="Raspberry Pi 4 Model B Rev 1.4",
)
PHONE = DeviceFacts(
    device="adb:R58M12345AB", arch="aarch64", os_bits=64, os_name="Android 13"
)


def elf(
    path: Path,
    *,
    bits=64,
    machine="aarch64",
    order="<",
    interpreter: str | None = GLIBC_LOADER,
    payload=b"",
) -> Path:
    """A minimal ELF executable: header, at most one `PT_INTERP`, payload."""
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if order == "<" else 2, 1])
    ident = ident.ljust(16, b"\0")
    phnum = 1 if interpreter is not None else 0
    interp = interpreter.encode() + b"\0" if interpreter is not None else b""
    interp_at = ehsize + phnum * phentsize
    if bits == 64:
        header = ident + struct.pack(
            order + "HHIQQQIHHHHHH",
            2, EM[machine], 1, 0, ehsize if phnum else 0, 0, 0,
            ehsize, phentsize, phnum, 0, 0, 0,
        )  # fmt: skip
        phdrs = struct.pack(
            order + "IIQQQQQQ", 3, 4, interp_at, 0, 0, len(interp), len(interp), 1
        )
    else:
        header = ident + struct.pack(
            order + "HHIIIIIHHHHHH",
            2, EM[machine], 1, 0, ehsize if phnum else 0, 0, 0,
            ehsize, phentsize, phnum, 0, 0, 0,
        )  # fmt: skip
        phdrs = struct.pack(
            order + "IIIIIIII", 3, interp_at, 0, 0, len(interp), len(interp), 4, 1
        )
    assert len(header) == ehsize
    path.write_bytes(header + (phdrs if phnum else b"") + interp + payload)
    return path


def test_reads_a_64_bit_aarch64_glibc_binary(tmp_path):
    refs = b"\0GLIBC_2.17\0GLIBC_2.29\0GLIBC_2.3\0GLIBC_PRIVATE\0"
    info = read_elf(elf(tmp_path / "lce", payload=refs))
    assert (info.bits, info.machine) == (64, "aarch64")
    assert info.interpreter == GLIBC_LOADER and not info.android
    assert info.needed_glibc == "2.29"  # by version, not as text (2.3 < 2.29)


@pytest.mark.parametrize("order", ["<", ">"])
def test_reads_32_bit_arm_both_byte_orders(tmp_path, order):
    loader = "/lib/ld-linux-armhf.so.3"
    info = read_elf(
        elf(tmp_path / "lce", bits=32, machine="arm", order=order, interpreter=loader)
    )
    assert (info.bits, info.machine, info.interpreter) == (32, "arm", loader)
    assert info.needed_glibc is None


def test_reads_static_and_android_binaries(tmp_path):
    static = read_elf(elf(tmp_path / "static", interpreter=None))
    assert static.interpreter is None and not static.android
    android = read_elf(elf(tmp_path / "a", interpreter="/system/bin/linker64"))
    assert android.android and android.machine == "aarch64"


def test_reads_this_machines_ls():
    info = read_elf("/bin/ls")
    machine = {"x86_64": "x86_64", "aarch64": "aarch64"}.get(platform.machine())
    assert info.bits == 64 and info.machine == machine
    assert info.interpreter and info.interpreter.startswith(("/lib", "/usr/lib"))
    libc, version = platform.libc_ver()
    if libc == "glibc":
        assert info.needed_glibc is not None
        assert _version(info.needed_glibc) <= _version(version)
    if shutil.which("readelf"):  # the symbol versions binutils reads
        out = subprocess.run(
            ["readelf", "-V", "/bin/ls"], capture_output=True, text=True, check=True
        ).stdout
        found = {w[6:] for w in out.split() if w.startswith("GLIBC_2.")}
        assert info.needed_glibc == max(found, key=_version)


def test_this_machines_ls_fits_this_machine():
    facts = LocalDevice().probe()
    warnings = check_binary(read_elf("/bin/ls"), facts)
    if platform.machine() == "x86_64":
        assert len(warnings) == 1 and "#803" in warnings[0]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"#!/bin/sh\necho hi\n", "is a script (#!/bin/sh)"),
        (b"<!DOCTYPE html>\n<html><head>", "is an HTML page"),
        (b"", "is an empty file"),
        (b"PK\x03\x04zipzip" * 8, "not an ELF file"),
        (
            b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\0\xb7\0" + b"\0" * 40,
            "truncated ELF",
        ),
    ],
)
def test_a_file_that_is_not_an_elf_binary_is_named(tmp_path, content, said):
    path = tmp_path / "lce_benchmark_model_aarch64"
    path.write_bytes(content)
    with pytest.raises(DeviceError) as error:
        read_elf(path)
    assert str(path) in error.value.what and said in error.value.what
    assert "ELF executable" in error.value.expected
    assert "github.com/larq/compute-engine/releases" in error.value.fix


def test_a_truncated_elf_is_named(tmp_path):
    path = elf(tmp_path / "lce")
    path.write_bytes(path.read_bytes()[:70])  # header, half a program header
    with pytest.raises(DeviceError, match="truncated ELF"):
        read_elf(path)


@pytest.mark.parametrize(
    ("facts", "bits", "machine", "loader", "asset"),
    [
        (PI64, 32, "arm", "/lib/ld-linux-armhf.so.3", "lce_benchmark_model_aarch64"),
        (PI32, 64, "aarch64", GLIBC_LOADER, "lce_benchmark_model_aarch32"),
        (PHONE, 64, "aarch64", GLIBC_LOADER, "lce_benchmark_model_android_arm64"),
        (PI64, 64, "aarch64", "/system/bin/linker64", "lce_benchmark_model_aarch64"),
        (PHONE, 64, "x86_64", "/system/bin/linker64", "android_arm64"),
    ],
)
def test_a_wrong_binary_names_the_right_asset(
    tmp_path, facts, bits, machine, loader, asset
):
    info = read_elf(
        elf(tmp_path / "lce", bits=bits, machine=machine, interpreter=loader)
    )
    with pytest.raises(DeviceError) as error:
        check_binary(info, facts)
    assert str(info.path) in error.value.what and facts.device in error.value.what
    assert asset in error.value.fix


def test_the_right_binaries_pass(tmp_path):
    payload = b"GLIBC_2.17\0GLIBC_2.27\0"
    pi = read_elf(elf(tmp_path / "pi", payload=payload))
    assert check_binary(pi, PI64) == []
    phone = read_elf(elf(tmp_path / "phone", interpreter="/system/bin/linker64"))
    assert check_binary(phone, PHONE) == []
    static = read_elf(elf(tmp_path / "static", interpreter=None))
    assert check_binary(static, PHONE) == [] and check_binary(static, PI64) == []


@pytest.mark.parametrize(
    "facts",
    [
        PI32,  # 32-bit kernel: the board names a 64-bit CPU
        DeviceFacts(device="pi", arch="aarch64", os_bits=32, glibc="2.36"),
        DeviceFacts(device="pi", arch="armv8l", os_bits=32, glibc="2.36"),
    ],
)
def test_a_32_bit_os_on_a_64_bit_cpu_warns(tmp_path, facts):
    assert device_machine(facts) == "arm"
    info = read_elf(
        elf(tmp_path / "lce", bits=32, machine="arm", interpreter="/lib/ld-linux.so.3")
    )
    warnings = check_binary(info, facts)
    assert len(warnings) == 1
    assert "64-bit OS" in warnings[0] and "#400" in warnings[0]


def test_a_32_bit_os_on_a_32_bit_cpu_does_not_warn(tmp_path):
    pi2 = DeviceFacts(device="pi", arch="armv7l", os_bits=32, glibc="2.36")
    info = read_elf(elf(tmp_path / "lce", bits=32, machine="arm"))
    assert check_binary(info, pi2) == []


def test_a_newer_glibc_than_the_device_has_is_refused(tmp_path):
    old = DeviceFacts(device="pi", arch="aarch64", os_bits=64, glibc="2.28")
    info = read_elf(elf(tmp_path / "lce", payload=b"GLIBC_2.29\0GLIBC_2.17\0"))
    with pytest.raises(DeviceError) as error:
        check_binary(info, old)
    assert "glibc 2.29" in error.value.what and "glibc 2.28" in error.value.what
    assert "64-bit OS" in error.value.fix and "build" in error.value.fix


def test_an_unknown_device_glibc_warns(tmp_path):
    facts = DeviceFacts(device="pi", arch="aarch64", os_bits=64)
    info = read_elf(elf(tmp_path / "lce", payload=b"GLIBC_2.29\0"))
    (warning,) = check_binary(info, facts)
    assert "needs glibc 2.29" in warning


def test_glibc_error_reads_a_failed_runs_log(tmp_path):
    info = read_elf(elf(tmp_path / "lce", bits=32, machine="arm"))
    log = (
        "./lce_benchmark_model: /lib/arm-linux-gnueabihf/libm.so.6: version "
        "`GLIBC_2.29' not found (required by ./lce_benchmark_model)\n"
    )
    error = glibc_error(log, info, PI32)
    assert isinstance(error, DeviceError)
    assert "glibc 2.29" in error.what and "glibc 2.28" in error.what
    assert "64-bit OS" in error.fix
    assert glibc_error("INFO: Initialized session in 3.1ms.\n", info, PI32) is None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))
