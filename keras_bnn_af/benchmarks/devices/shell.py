"""Shell transports: run an argv on a device, push a file to it.

A `Shell` runs an argument vector (never a command line) and pushes files.
`LocalShell` runs on this machine (tests, the host); `SshShell` runs over the
system's OpenSSH client, keys only (`BatchMode=yes`), with the user's
`known_hosts` (`StrictHostKeyChecking=yes`; `accept-new` only when asked,
never `no`). The remote command line is `shlex.join(argv)`, so every argument
reaches the device's POSIX shell as one quoted word: a file named
`a b; touch pwned.tflite` is a file name there, not two commands.

Pushing streams the file through `ssh ... 'cat > path.part && mv path.part
path'` rather than `scp`: one code path (quoting, errors, options) for runs and
pushes; no dependency on the device's `sftp-server` (OpenSSH 9's `scp` speaks
SFTP, which minimal images and dropbear lack); and no half-written file under
the final name if the transfer stops.

Failures of ssh itself (exit status 255 with ssh's own message) become a
`SshError` in three parts (what, expected, fix), naming host:port, the key or
the known_hosts file: unreachable host, failed authentication, unknown host
key, changed host key.
"""

import os
import re
import shlex
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "Completed",
    "DeviceError",
    "LocalShell",
    "Shell",
    "ShellTimeout",
    "SshError",
    "SshShell",
]

#: ssh's exit status for its own errors (the remote command's status otherwise).
SSH_FAILED = 255
_PUSH_SCRIPT = 'cat > "$1.part" && mv -f "$1.part" "$1"'
_PUSH_EXECUTABLE = _PUSH_SCRIPT + ' && chmod 700 "$1"'


class DeviceError(RuntimeError):
    """A device or transport failure, worded what / expected / fix."""

    def __init__(self, what: str, expected: str, fix: str):
        super().__init__(f"{what} Expected: {expected} Fix: {fix}")
        self.what, self.expected, self.fix = what, expected, fix


class ShellTimeout(DeviceError):
    """A command ran past its time limit (the local side gave up on it)."""


class SshError(DeviceError):
    """ssh itself failed; `kind` is one of `KINDS`."""

    KINDS = (
        "unreachable",
        "authentication",
        "host-key-unknown",
        "host-key-changed",
        "ssh",
    )

    def __init__(self, kind: str, what: str, expected: str, fix: str):
        super().__init__(what, expected, fix)
        self.kind = kind


@dataclass(frozen=True)
class Completed:
    """A finished command: exit status and its output (text)."""

    returncode: int
    stdout: str
    stderr: str


class Shell(ABC):
    """Runs argument vectors on a device and pushes files to it."""

    #: How the device is named in messages and records.
    name: str = "shell"

    @abstractmethod
    def run(
        self,
        argv: list[str],
        *,
        timeout: float | None = None,
        stdin: BinaryIO | None = None,
    ) -> Completed:
        """Runs `argv` (no shell on this side) and waits for it.

        # Arguments
            argv: the program and its arguments, each one word on the device.
            timeout: seconds before the local side kills the command and
                raises `ShellTimeout`; `None` waits.
            stdin: a binary file fed to the command's standard input.
        """

    @abstractmethod
    def push(
        self, local_path: str | os.PathLike, remote_path: str, *, executable=False
    ) -> None:
        """Copies a local file to `remote_path` (mode 700 when `executable`)."""


class LocalShell(Shell):
    """This machine as a device: `subprocess`, no shell in between."""

    name = "local"

    def run(self, argv, *, timeout=None, stdin=None) -> Completed:
        return _run_process(list(argv), timeout=timeout, stdin=stdin, shown=argv)

    def push(self, local_path, remote_path, *, executable=False) -> None:
        part = f"{remote_path}.part"
        shutil.copyfile(local_path, part)
        os.replace(part, remote_path)
        if executable:
            os.chmod(remote_path, 0o700)


class SshShell(Shell):
    """A device reached with the OpenSSH client, keys only.

    # Arguments
        target: `user@host` (or `host`, for ssh's default user).
        port: the ssh port; `None` for ssh's default (22 or the user's config).
        identity: a private key file (`-i`, with `IdentitiesOnly=yes`);
            `None` uses the user's default keys and agent.
        connect_timeout: seconds to wait for the connection (`ConnectTimeout`).
        accept_new_host_key: trust an unknown host key on first contact
            (`StrictHostKeyChecking=accept-new`); a changed key is always refused.
        known_hosts: the known_hosts file; `None` for the user's.
    """

    def __init__(
        self,
        target: str,
        port: int | None = None,
        identity: str | os.PathLike | None = None,
        connect_timeout: float = 10,
        accept_new_host_key: bool = False,
        known_hosts: str | os.PathLike | None = None,
    ):
        if not target or target.startswith("-") or any(c.isspace() for c in target):
            raise ValueError(
                f"Invalid ssh target {target!r}. Expected user@host (no spaces, "
                "not starting with '-'). Fix: pass e.g. pi@raspberrypi.local."
            )
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise ValueError(
                f"Invalid ssh port {port!r}. Expected an integer in 1-65535. "
                "Fix: pass e.g. port=22."
            )
        self.target = target
        self.port = port
        self.identity = None if identity is None else Path(identity).expanduser()
        self.connect_timeout = connect_timeout
        self.accept_new_host_key = accept_new_host_key
        self.known_hosts = None if known_hosts is None else Path(known_hosts)
        self.user, _, self.host = target.rpartition("@")
        self.name = f"ssh://{target}" + (f":{port}" if port else "")

    @property
    def address(self) -> str:
        """`host:port` as messages show it."""
        return f"{self.host}:{self.port or 22}"

    def ssh_argv(self, argv: list[str]) -> list[str]:
        """The local `ssh` command that runs `argv` on the device."""
        checking = "accept-new" if self.accept_new_host_key else "yes"
        options = [
            "BatchMode=yes",
            "PasswordAuthentication=no",
            "KbdInteractiveAuthentication=no",
            f"ConnectTimeout={max(1, round(self.connect_timeout))}",
            f"StrictHostKeyChecking={checking}",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=3",
        ]
        if self.known_hosts is not None:
            options.append(f"UserKnownHostsFile={self.known_hosts}")
        command = ["ssh", "-T"]
        for option in options:
            command += ["-o", option]
        if self.port is not None:
            command += ["-p", str(self.port)]
        if self.identity is not None:
            command += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        return [*command, "--", self.target, shlex.join(argv)]

    def run(self, argv, *, timeout=None, stdin=None) -> Completed:
        self._check_identity()
        completed = _run_process(
            self.ssh_argv(list(argv)),
            timeout=timeout,
            stdin=stdin,
            shown=[f"{self.name}:", *argv],
        )
        if completed.returncode == SSH_FAILED:
            error = self._ssh_error(completed.stderr)
            if error is not None:
                raise error
        return completed

    def push(self, local_path, remote_path, *, executable=False) -> None:
        script = _PUSH_EXECUTABLE if executable else _PUSH_SCRIPT
        with open(local_path, "rb") as file:
            completed = self.run(["sh", "-c", script, "sh", remote_path], stdin=file)
        if completed.returncode != 0:
            raise _push_error(self.name, local_path, remote_path, completed)

    def _check_identity(self) -> None:
        if self.identity is not None and not os.access(self.identity, os.R_OK):
            raise SshError(
                "authentication",
                f"The ssh key {self.identity} for {self.target} "
                f"({self.address}) does not exist or is not readable.",
                "a readable private key file (e.g. ~/.ssh/id_ed25519).",
                "pass the path of the private key whose .pub is in the device's "
                "~/.ssh/authorized_keys, or create one with `ssh-keygen -t ed25519`.",
            )

    def _ssh_error(self, stderr: str) -> SshError | None:
        """ssh's own failure, classified; `None` when stderr names none."""
        text = stderr.strip()
        quoted = f" ssh said: {_tail(text, 3)!r}." if text else ""
        known = str(self.known_hosts or "~/.ssh/known_hosts")
        port = self.port or 22
        entry = self.host if port == 22 else f"[{self.host}]:{port}"
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or re.search(
            r"Host key for .* has changed", text
        ):
            return SshError(
                "host-key-changed",
                f"The host key of {self.address} has changed since it was recorded "
                f"in {known}.{quoted}",
                "the key recorded for this host on first contact.",
                "if the device was reinstalled or its keys regenerated, remove the "
                f"old key (`ssh-keygen -R '{entry}' -f {known}`) and connect again "
                "with --accept-new-host-key; otherwise someone may be intercepting "
                "the connection: do not go on.",
            )
        if "Host key verification failed" in text or re.search(
            r"No \S+ host key is known", text
        ):
            return SshError(
                "host-key-unknown",
                f"The host key of {self.address} is not in {known}, and this "
                f"connection does not accept new host keys.{quoted}",
                "a host key known from an earlier connection.",
                "check the device's key fingerprint, then pass --accept-new-host-key "
                "(accept_new_host_key=True) to record it on first contact, or add "
                f"it yourself: `ssh-keyscan -p {port} {self.host} >> {known}`.",
            )
        if "Permission denied" in text or "Too many authentication failures" in text:
            key = (
                f"the key {self.identity}"
                if self.identity is not None
                else "your default keys and ssh-agent"
            )
            user = self.user or "your user"
            pub = f"{self.identity}.pub" if self.identity else "~/.ssh/id_ed25519.pub"
            return SshError(
                "authentication",
                f"Authentication failed for {user} on {self.address} with {key} "
                f"(keys only, no passwords).{quoted}",
                "a private key whose public key is in the device's "
                "~/.ssh/authorized_keys.",
                f"install the public key (`ssh-copy-id -i {pub} -p {port} "
                f"{self.target}`) or pass the right key with --identity.",
            )
        unreachable = (
            "Connection refused",
            "timed out",
            "No route to host",
            "Network is unreachable",
            "Could not resolve hostname",
            "Name or service not known",
            "kex_exchange_identification",
            "Connection closed by",
            "Connection reset",
        )
        if any(marker in text for marker in unreachable):
            return SshError(
                "unreachable",
                f"Cannot reach {self.address} over ssh (connect timeout "
                f"{self.connect_timeout:g} s).{quoted}",
                "an ssh server listening on that host and port.",
                "check that the device is on and on the network, the host name and "
                f"--port, and that sshd runs there (`ssh -p {port} {self.target} "
                "true` should succeed).",
            )
        if text.startswith("ssh:") or "ssh: " in text:
            return SshError(
                "ssh",
                f"ssh to {self.target} ({self.address}) failed.{quoted}",
                "ssh to connect and run the command.",
                f"run `ssh -p {port} {self.target} true` to see the problem.",
            )
        return None


def _run_process(argv, *, timeout, stdin, shown) -> Completed:
    try:
        process = subprocess.run(
            argv,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ShellTimeout(
            f"`{shlex.join(shown)}` ran for more than {timeout:g} s and was stopped.",
            f"it to finish within {timeout:g} s.",
            "raise the timeout, or run fewer or faster runs.",
        ) from None
    return Completed(
        process.returncode,
        process.stdout.decode(errors="replace"),
        process.stderr.decode(errors="replace"),
    )


def _push_error(device, local_path, remote_path, completed) -> DeviceError:
    said = _tail((completed.stderr + completed.stdout).strip(), 3)
    if "No space left" in said:
        return DeviceError(
            f"Copying {local_path} to {device}:{remote_path} failed: the device's "
            f"disk is full ({said!r}).",
            "free space for the file.",
            "free space on the device (see `df -h` there) and run again.",
        )
    return DeviceError(
        f"Copying {local_path} to {device}:{remote_path} failed "
        f"(exit status {completed.returncode}: {said!r}).",
        "a writable remote directory.",
        "check that the directory exists and is writable by the ssh user.",
    )


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])
