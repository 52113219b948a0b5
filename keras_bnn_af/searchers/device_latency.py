"""A trial's latency measured on a device with LCE's benchmark binary.

```python
measure = DeviceLatency("ssh://pi@raspberrypi.local", threads=4,
                        binary="lce_benchmark_model_aarch64")
measure(flatbuffer)   # ms: the binary's average over `runs` timed inferences
```

The device runners of `keras-bnn-af bench` (`keras_bnn_af.benchmarks`):
every call opens the device, probes it, checks the binary against it (ELF
architecture, glibc), pushes the binary and the model (content-addressed),
runs the binary once with `runs` timed inferences after `warmup` and cleans
up. `local` runs the host twin (`keras-bnn-af-benchmark-model`) on this
machine by default. ssh checks the host key strictly against the user's
`known_hosts` (or the file given as `known_hosts=`): connect once by hand (or
with `keras-bnn-af bench --accept-new-host-key`) before a search.
"""

import os
import tempfile
from pathlib import Path

__all__ = ["DeviceLatency"]

DEVICE_FORMS = "local, ssh://user@host[:port] or adb[:SERIAL]"


class DeviceLatency:
    """Milliseconds per inference of a `.tflite` flatbuffer on a device.

    # Arguments
        device: `local`, `ssh://user@host[:port]` or `adb[:SERIAL]`.
        binary: LCE's `lce_benchmark_model` for the device (required for ssh
            and adb; `local` defaults to the host twin).
        identity: the ssh private key file.
        known_hosts: ssh only: the known_hosts file that holds the device's
            host key (`UserKnownHostsFile`, as `SshDevice(known_hosts=)`);
            None for the user's `~/.ssh/known_hosts`. Host keys are checked
            strictly either way: an unknown or changed key fails the trial.
        threads, runs, warmup, timeout: as for `compare_on_device`.
    """

    def __init__(
        self,
        device: str,
        *,
        binary: str | os.PathLike | None = None,
        identity: str | os.PathLike | None = None,
        known_hosts: str | os.PathLike | None = None,
        threads: int = 1,
        runs: int = 20,
        warmup: int = 1,
        timeout: float = 600,
    ):
        from keras_bnn_af.cli_bench import device_spec

        try:
            self.spec = device_spec(device)
        except Exception as error:  # argparse.ArgumentTypeError: what/expected/fix
            raise ValueError(f"--measure {error}") from None
        if self.spec == ("host",):
            raise ValueError(
                "DeviceLatency got 'host', which runs no benchmark binary; expected "
                f"{DEVICE_FORMS}. Fix: use TrialLatency(measure='host') for LCE's "
                "interpreter in this process."
            )
        if binary is None and self.spec[0] != "local":
            raise ValueError(
                f"--measure {device} needs LCE's benchmark binary for the device; "
                "expected --binary PATH (an lce_benchmark_model release asset, "
                "which keras-bnn-af never downloads). Fix: pass --binary."
            )
        if binary is not None and not Path(binary).is_file():
            raise ValueError(
                f"--binary {str(binary)!r} does not exist or is not a file; expected "
                "LCE's lce_benchmark_model for the device. Fix: check the path."
            )
        self.name = device
        self.binary = binary
        self.identity = identity
        self.known_hosts = known_hosts
        self.options = {
            "threads": threads,
            "runs": runs,
            "warmup": warmup,
            "timeout": timeout,
        }

    def __call__(self, flatbuffer: bytes) -> float:
        from keras_bnn_af.benchmarks.compare import TWIN_COMMAND, compare_on_device

        binary = self.binary if self.binary is not None else TWIN_COMMAND
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "trial.tflite"
            path.write_bytes(flatbuffer)
            with self._device() as device:
                result = compare_on_device(
                    device, binary, path, rounds=1, **self.options
                )
        return result.a.median

    def _device(self):
        from keras_bnn_af.benchmarks import devices

        kind = self.spec[0]
        if kind == "local":
            return devices.LocalDevice()
        if kind == "ssh":
            _, user, host, port = self.spec
            return devices.SshDevice(
                f"{user}@{host.strip('[]')}",
                port=port,
                identity=self.identity,
                known_hosts=self.known_hosts,
            )
        return devices.AdbDevice(self.spec[1])
