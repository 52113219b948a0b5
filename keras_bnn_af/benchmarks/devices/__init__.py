"""Devices that run LCE's benchmark binary: a shell transport plus shared code.

| module | what |
|---|---|
| `shell` | `Shell`, `LocalShell`, `SshShell`: run an argv, push a file |
| `device` | `Device`, `SshDevice`, `LocalDevice` = `HostDevice`: probe, push, run |
| `adb` | `AdbShell`, `AdbDevice`: an Android device over adb |
| `binary` | `read_elf`, `check_binary`: does this benchmark binary fit the device |
"""

from keras_bnn_af.benchmarks.devices.adb import AdbDevice, AdbShell
from keras_bnn_af.benchmarks.devices.binary import (
    ElfInfo,
    check_binary,
    glibc_error,
    read_elf,
)
from keras_bnn_af.benchmarks.devices.device import (
    Device,
    DeviceFacts,
    HostDevice,
    LocalDevice,
    Pushed,
    SshDevice,
    parse_probe,
)
from keras_bnn_af.benchmarks.devices.shell import (
    Completed,
    DeviceError,
    LocalShell,
    Shell,
    ShellTimeout,
    SshError,
    SshShell,
)

__all__ = [
    "AdbDevice",
    "AdbShell",
    "ElfInfo",
    "HostDevice",
    "Completed",
    "Device",
    "DeviceError",
    "DeviceFacts",
    "LocalDevice",
    "LocalShell",
    "Pushed",
    "Shell",
    "ShellTimeout",
    "SshDevice",
    "SshError",
    "SshShell",
    "check_binary",
    "glibc_error",
    "parse_probe",
    "read_elf",
]
