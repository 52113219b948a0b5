"""Android devices over adb: `AdbShell` (the transport) and `AdbDevice`.

`AdbShell.run` is `adb -s SERIAL shell <one command line>`: adb joins its
arguments with spaces into a single remote command line for the device's
shell, so the argv is sent as one `shlex.join(argv)` string and every argument
reaches the device as one quoted word (a file named `a b; touch pwned.tflite`
stays a file name). Modern adb (client and device, Android 7+) speaks the
shell protocol ("shell v2") and returns the remote command's exit status;
without it adb always exits 0, so such a device is refused rather than read
wrongly (the `shell_v2` feature is checked once, with `adb features`).

`AdbShell.push` is `adb -s SERIAL push LOCAL REMOTE.part` then a remote
`mv -f`, like the ssh push, so an interrupted copy never leaves the final
name.

Before the first command, `adb devices` picks the device: none attached,
several without a serial, a serial not listed, or a device `unauthorized`,
`offline` or without permissions is a `DeviceError` quoting what `adb devices`
said and the fix. The serial found is then always passed with `-s`, so a
device plugged in later cannot take over the session.

Android's `/data/local/tmp` (writable by adb's `shell` user) is the temp root.
`Device`'s probe, work dir, run and clean-up scripts are plain POSIX shell and
run unchanged on Android's toybox/mksh: `getprop` already names the Android
release, and `/sys/class/thermal` zones are read where SELinux allows.
"""

import os
import re
import shlex

from keras_bnn_af.benchmarks.devices.device import Device
from keras_bnn_af.benchmarks.devices.shell import (
    Completed,
    DeviceError,
    Shell,
    _run_process,
    _tail,
)

__all__ = ["ANDROID_TEMP_ROOT", "AdbDevice", "AdbShell", "parse_adb_devices"]

ANDROID_TEMP_ROOT = "/data/local/tmp"
_INSTALL_FIX = (
    "install Android's adb client: `apt-get install adb` (Debian/Ubuntu) or "
    "Android SDK platform-tools (developer.android.com/tools/releases/"
    "platform-tools), and put `adb` on PATH."
)
_CONNECT_FIX = (
    "plug the device in by USB, enable USB debugging (Settings > Developer "
    "options) and accept this computer's key on its screen; `adb devices` must "
    "then list it as `device`."
)
#: adb's own failures (not the remote command's): the device went away.
_ADB_FAILED = re.compile(
    r"^(adb: )?error: (device .* not found|device offline|device unauthorized"
    r"|closed|no devices|protocol fault|more than one)",
    re.MULTILINE,
)
_FINISH_SCRIPT = 'mv -f -- "$1.part" "$1"'


def parse_adb_devices(text: str) -> list[tuple[str, str]]:
    """`(serial, state)` pairs from `adb devices` output.

    The state is the rest of the line (`device`, `unauthorized`, `offline`,
    `no permissions (...)`, `recovery`...); daemon start-up lines (`* ...`)
    and the `List of devices attached` header are skipped.
    """
    devices = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("*") or line.startswith("List of devices"):
            continue
        serial, _, state = line.partition("\t")
        if not state:  # some adb versions pad with spaces instead of a tab
            serial, _, state = line.partition(" ")
        devices.append((serial.strip(), state.strip() or "unknown"))
    return devices


class AdbShell(Shell):
    """An Android device reached with the adb client.

    # Arguments
        serial: the device's serial (as `adb devices` lists it); `None` takes
            the only attached device.
        adb: the adb client to run (a name on PATH or a path).
    """

    def __init__(self, serial: str | None = None, adb: str = "adb"):
        if serial is not None and (
            not serial or serial.startswith("-") or any(c.isspace() for c in serial)
        ):
            raise ValueError(
                f"Invalid adb serial {serial!r}. Expected a serial as `adb devices` "
                "lists it (no spaces, not starting with '-'). Fix: pass e.g. "
                "--device adb:R58M12345AB."
            )
        self.requested = serial
        self.serial: str | None = None  # the device checked, once checked
        self.adb = adb
        self.name = f"adb:{serial}" if serial else "adb"

    # -- argv, as plain data -------------------------------------------------
    def adb_argv(self, *args: str) -> list[str]:
        """`adb [-s SERIAL] args...` (the checked serial, else the requested)."""
        serial = self.serial or self.requested
        return [self.adb, *(["-s", serial] if serial else []), *args]

    def shell_argv(self, argv: list[str]) -> list[str]:
        """The local command that runs `argv` on the device: one quoted line."""
        return self.adb_argv("shell", shlex.join(argv))

    def push_argv(self, local_path: str | os.PathLike, remote_path: str) -> list[str]:
        """The local `adb push` to `remote_path.part` (an absolute local path,
        so a file name starting with `-` is not read as an option)."""
        return self.adb_argv(
            "push", os.path.abspath(os.fspath(local_path)), f"{remote_path}.part"
        )

    # -- Shell -----------------------------------------------------------------
    def run(self, argv, *, timeout=None, stdin=None) -> Completed:
        self.check_device()
        completed = self._adb(
            self.shell_argv(list(argv)),
            timeout=timeout,
            stdin=stdin,
            shown=[f"{self.name}:", *argv],
        )
        self._raise_if_adb_failed(completed)
        return completed

    def push(self, local_path, remote_path, *, executable=False) -> None:
        if not remote_path.startswith("/"):
            raise ValueError(f"remote_path must be absolute, got {remote_path!r}")
        self.check_device()
        completed = self._adb(
            self.push_argv(local_path, remote_path),
            timeout=None,
            stdin=None,
            shown=["adb", "push", os.fspath(local_path), remote_path],
        )
        if completed.returncode == 0:
            script = _FINISH_SCRIPT + (' && chmod 700 "$1"' if executable else "")
            completed = self.run(["sh", "-c", script, "sh", remote_path], timeout=60)
        if completed.returncode != 0:
            said = _tail((completed.stderr + completed.stdout).strip(), 3)
            try:  # best effort: the device may be gone
                self.run(["rm", "-f", "--", f"{remote_path}.part"], timeout=60)
            except DeviceError:
                pass
            raise DeviceError(
                f"Copying {local_path} to {self.name}:{remote_path} failed "
                f"(exit status {completed.returncode}: {said!r}).",
                f"a writable directory with free space (e.g. {ANDROID_TEMP_ROOT}).",
                "check free space on the device (`adb shell df -h "
                f"{ANDROID_TEMP_ROOT}`) and that the device stays connected.",
            )

    # -- the device check ------------------------------------------------------
    def check_device(self) -> str:
        """The serial to use, from `adb devices`; raises `DeviceError` if none.

        Runs once; later calls return the serial found.
        """
        if self.serial is not None:
            return self.serial
        completed = self._adb([self.adb, "devices"], timeout=60, shown=None)
        said = (completed.stdout.strip() or completed.stderr.strip())[-800:]
        if completed.returncode != 0:
            raise DeviceError(
                f"`{self.adb} devices` failed (exit status {completed.returncode}: "
                f"{_tail(completed.stderr + completed.stdout)!r}).",
                "the adb server to start and list devices.",
                f"run `{self.adb} kill-server && {self.adb} devices` to see the "
                "problem.",
            )
        devices = parse_adb_devices(completed.stdout)
        listed = ", ".join(f"{s} ({state})" for s, state in devices) or "none"
        serials = ", ".join(s for s, _ in devices)
        if self.requested is not None:
            states = dict(devices)
            if self.requested not in states:
                raise DeviceError(
                    f"The device {self.requested} is not attached to adb (`adb "
                    f"devices` said: {said!r}).",
                    f"{self.requested} listed as `device` by `adb devices`.",
                    "check the serial and pass --device adb:SERIAL with one that "
                    f"`adb devices` lists (now: {serials or 'none'}); if "
                    f"{self.requested} is the device you mean: {_CONNECT_FIX}",
                )
            serial, state = self.requested, states[self.requested]
        elif not devices:
            raise DeviceError(
                f"No Android device is attached to adb (`adb devices` said: {said!r}).",
                "one device listed as `device` by `adb devices`.",
                _CONNECT_FIX,
            )
        elif len(devices) > 1:
            raise DeviceError(
                f"Several devices are attached to adb ({listed}; `adb devices` "
                f"said: {said!r}), and no serial was given.",
                "one device, or a serial naming which one to use.",
                f"pass --device adb:SERIAL with one of: {serials}.",
            )
        else:
            serial, state = devices[0]
        if state != "device":
            raise DeviceError(
                f"The device {serial} is `{state}` (`adb devices` said: {said!r}).",
                f"{serial} listed as `device`.",
                _state_fix(state),
            )
        self.serial = serial
        self.name = f"adb:{serial}"
        self._check_shell_protocol()
        return serial

    def _check_shell_protocol(self) -> None:
        completed = self._adb(self.adb_argv("features"), timeout=60, shown=None)
        features = set(completed.stdout.split())
        if completed.returncode == 0 and "shell_v2" not in features:
            raise DeviceError(
                f"{self.name} does not speak adb's shell protocol (`adb features`: "
                f"{' '.join(sorted(features))!r}), so exit statuses of commands "
                "run there cannot be read.",
                "Android 7 or newer and an adb client from platform-tools 24+.",
                "update the adb client (Android SDK platform-tools), or use a "
                "device running Android 7+.",
            )

    def _adb(self, argv, *, timeout, stdin=None, shown) -> Completed:
        try:
            return _run_process(argv, timeout=timeout, stdin=stdin, shown=shown or argv)
        except FileNotFoundError:
            raise DeviceError(
                f"The adb client `{self.adb}` was not found on this machine.",
                "Android's adb client on PATH.",
                _INSTALL_FIX,
            ) from None
        except PermissionError as error:
            raise DeviceError(
                f"The adb client `{self.adb}` cannot be run ({error}).",
                "an executable adb client.",
                _INSTALL_FIX,
            ) from None

    def _raise_if_adb_failed(self, completed: Completed) -> None:
        if completed.returncode == 0:
            return
        match = _ADB_FAILED.search(completed.stderr)
        if match:
            raise DeviceError(
                f"adb lost {self.name} ({match.group(0)!r}).",
                "the device to stay connected and authorized.",
                "check the cable and the device's screen, then run again; "
                f"`{self.adb} devices` must list it as `device`.",
            )


class AdbDevice(Device):
    """An Android device over adb; its work dir is made in `/data/local/tmp`.

    Entering the context checks `adb devices`, so a missing or unauthorized
    device fails before anything else.

    # Arguments
        serial: see `AdbShell`; `None` for the only attached device.
        adb: the adb client.
        temp_root: the remote directory the work dir is made in.
    """

    def __init__(
        self,
        serial: str | None = None,
        *,
        adb: str = "adb",
        temp_root: str = ANDROID_TEMP_ROOT,
    ):
        super().__init__(AdbShell(serial, adb=adb), temp_root=temp_root)

    def __enter__(self):
        self.shell.check_device()
        return self


def _state_fix(state: str) -> str:
    if state == "unauthorized":
        return (
            "unlock the device and accept the 'Allow USB debugging?' prompt (tick "
            "'Always allow from this computer'); if no prompt shows, revoke USB "
            "debugging authorizations in Developer options and replug."
        )
    if state == "offline":
        return (
            "replug the cable, or restart adb's server (`adb kill-server && adb "
            "devices`); accept the key prompt on the device if one shows."
        )
    if state.startswith("no permissions"):
        return (
            "this user may not open the USB device: add a udev rule for it (e.g. "
            "Debian's android-sdk-platform-tools-common package) and put the user "
            "in the plugdev group, then replug."
        )
    return (
        f"boot the device normally (it is in `{state}` mode) with USB debugging "
        "enabled; " + _CONNECT_FIX
    )
