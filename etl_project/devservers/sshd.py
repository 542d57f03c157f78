"""OpenSSH ``sshd`` on 127.0.0.1 with its own host key and one authorized client key (key auth only)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from etl_project.devservers import ServerUnavailable, free_port

SSHD = "/usr/sbin/sshd"


@dataclass
class SshdServer:
    host: str
    port: int
    username: str
    host_key_line: str  # "ssh-ed25519 AAAA..." to pin
    client_key_path: str
    workdir: str
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SshdServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sshd(workdir: str | None = None) -> SshdServer:
    """Start sshd in the foreground (``-D``) for the current user; files are served with their real paths."""
    if not os.path.exists(SSHD):
        raise ServerUnavailable(f"{SSHD} not found: install openssh-server (scripts/install-system-deps)")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    work = Path(workdir or tempfile.mkdtemp(prefix="sshd-"))
    work.mkdir(parents=True, exist_ok=True)
    for name in ("host_ed25519", "client_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / name)], check=True)
    shutil.copyfile(work / "client_ed25519.pub", work / "authorized_keys")
    os.chmod(work / "authorized_keys", 0o600)
    port = free_port()
    (work / "sshd_config").write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {work / 'host_ed25519'}",
                f"PidFile {work / 'sshd.pid'}",
                f"AuthorizedKeysFile {work / 'authorized_keys'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "Subsystem sftp internal-sftp",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    log = open(work / "sshd.log", "wb")  # noqa: SIM115 - kept open for the server's lifetime
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(work / "sshd_config")], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise ServerUnavailable(f"sshd exited: {(work / 'sshd.log').read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise ServerUnavailable("sshd did not start listening within 10 s") from None
            time.sleep(0.05)
    import pwd

    return SshdServer(
        host="127.0.0.1",
        port=port,
        username=pwd.getpwuid(os.getuid()).pw_name,
        host_key_line=" ".join((work / "host_ed25519.pub").read_text().split()[:2]),
        client_key_path=str(work / "client_ed25519"),
        workdir=str(work),
        process=process,
    )
