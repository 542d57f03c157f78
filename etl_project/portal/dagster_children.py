"""On the embedded default, ``etl-project portal`` runs what Sync now needs beside itself: ``dagster-daemon
run`` (starts queued runs) and ``dagster-webserver`` (the GraphQL API Sync now submits to) on a free loopback
port, against the same DAGSTER_HOME and environment. Both are stopped when the portal stops."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from etl_project.devservers import free_port

BIN = Path(sys.executable).parent
WORKSPACE = Path(__file__).resolve().parents[2] / "workspace.yaml"
READY_SECONDS = 300.0
PR_SET_PDEATHSIG = 1


@dataclass
class DagsterChildren:
    url: str
    logs: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def stop(self) -> None:
        """SIGTERM to both process groups at once, then wait (SIGKILL after 30 s)."""
        for proc in self.processes:
            _signal(proc, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGKILL)
                proc.wait(timeout=30)

    def wait_ready(self, ready: threading.Event, stop: threading.Event) -> None:
        """Set ``ready`` once the webserver answers /server_info (bounded; gives up if a child exits)."""
        waited = 0.0
        while not stop.is_set() and waited < READY_SECONDS:
            if any(p.poll() is not None for p in self.processes):
                print(f"Sync now is unavailable: a Dagster process exited (logs in {self.logs})", flush=True)
                return
            try:
                with urllib.request.urlopen(self.url + "/server_info", timeout=5) as resp:
                    if resp.status == 200:
                        ready.set()
                        print(f"Sync now ready: Dagster webserver on {self.url}", flush=True)
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            stop.wait(0.5)
            waited += 0.5


def _signal(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _die_with_parent() -> None:
    """In the child: SIGTERM when the portal dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            cmd, cwd=WORKSPACE.parent, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip


def start_dagster(logs: Path) -> DagsterChildren:
    """Start the daemon and the webserver (loopback, free port); logs go to ``logs``/dagster-*.log."""
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    children = DagsterChildren(f"http://127.0.0.1:{port}", logs)
    workspace = ["-w", str(WORKSPACE)]
    web = [str(BIN / "dagster-webserver"), *workspace, "-h", "127.0.0.1", "-p", str(port)]
    children.processes.append(_start(web, logs / "dagster-webserver.log"))
    children.processes.append(
        _start([str(BIN / "dagster-daemon"), "run", *workspace], logs / "dagster-daemon.log")
    )
    return children
