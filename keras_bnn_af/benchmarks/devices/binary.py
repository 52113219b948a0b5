"""Will this benchmark binary run on that device? Checked before pushing it.

`read_elf` reads what matters from an ELF file: word size, machine, the
dynamic loader it asks for (`PT_INTERP`: `/lib/ld-linux-aarch64.so.1` on
glibc Linux, `/system/bin/linker64` on Android, none when static) and the
newest glibc symbol version it references. `check_binary` compares that with
a probed `DeviceFacts` and raises a `DeviceError` naming the right LCE
release asset when they do not fit:

| device | LCE release asset |
|---|---|
| 64-bit Linux on ARM (Raspberry Pi OS 64-bit...) | `lce_benchmark_model_aarch64` |
| 32-bit Linux on ARM | `lce_benchmark_model_aarch32` |
| Android on arm64 | `lce_benchmark_model_android_arm64` |

What users hit (larq/compute-engine issues): the prebuilt binary fails on
32-bit Raspbian with ``GLIBC_2.29' not found`` (#770), which `check_binary`
catches beforehand and `glibc_error` explains when it shows in a run's log;
and a binary net running slower than float on a 32-bit OS (#400, #383):
LCE's optimized kernels need the 64-bit OS, hence a warning when a 64-bit
CPU runs a 32-bit OS.
"""

import re
import struct
from dataclasses import dataclass
from pathlib import Path

from keras_bnn_af.benchmarks.devices.device import DeviceFacts
from keras_bnn_af.benchmarks.devices.shell import DeviceError

__all__ = [
    "ASSETS",
    "ElfInfo",
    "check_binary",
    "device_machine",
    "glibc_error",
    "read_elf",
]

#: LCE's release assets (larq/compute-engine's release workflow).
ASSETS = {
    ("linux", "aarch64"): "lce_benchmark_model_aarch64",
    ("linux", "arm"): "lce_benchmark_model_aarch32",
    ("android", "aarch64"): "lce_benchmark_model_android_arm64",
}
RELEASES = "https://github.com/larq/compute-engine/releases"
#: e_machine values (System V ABI) by the names used here.
MACHINES = {
    183: "aarch64",
    40: "arm",
    62: "x86_64",
    3: "x86",
    243: "riscv",
    8: "mips",
    20: "ppc",
    21: "ppc64",
}
_GLIBC_REF = re.compile(rb"GLIBC_(2\.\d+(?:\.\d+)?)(?![\d.])")
_GLIBC_NOT_FOUND = re.compile(r"GLIBC_(2\.\d+(?:\.\d+)?)'? not found")
_PT_INTERP = 3
_BUILD_FIX = (
    "build LCE's benchmark binary on the device (bazel, see larq/compute-engine's "
    "build docs)"
)


@dataclass(frozen=True)
class ElfInfo:
    """What `read_elf` found in an executable.

    # Attributes
        path: the file read.
        bits: 32 or 64 (ELF class).
        machine: `aarch64`, `arm`, `x86_64`, `x86`... (`EM_<n>` when unknown).
        interpreter: the dynamic loader (`PT_INTERP`); `None` when static.
        needed_glibc: the highest `GLIBC_2.x` version referenced (`2.29`);
            `None` when none is (static, Android, musl).
    """

    path: str
    bits: int
    machine: str
    interpreter: str | None
    needed_glibc: str | None

    @property
    def android(self) -> bool:
        """Linked for Android (its loader is `/system/bin/linker[64]`)."""
        return bool(self.interpreter and self.interpreter.startswith("/system/"))


def read_elf(path) -> ElfInfo:
    """Reads the ELF header, `PT_INTERP` and the newest glibc version needed.

    The header and program headers are unpacked with `struct`. The glibc
    version is the highest `GLIBC_2.x` string anywhere in the file's bytes (a
    regular expression over the bytes, not a parse of `.gnu.version_r`): the
    version names a binary requires are stored as such strings, and a binary
    rarely holds one it does not need.

    # Raises
        DeviceError: the file is not an ELF executable (a script, an HTML page
            saved in place of a download, a truncated file).
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or len(data) < 6 or data[4] not in (1, 2):
        raise _not_elf(path, data)
    bits = 64 if data[4] == 2 else 32
    if data[5] not in (1, 2):
        raise _not_elf(path, data)
    if len(data) < (64 if bits == 64 else 52):  # shorter than its header
        raise _not_elf(path, data, truncated=True)
    order = "<" if data[5] == 1 else ">"
    (e_machine,) = struct.unpack_from(order + "H", data, 18)
    try:
        interpreter = _interpreter(data, bits, order)
    except struct.error:
        raise _not_elf(path, data, truncated=True) from None
    versions = {match.decode() for match in _GLIBC_REF.findall(data)}
    return ElfInfo(
        path=str(path),
        bits=bits,
        machine=MACHINES.get(e_machine, f"EM_{e_machine}"),
        interpreter=interpreter,
        needed_glibc=max(versions, key=_version) if versions else None,
    )


def device_machine(facts: DeviceFacts) -> str | None:
    """The machine the device's userland runs (what a binary must be built
    for): `aarch64`, `arm`, `x86_64`, `x86`; `None` when unknown.

    A 32-bit OS on a 64-bit ARM CPU (`os_bits` 32 with `uname -m` aarch64 or
    armv8l) runs `arm` binaries.
    """
    arch = (facts.arch or "").lower()
    if arch in ("aarch64", "arm64", "armv8b", "armv8l") or arch.startswith("arm"):
        return "arm" if facts.os_bits == 32 or arch.startswith("armv") else "aarch64"
    if arch in ("x86_64", "amd64"):
        return "x86" if facts.os_bits == 32 else "x86_64"
    if re.fullmatch(r"i[3-6]86", arch):
        return "x86"
    return arch or None


def check_binary(elf: ElfInfo, facts: DeviceFacts) -> list[str]:
    """Warnings for running `elf` on the probed device.

    # Raises
        DeviceError: wrong architecture or word size, built for Android and
            not (or the reverse), or a newer glibc than the device has; the
            fix names the LCE release asset to use.
    """
    warnings = []
    android = _is_android(facts)
    machine = device_machine(facts)
    platform = "android" if android else "linux"
    asset = ASSETS.get((platform, machine or ""))
    if machine is not None and elf.machine != machine:
        raise DeviceError(
            f"{elf.path} is a {elf.bits}-bit {elf.machine} binary, but {facts.device} "
            f"runs {_describe(facts, machine)}.",
            f"a {machine} build of lce_benchmark_model.",
            _asset_fix(asset, platform, machine),
        )
    if elf.interpreter is not None and elf.android != android:
        built, runs = ("Android", "Linux") if elf.android else ("Linux", "Android")
        raise DeviceError(
            f"{elf.path} is built for {built} (its loader is {elf.interpreter}), but "
            f"{facts.device} runs {runs} ({facts.os_name or 'no os name'}).",
            f"a {runs} build of lce_benchmark_model.",
            _asset_fix(asset, platform, machine or elf.machine),
        )
    if _is_64bit_cpu(facts) and facts.os_bits == 32 and machine == "arm":
        warnings.append(
            f"{facts.device} has a 64-bit ARM CPU ({_cpu(facts)}) but runs a 32-bit "
            "OS: LCE's optimized binary kernels need the 64-bit OS, and binary "
            "models measured on a 32-bit OS can run slower than float "
            "(larq/compute-engine #400, #383). Install the 64-bit OS and use "
            "lce_benchmark_model_aarch64 for figures that match LCE's."
        )
    if elf.machine in ("x86_64", "x86"):
        warnings.append(
            "LCE has optimized kernels only for 32/64-bit ARM "
            "(larq/compute-engine #803): x86 latencies do not rank binary models "
            "as an ARM phone or board does."
        )
    if elf.needed_glibc and not elf.android and not android:
        if facts.glibc is None:
            warnings.append(
                f"{elf.path} needs glibc {elf.needed_glibc}, but the glibc version "
                f"of {facts.device} is unknown ({facts.libc or 'no libc reported'}); "
                "if it fails with `GLIBC_... not found`, the OS is too old."
            )
        elif _version(elf.needed_glibc) > _version(facts.glibc):
            raise _glibc_too_old(elf, facts, elf.needed_glibc)
    return warnings


def glibc_error(log_text: str, elf: ElfInfo, facts: DeviceFacts) -> DeviceError | None:
    """The `DeviceError` for a run that failed with ``GLIBC_2.xx' not found``;
    `None` when the log has no such line."""
    found = _GLIBC_NOT_FOUND.findall(log_text)
    if not found:
        return None
    return _glibc_too_old(elf, facts, max(found, key=_version))


def _glibc_too_old(elf: ElfInfo, facts: DeviceFacts, needed: str) -> DeviceError:
    has = facts.glibc or "an older version"
    return DeviceError(
        f"{elf.path} needs glibc {needed} (GLIBC_{needed}), but {facts.device} has "
        f"glibc {has} ({facts.os_name or 'OS unknown'}).",
        f"glibc {needed} or newer on the device.",
        "install a newer 64-bit OS on the device (e.g. Raspberry Pi OS 64-bit) and "
        f"use lce_benchmark_model_aarch64, or {_BUILD_FIX} so it links against "
        "the device's own glibc.",
    )


def _interpreter(data: bytes, bits: int, order: str) -> str | None:
    if bits == 64:
        (phoff,) = struct.unpack_from(order + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
    else:
        (phoff,) = struct.unpack_from(order + "I", data, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 42)
    for index in range(phnum):
        at = phoff + index * phentsize
        if bits == 64:
            p_type, _, offset, _, _, size = struct.unpack_from(
                order + "IIQQQQ", data, at
            )
        else:
            p_type, offset, _, _, size = struct.unpack_from(order + "IIIII", data, at)
        if p_type == _PT_INTERP:
            raw = data[offset : offset + size]
            if len(raw) < size:
                raise struct.error("PT_INTERP past the end of the file")
            return raw.split(b"\0", 1)[0].decode(errors="replace") or None
    return None


def _not_elf(path: Path, data: bytes, truncated: bool = False) -> DeviceError:
    head = data[:512].lstrip().lower()
    if truncated:
        kind = "a truncated ELF file"
    elif head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        kind = "an HTML page (a web page saved in place of the download)"
    elif data.startswith(b"#!"):
        kind = f"a script ({data[:60].splitlines()[0].decode(errors='replace')})"
    elif not data:
        kind = "an empty file"
    else:
        kind = f"not an ELF file (it starts with {data[:8]!r})"
    return DeviceError(
        f"{path} is {kind}.",
        "LCE's lce_benchmark_model: an ELF executable for the device.",
        f"download the release asset for the device ({', '.join(ASSETS.values())}) "
        f"from {RELEASES} (the file itself, not its web page), or {_BUILD_FIX}.",
    )


def _asset_fix(asset: str | None, platform: str, machine: str | None) -> str:
    if asset:
        return f"use {asset} from {RELEASES}."
    return (
        f"LCE publishes no benchmark binary for {platform} on {machine or 'this CPU'}; "
        f"{_BUILD_FIX}."
    )


def _describe(facts: DeviceFacts, machine: str) -> str:
    os_name = facts.os_name or ("Android" if _is_android(facts) else "Linux")
    bits = f"{facts.os_bits}-bit " if facts.os_bits else ""
    return f"{bits}{os_name} on {facts.arch} (needs {machine} binaries)"


def _is_android(facts: DeviceFacts) -> bool:
    return bool(facts.os_name and facts.os_name.startswith("Android"))


def _is_64bit_cpu(facts: DeviceFacts) -> bool:
    """`uname -m` of a 64-bit ARM kernel, or an ARMv8 CPU or board, as probed."""
    arch = (facts.arch or "").lower()
    if arch in ("aarch64", "arm64") or arch.startswith("armv8"):
        return True
    said = f"{facts.cpu_model or ''} {facts.board or ''}"
    return bool(
        re.search(r"ARMv8|Cortex-A(35|53|55|57|72|73|75|76|77|78)\b", said)
        or re.search(r"Raspberry Pi (3|4|5|400|Zero 2|Compute Module [345])", said)
    )


def _cpu(facts: DeviceFacts) -> str:
    return ", ".join(x for x in (facts.arch, facts.cpu_model, facts.board) if x)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))
