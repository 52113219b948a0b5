"""`SshDevice` end to end against a real, throwaway OpenSSH server.

The session fixture `sshd` (`tests/sshd_server.py`, shared through
`tests/conftest.py`) starts Debian's `/usr/sbin/sshd` on 127.0.0.1 (a free
port, retried when taken) with a host key, a user key, `authorized_keys` and
`known_hosts` made in a temp dir; no system configuration is read or written.
Without `/usr/sbin/sshd` (`apt-get install openssh-server`, which `.ci/run`
does) these tests skip; the parser test still runs.
"""

import hashlib
import json
import os
import platform
import shutil
import signal
import struct
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from keras_bnn_af.benchmarks.devices import DeviceError, SshError, parse_probe
from tests.sshd_server import free_port, needs_sshd

TWIN = [sys.executable, "-m", "keras_bnn_af.benchmarks.benchmark_model"]
HOSTILE = "a b; touch pwned.tflite"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import larq_compute_engine as lce

    from keras_bnn_af.testing import binary_block_net

    path = tmp_path_factory.mktemp("model") / "tiny.tflite"
    path.write_bytes(
        lce.convert_keras_model(binary_block_net("ste_sign", filters=(8, 8)))
    )
    return path


@needs_sshd
def test_probe_reports_this_machine(sshd):
    with sshd.device() as device:
        facts = device.probe()
    assert facts.arch == platform.machine()
    assert facts.cores == os.cpu_count()
    assert facts.os_bits == 8 * struct.calcsize("P")
    assert facts.device == f"ssh://{sshd.target}:{sshd.port}"
    libc, version = platform.libc_ver()
    if libc == "glibc":
        assert facts.glibc == version
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model_names = [
        line.split(":", 1)[1].strip()
        for line in cpuinfo.splitlines()
        if line.startswith("model name")
    ]
    if model_names:
        assert facts.cpu_model == model_names[0]
    assert json.loads(json.dumps(facts.to_json()))["arch"] == platform.machine()


@needs_sshd
def test_push_is_content_addressed_and_skipped_when_there(sshd, model):
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    with sshd.device() as device:
        work_dir = device.work_dir()
        assert os.stat(work_dir).st_mode & 0o777 == 0o700
        first = device.push_model(model)
        assert first.pushed and first.path == f"{work_dir}/{digest}.tflite"
        assert Path(first.path).read_bytes() == model.read_bytes()
        assert device.push_model(model) == (first.path, False)
        Path(first.path).write_bytes(b"damaged")  # a different sha256: pushed again
        assert device.push_model(model).pushed
        assert Path(first.path).read_bytes() == model.read_bytes()


@needs_sshd
@pytest.mark.parametrize("threads", [1, 2])
def test_runs_the_host_twin_over_ssh_and_parses_its_log(sshd, model, threads):
    from keras_bnn_af.benchmarks.logs import parse_benchmark_log

    with sshd.device() as device:
        remote, _ = device.push_model(model)
        log = device.run_benchmark(TWIN, remote, threads=threads, runs=5, warmup=1)
    parsed = parse_benchmark_log(log)
    assert parsed.count == 5 and parsed.inference_avg_ms > 0
    assert f"Num threads: [{threads}]" in log


@needs_sshd
def test_a_hostile_file_name_is_only_a_file_name(sshd, model, tmp_path):
    from keras_bnn_af.benchmarks.logs import parse_benchmark_log

    local = tmp_path / HOSTILE
    shutil.copyfile(model, local)
    places = {Path.home(), Path.cwd(), tmp_path}
    with sshd.device() as device:
        work_dir = Path(device.work_dir())
        places.add(work_dir)
        assert device.push_model(local).pushed
        remote = f"{work_dir}/{HOSTILE}"
        device.shell.push(local, remote)
        assert Path(remote).read_bytes() == model.read_bytes()
        log = device.run_benchmark(TWIN, remote, runs=2)
        assert parse_benchmark_log(log).count == 2
        assert f"Graph: [{remote}]" in log
        created = [place / "pwned.tflite" for place in places]
        assert not any(path.exists() for path in created), created
        assert sorted(p.name for p in work_dir.iterdir()) == sorted(
            [HOSTILE, f"{hashlib.sha256(model.read_bytes()).hexdigest()}.tflite"]
        )


@needs_sshd
def test_work_dir_is_removed_after_success_and_after_an_exception(sshd, model):
    with sshd.device() as device:
        device.push_model(model)
        work_dir = device.work_dir()
    assert not os.path.exists(work_dir)
    with pytest.raises(RuntimeError, match="boom"), sshd.device() as device:
        device.push_model(model)
        work_dir = device.work_dir()
        raise RuntimeError("boom")
    assert not os.path.exists(work_dir)


@needs_sshd
def test_ctrl_c_stops_the_remote_run_and_cleans_up(sshd):
    marker = f"{900 + uuid.uuid4().int % 99}.{uuid.uuid4().int % 1000}"
    sleeper = ["sh", "-c", f"sleep {marker}; true", "sleeper"]
    main = threading.main_thread().ident
    running = []

    def interrupt():  # Ctrl-C once the remote run is under way
        deadline = time.monotonic() + 60
        while not running and time.monotonic() < deadline:
            running.extend(_processes_with(f"sleep {marker}"))
            time.sleep(0.1)
        time.sleep(0.5)
        signal.pthread_kill(main, signal.SIGINT)

    # A shell starting the suite in the background (`cmd &`) leaves SIGINT
    # ignored, and Python then installs no handler: install Ctrl-C's own.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    try:
        with pytest.raises(KeyboardInterrupt), sshd.device() as device:
            work_dir = device.work_dir()
            device.run_benchmark(sleeper, "m.tflite", timeout=120)
    finally:
        signal.signal(signal.SIGINT, previous)
    thread.join()
    assert running, "the remote run had not started when Ctrl-C came"
    assert not os.path.exists(work_dir)
    assert _processes_with(f"sleep {marker}") == []


@needs_sshd
def test_a_run_past_its_timeout_is_stopped_on_the_device(sshd):
    marker = f"{800 + uuid.uuid4().int % 99}.{uuid.uuid4().int % 1000}"
    with sshd.device() as device:
        with pytest.raises(DeviceError, match="ran past its 1 s timeout"):
            device.run_benchmark(["sh", "-c", f"sleep {marker}", "s"], "m", timeout=1)
    assert _processes_with(f"sleep {marker}") == []


@needs_sshd
def test_an_unreachable_port_names_host_and_port(sshd):
    port = free_port()  # nothing listens on it
    device = sshd.device(port=port, connect_timeout=3)
    with pytest.raises(SshError, match=f"Cannot reach 127.0.0.1:{port}") as error:
        device.probe()
    assert error.value.kind == "unreachable" and "Fix:" in str(error.value)


@needs_sshd
def test_a_wrong_key_is_an_authentication_failure_naming_the_key(sshd, tmp_path):
    with pytest.raises(SshError, match="Authentication failed") as error:
        sshd.device(identity=sshd.wrong_key).probe()
    assert error.value.kind == "authentication"
    assert str(sshd.wrong_key) in str(error.value) and "ssh-copy-id" in str(error.value)
    missing = tmp_path / "no_such_key"
    with pytest.raises(SshError, match="does not exist or is not readable") as error:
        sshd.device(identity=missing).probe()
    assert str(missing) in str(error.value)


@needs_sshd
def test_host_keys_unknown_accepted_on_request_and_changed(sshd, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    with pytest.raises(SshError, match="--accept-new-host-key") as error:
        sshd.device(known_hosts=known_hosts).probe()
    assert error.value.kind == "host-key-unknown"
    assert f"127.0.0.1:{sshd.port}" in str(error.value)
    facts = sshd.device(known_hosts=known_hosts, accept_new_host_key=True).probe()
    assert facts.arch == platform.machine()
    host_key = (sshd.root / "host_key.pub").read_text().split()[1]
    assert host_key in known_hosts.read_text()  # recorded (hashed by Debian)
    other_key = (sshd.root / "wrong_key.pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {other_key[0]} {other_key[1]}\n")
    for accept in (False, True):  # accept-new never accepts a changed key
        with pytest.raises(SshError, match="has changed") as error:
            sshd.device(known_hosts=known_hosts, accept_new_host_key=accept).probe()
        assert error.value.kind == "host-key-changed"


def test_probe_output_of_a_big_little_board_without_glibc():
    text = "\n".join(
        [
            "arch\taarch64",
            "long_bit\t64",
            "ldd\t",
            "android\t14",
            "processors\t8",
            "nproc\t8",
            "cpuinfo\tHardware\t: Qualcomm Technologies, Inc SM8550",
            *(f"max_freq.{cpu}\t{1804800 if cpu < 4 else 2803200}" for cpu in range(8)),
            *(f"governor.{cpu}\tschedutil" for cpu in range(8)),
            "temp.cpu-0\t41250",
            "temp.battery\t31",
            "temp.broken\tn/a",
            "garbage line without a tab",
        ]
    )
    facts = parse_probe(text, "adb:R5CT")
    assert (facts.arch, facts.os_bits, facts.cores, facts.glibc) == (
        "aarch64",
        64,
        8,
        None,
    )
    assert facts.os_name == "Android 14" and facts.cpu_model.startswith("Qualcomm")
    assert facts.big_cores == (4, 5, 6, 7) and facts.governor == "schedutil"
    assert facts.temperatures_c == {"cpu-0": 41.2, "battery": 31.0}
    assert facts.temperature_c == 41.2
    empty = parse_probe("", "x")
    assert empty.arch is None and empty.temperature_c is None and empty.big_cores == ()


def test_android_probe_reads_the_abi_and_the_thermal_services():
    # What PROBE_SCRIPT prints on a phone whose toybox has no getconf LONG_BIT
    # and whose thermal zones are not readable by the shell user.
    text = "\n".join(
        [
            "arch\taarch64",
            "android\t13",
            "abi\tarm64-v8a",
            "battery_temp\t312",
            "thermal\tTemperature{mValue=44.3, mType=0, mName=CPU0, mStatus=0}",
            "thermal\tTemperature{mValue=39.0, mType=2, mName=battery, mStatus=0}",
            "thermal\tTemperature{mValue=NaN, mType=3, mName=broken, mStatus=0}",
        ]
    )
    facts = parse_probe(text, "adb:R5CT")
    assert (facts.abi, facts.os_bits) == ("arm64-v8a", 64)
    assert facts.temperatures_c == {"battery": 31.2, "CPU0": 44.3}
    assert facts.temperature_c == 44.3
    assert parse_probe("abi\tarmeabi-v7a\n", "adb:old").os_bits == 32
    assert parse_probe("long_bit\t32\nabi\tarm64-v8a\n", "x").os_bits == 32


def _processes_with(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found
