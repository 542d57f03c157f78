"""Long-running processes of the cluster: each in its own session (process group) with a pid file, so
``cluster down`` stops it and all its children, also after the command that started it crashed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

STOP_GRACE_SECONDS = 20


class ClusterStartError(RuntimeError):
    """A process of the cluster did not start (the message names it and ends with its log's tail)."""


def pid_dir(directory: Path) -> Path:
    path = directory / "pids"
    path.mkdir(parents=True, exist_ok=True)
    return path


def start(
    name: str, cmd: Sequence[str], env: Mapping[str, str], directory: Path, cwd: Path | None = None
) -> subprocess.Popen:
    """Start ``cmd`` in a new session, output to ``logs/<name>.log``, its pid in ``pids/<name>.pid``."""
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(
            list(cmd), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    (pid_dir(directory) / f"{name}.pid").write_text(str(proc.pid))
    return proc


def log_tail(directory: Path, name: str, chars: int = 2000) -> str:
    path = directory / "logs" / f"{name}.log"
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def wait_until(
    name: str, ready: Callable[[], bool], proc: subprocess.Popen, directory: Path, timeout: float = 180
) -> None:
    """Poll ``ready`` until it answers True; fail with the log's tail if the process ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise ClusterStartError(f"{name} exited ({proc.returncode}):\n{log_tail(directory, name)}")
        if time.monotonic() > deadline:
            raise ClusterStartError(f"{name} not ready after {timeout:.0f} s:\n{log_tail(directory, name)}")
        time.sleep(0.25)


def port_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    def check() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return True
        return False

    return check


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pid: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL what is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + grace
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
            _reap(pid)
        if not _group_alive(pid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _reap(pid: int) -> None:
    """Collect our own child's exit status, so it does not linger as a zombie that still counts as alive."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def running(directory: Path) -> list[str]:
    """The names of processes with a pid file in ``directory`` that are still alive."""
    names = []
    for pid_file in pid_dir(directory).glob("*.pid"):
        with contextlib.suppress(ValueError):
            if alive(int(pid_file.read_text().strip())):
                names.append(pid_file.stem)
    return sorted(names)


def stop_all(directory: Path, last: Sequence[str] = ()) -> list[str]:
    """Stop every process with a pid file in ``directory`` (those named in ``last`` after the others);
    returns the names stopped."""
    pids = sorted(pid_dir(directory).glob("*.pid"), key=lambda p: (p.stem in last, p.stem))
    stopped = []
    for pid_file in pids:
        with contextlib.suppress(ValueError):
            pid = int(pid_file.read_text().strip())
            if alive(pid):
                stop_group(pid)
                stopped.append(pid_file.stem)
        pid_file.unlink(missing_ok=True)
    return stopped
