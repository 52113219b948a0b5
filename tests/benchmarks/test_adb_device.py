"""`AdbDevice` / `AdbShell`: the real adb client with no device attached, the
command lines as plain data, and the device logic through a stand-in adb.

The real-client tests start adb's server on a free private port
(`ANDROID_ADB_SERVER_PORT`) with `HOME` in a temp dir (adb writes its key
there), and `adb kill-server` afterwards, so no daemon is left running and no
other adb server is touched. Without `adb` (`apt-get install adb`, which
`.ci/run` does) they skip. A device or emulator cannot be attached here; the
states only a device shows (`unauthorized`, `offline`, several devices) and a
whole session (probe, push, run, clean-up) are checked with a stand-in `adb`
script that prints a given `adb devices` and runs `shell` commands with the
local `sh`, as a device's shell would.
"""

import json
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_bnn_af.benchmarks.devices import AdbDevice, AdbShell, DeviceError
from keras_bnn_af.benchmarks.devices.adb import parse_adb_devices

HOSTILE = "a b; touch pwned.tflite"
ADB = shutil.which("adb")

needs_adb = pytest.mark.skipif(
    ADB is None, reason="adb is not installed (apt-get install adb)"
)


@pytest.fixture
def adb_server(tmp_path, monkeypatch):
    """adb's real server on a private port; killed afterwards."""
    port = _free_port()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    subprocess.run([ADB, "start-server"], check=True, capture_output=True, timeout=60)
    try:
        devices = subprocess.run(
            [ADB, "devices"], check=True, capture_output=True, text=True, timeout=60
        ).stdout
        yield devices
    finally:
        subprocess.run([ADB, "kill-server"], capture_output=True, timeout=60)
        deadline = time.monotonic() + 10
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _listening(port), f"adb's server still listens on {port}"


@needs_adb
def test_no_device_attached_quotes_adb_devices(adb_server):
    if parse_adb_devices(adb_server):
        pytest.skip(f"a device is attached here: {adb_server!r}")
    with pytest.raises(DeviceError) as error:
        AdbDevice().probe()
    assert "No Android device is attached" in error.value.what
    assert "List of devices attached" in error.value.what  # adb's own words
    assert "USB debugging" in error.value.fix
    with pytest.raises(DeviceError, match="No Android device"):
        with AdbDevice():  # entering the context checks first
            pytest.fail("entered without a device")


@needs_adb
def test_a_serial_that_is_not_listed_is_named(adb_server):
    with pytest.raises(DeviceError) as error:
        AdbDevice("R58M12345AB").probe()
    assert "The device R58M12345AB is not attached" in error.value.what
    assert "List of devices attached" in error.value.what
    assert "--device adb:SERIAL" in error.value.fix


def test_a_missing_adb_client_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb on it
    for device in (AdbDevice(), AdbDevice(adb=str(tmp_path / "adb"))):
        with pytest.raises(DeviceError) as error:
            device.probe()
        assert "was not found" in error.value.what
        assert "apt-get install adb" in error.value.fix
        assert "platform-tools" in error.value.fix


def test_command_lines_are_plain_data(tmp_path):
    shell = AdbShell("emulator-5554")
    remote = f"/data/local/tmp/{HOSTILE}"
    assert shell.shell_argv(["ls", "-l", remote]) == [
        "adb",
        "-s",
        "emulator-5554",
        "shell",
        "ls -l '/data/local/tmp/a b; touch pwned.tflite'",
    ]
    local = tmp_path / HOSTILE
    assert shell.push_argv(local, remote) == [
        "adb",
        "-s",
        "emulator-5554",
        "push",
        str(local),
        "/data/local/tmp/a b; touch pwned.tflite.part",
    ]
    # No serial: adb picks the only device (after check_device, -s is added).
    assert AdbShell().shell_argv(["true"]) == ["adb", "shell", "true"]
    # A relative local path is made absolute, so `-x` is not read as an option.
    assert AdbShell("x").push_argv("-x.tflite", "/r")[4] == str(
        Path.cwd() / "-x.tflite"
    )
    # The remote line, run by a POSIX sh, is one command on one file name.
    line = shell.shell_argv(["touch", str(tmp_path / HOSTILE)])[-1]
    assert shlex.split(line) == ["touch", str(tmp_path / HOSTILE)]
    subprocess.run(["sh", "-c", line], cwd=tmp_path, check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [HOSTILE]


@pytest.mark.parametrize("serial", ["", "-s", "a b", "x\ny"])
def test_a_bad_serial_is_refused(serial):
    with pytest.raises(ValueError, match="Invalid adb serial"):
        AdbShell(serial)


def test_parse_adb_devices():
    text = (
        "* daemon not running; starting now at tcp:5037\n"
        "* daemon started successfully\n"
        "List of devices attached\n"
        "R58M12345AB\tdevice\n"
        "emulator-5554\toffline\n"
        "0123456789ABCDEF\tno permissions (user in plugdev group; are your udev "
        "rules wrong?); see [http://developer.android.com/tools/device.html]\n"
        "\n"
    )
    devices = parse_adb_devices(text)
    assert [serial for serial, _ in devices] == [
        "R58M12345AB",
        "emulator-5554",
        "0123456789ABCDEF",
    ]
    assert devices[1][1] == "offline"
    assert devices[2][1].startswith("no permissions")
    assert parse_adb_devices("List of devices attached\n\n") == []


@pytest.mark.parametrize(
    ("listing", "serial", "what", "fix"),
    [
        ("A1\tdevice\nB2\tdevice", None, "Several devices", "one of: A1, B2"),
        ("A1\tunauthorized", None, "is `unauthorized`", "Allow USB debugging"),
        ("A1\toffline", None, "is `offline`", "kill-server"),
        ("A1\tdevice\nB2\toffline", "B2", "B2 is `offline`", "replug"),
        ("A1\tno permissions (udev)", None, "no permissions", "udev rule"),
        ("A1\tdevice", "C3", "C3 is not attached", "lists (now: A1)"),
    ],
)
def test_device_states_from_adb_devices(fake_adb, listing, serial, what, fix):
    fake_adb.devices = listing
    with pytest.raises(DeviceError) as error:
        AdbDevice(serial, adb=fake_adb.path).probe()
    assert what in error.value.what
    # adb devices' output, quoted (as a Python literal: `\t` for a tab)
    assert repr(listing)[1:-1] in error.value.what
    assert fix in error.value.fix


def test_a_device_without_the_shell_protocol_is_refused(fake_adb):
    fake_adb.features = "cmd\nstat_v2"
    with pytest.raises(DeviceError, match="shell protocol") as error:
        AdbDevice(adb=fake_adb.path).probe()
    assert "Android 7" in error.value.expected


def test_a_session_through_adb(fake_adb, tmp_path):
    """probe, push (hostile name), run, exit status, clean-up: the commands a
    device's shell would get, run here by `sh`."""
    local = tmp_path / "local"
    local.mkdir()
    model = local / HOSTILE
    model.write_bytes(b"model bytes")
    temp_root = tmp_path / "data_local_tmp"
    temp_root.mkdir()
    with AdbDevice(adb=fake_adb.path, temp_root=str(temp_root)) as device:
        assert device.name == "adb:R58M12345AB"
        facts = device.probe()
        assert facts.device == "adb:R58M12345AB" and facts.arch
        work_dir = Path(device.work_dir())
        assert work_dir.parent == temp_root
        pushed = device.push_model(model)
        assert pushed.pushed and Path(pushed.path).read_bytes() == b"model bytes"
        assert device.push_model(model) == (pushed.path, False)
        remote = f"{work_dir}/{HOSTILE}"
        device.shell.push(model, remote, executable=True)
        assert stat.S_IMODE(os.stat(remote).st_mode) == 0o700
        assert not Path(f"{remote}.part").exists()
        log = device.run_benchmark(["printf", "%s\\n"], remote, runs=3)
        assert f"--graph={remote}\n--num_threads=1\n--num_runs=3\n" in log
        assert device.shell.run(["sh", "-c", "exit 7"]).returncode == 7
    assert not work_dir.exists()
    assert not any(p.name == "pwned.tflite" for p in tmp_path.rglob("*"))
    calls = fake_adb.calls()
    assert calls[0] == ["devices"]
    assert calls[1] == ["-s", "R58M12345AB", "features"]
    assert all(call[:2] == ["-s", "R58M12345AB"] for call in calls[1:])
    pushes = [call for call in calls if call[2:3] == ["push"]]
    assert pushes[-1] == ["-s", "R58M12345AB", "push", str(model), f"{remote}.part"]


def test_adb_losing_the_device_is_an_error(fake_adb):
    fake_adb.lose_device = True
    with pytest.raises(DeviceError, match="adb lost adb:R58M12345AB"):
        AdbDevice(adb=fake_adb.path).probe()


class FakeAdb:
    """A stand-in `adb` script; what it prints is set per test (as files)."""

    def __init__(self, root: Path):
        self.root = root
        self.path = str(root / "adb")
        Path(self.path).write_text(
            _FAKE_ADB.format(python=sys.executable, root=str(root))
        )
        os.chmod(self.path, 0o755)
        self.devices = "R58M12345AB\tdevice"
        self.features = "shell_v2\ncmd\nstat_v2"
        self.lose_device = False

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in ("devices", "features", "lose_device"):
            text = value if isinstance(value, str) else ("1" if value else "")
            (self.root / f"fake_{name}").write_text(text)

    def calls(self) -> list[list[str]]:
        lines = (self.root / "fake_calls").read_text().splitlines()
        return [json.loads(line) for line in lines]


_FAKE_ADB = """#!{python}
import json, os, shlex, shutil, subprocess, sys
root = {root!r}
said = lambda name: open(os.path.join(root, "fake_" + name)).read()
args = sys.argv[1:]
with open(os.path.join(root, "fake_calls"), "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:1] == ["-s"]:
    args = args[2:]
if args[0] == "devices":
    print("List of devices attached")
    print(said("devices"))
    print()
elif args[0] == "features":
    print(said("features"))
elif said("lose_device"):
    sys.exit("adb: error: device 'R58M12345AB' not found")
elif args[0] == "shell":
    assert len(args) == 2, args  # one command line
    sys.exit(subprocess.run(["sh", "-c", args[1]]).returncode)
elif args[0] == "push":
    shutil.copyfile(args[1], args[2])
    print(args[1] + ": 1 file pushed, 0 skipped.")
else:
    sys.exit("fake adb: unknown command " + shlex.join(args))
"""


@pytest.fixture
def fake_adb(tmp_path):
    root = tmp_path / "fake"
    root.mkdir()
    return FakeAdb(root)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
