"""A real, throwaway OpenSSH server on 127.0.0.1 for the tests (`sshd` fixture).

The session fixture `sshd` (exposed to every test by `tests/conftest.py`)
starts Debian's `/usr/sbin/sshd` on 127.0.0.1 (a free port, retried when
taken) with a host key, a user key, `authorized_keys` and `known_hosts` made in
a temp dir; no system configuration is read or written (`-f` names our config;
as root, sshd also needs its empty privilege separation dir `/run/sshd`, which
is made if missing, as Debian's service does). It yields an `Sshd`:
`server.target` (`user@127.0.0.1`), `server.port`, `server.key` (the user's
private key) and `server.known_hosts` (a file holding only the server's host
key: pass it on, never touch the user's `~/.ssh/known_hosts`). Without
`/usr/sbin/sshd` (`apt-get install openssh-server`, which `.ci/run` does) the
fixture skips; mark such tests `@needs_sshd` to skip them before set-up.

pytest runs with `--import-mode=importlib`, which names test modules after
their path under the rootdir (`tests.benchmarks.test_ssh_device`): import this
module as `tests.sshd_server`.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from keras_bnn_af.benchmarks.devices import SshDevice, SshError, SshShell

__all__ = ["SSHD", "Sshd", "free_port", "needs_sshd", "sshd"]

SSHD = "/usr/sbin/sshd"

needs_sshd = pytest.mark.skipif(
    not os.path.exists(SSHD) or shutil.which("ssh") is None,
    reason=f"{SSHD} or ssh is not installed (apt-get install openssh-server "
    "openssh-client); the ssh device tests need a real sshd",
)


class Sshd:
    """A running throwaway sshd and the files to reach it."""

    def __init__(self, root: Path):
        self.root = root
        self.user = _user()
        self.key = root / "user_key"
        self.wrong_key = root / "wrong_key"
        self.host_key = root / "host_key"
        self.known_hosts = root / "known_hosts"
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def target(self) -> str:
        return f"{self.user}@127.0.0.1"

    def device(self, **options) -> SshDevice:
        options = {
            "port": self.port,
            "identity": self.key,
            "known_hosts": self.known_hosts,
            "connect_timeout": 5,
            **options,
        }
        return SshDevice(self.target, **options)

    def start(self, deadline_s: float = 30) -> None:
        for key in (self.key, self.wrong_key, self.host_key):
            _keygen(key)
        shutil.copyfile(f"{self.key}.pub", self.root / "authorized_keys")
        if os.geteuid() == 0:
            # sshd's compiled-in privilege separation dir (Debian's unit makes it).
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        for _ in range(5):
            self.port = free_port()
            config = self.root / "sshd_config"
            config.write_text(_config(self.root, self.host_key, self.port))
            log = self.root / "sshd.log"
            with log.open("wb") as stderr:
                self.process = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                )
            if self._wait_until_ready(deadline_s, log):
                host_key = (self.root / "host_key.pub").read_text().split()
                self.known_hosts.write_text(
                    f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n"
                )
                return
            said = log.read_text(errors="replace")
            self.stop()
            if "Address already in use" not in said:
                pytest.fail(f"sshd did not start; its log:\n{said}")
        pytest.fail("sshd found no free port in 5 tries")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _wait_until_ready(self, deadline_s: float, log: Path) -> bool:
        """Polls `ssh ... true` until it works; False if sshd exited."""
        deadline = time.monotonic() + deadline_s
        shell = SshShell(
            self.target,
            port=self.port,
            identity=self.key,
            known_hosts=os.devnull,
            accept_new_host_key=True,
            connect_timeout=2,
        )
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if shell.run(["true"], timeout=10).returncode == 0:
                    return True
            except SshError as error:
                if error.kind not in ("unreachable", "ssh"):
                    pytest.fail(f"{error}\nsshd log:\n{log.read_text()}")
            time.sleep(0.1)
        pytest.fail(f"sshd did not accept within {deadline_s} s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        pytest.skip(f"{SSHD} or ssh is not installed (apt-get install openssh-server)")
    root = tmp_path_factory.mktemp("sshd")
    os.chmod(root, 0o700)
    server = Sshd(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(root: Path, host_key: Path, port: int) -> str:
    return "\n".join(
        [
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {root}/authorized_keys",
            f"PidFile {root}/sshd.pid",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "PrintMotd no",
            "LogLevel INFO",
            "",
        ]
    )
