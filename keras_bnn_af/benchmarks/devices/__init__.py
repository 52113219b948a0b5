"""Devices that run LCE's benchmark binary: a shell transport plus shared code.

| module | what |
|---|---|
| `shell` | `Shell`, `LocalShell`, `SshShell`: run an argv, push a file |
| `device` | `Device`, `SshDevice`, `LocalDevice`: probe, push, run, clean up |
"""

from keras_bnn_af.benchmarks.devices.device import (
    Device,
    DeviceFacts,
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
    "parse_probe",
]
