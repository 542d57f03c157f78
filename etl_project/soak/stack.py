"""The Dagster services the soak measures: started here (local) or a running cluster's (``cluster.json``).

Local: a temp ``DAGSTER_HOME`` seeded with the project's dagster.yaml (queued runs, default run launcher),
``dagster-webserver`` and ``dagster-daemon`` as separate processes, each in its own process group.

Cluster: ``etl-project cluster up`` writes ``cluster.json``; the soak reads from it the environment every
process of the cluster shares (``env``: registry, archive, LMS, ``DAGSTER_HOME``, S3 endpoint), the
webserver's URL (``webserver_url``) and the workers (``workers``: names, whose pids are in
``<dir>/pids/<name>.pid``, or objects with ``name``, ``pid``, ``cores``). Nothing is
started or stopped then: the soak only registers districts, publishes drops and reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from etl_project.devservers import free_port
from etl_project.devservers.groups import stop_group

BIN = Path(sys.executable).parent
WORKSPACE = """load_from:
  - python_module:
      module_name: etl_project.definitions
      location_name: etl_project
"""
READY_SECONDS = 300
DEPLOYMENT_ENV = ("ETL_PROJECT_", "DAGSTER_", "LMS_", "AWS_")


@dataclass
class Stack:
    webserver_url: str
    env: dict[str, str]
    workers: list[dict[str, object]] = field(default_factory=list)  # cluster workers (name, pid, cores)
    processes: list[subprocess.Popen] = field(default_factory=list)  # what this process started
    logs: Path | None = None

    @property
    def cluster(self) -> bool:
        return not self.processes

    def stop(self) -> None:
        for proc in self.processes:
            stop_group(proc)


def read_cluster(path: Path) -> Stack:
    data = json.loads(path.read_text())
    # Only the deployment's settings: cluster.json may carry its creator's whole environment (PATH,
    # PYTHONPATH), which must not replace the soak's own for the processes it starts (the floor).
    env = {str(k): str(v) for k, v in dict(data.get("env") or {}).items() if k.startswith(DEPLOYMENT_ENV)}
    folder = Path(data.get("dir") or path.parent)
    workers = [_worker(w, folder) for w in data.get("workers") or []]
    return Stack(webserver_url=str(data["webserver_url"]).rstrip("/"), env=env, workers=workers)


def _worker(listed: str | dict[str, object], folder: Path) -> dict[str, object]:
    """A worker as ``{"name", "pid"}``: listed so, or by name with its pid in ``<dir>/pids/<name>.pid``."""
    if isinstance(listed, dict):
        return listed
    pid_file = folder / "pids" / f"{listed}.pid"
    return {"name": listed, "pid": int(pid_file.read_text()) if pid_file.exists() else None}


def local_env(work: Path, secret_key: str) -> dict[str, str]:
    """The embedded default under ``work``: registry, archive, warehouse, LMS (SQLite) and DAGSTER_HOME."""
    return {
        "ETL_PROJECT_HOME": str(work / "home"),
        "DAGSTER_HOME": str(work / "dagster"),
        "ETL_PROJECT_SECRET_KEY": secret_key,
    }


def child_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without any other instance's settings, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "DAGSTER_", "LMS_"))}
    return {**base, **env}


def start_local(work: Path, env: dict[str, str]) -> Stack:
    """dagster-webserver and dagster-daemon on ``env``'s DAGSTER_HOME, ready to answer."""
    (work / "workspace.yaml").write_text(WORKSPACE)
    port = free_port()
    stack = Stack(webserver_url=f"http://127.0.0.1:{port}", env=env, logs=work)
    full = child_env(env)
    commands = {
        "webserver": [
            str(BIN / "dagster-webserver"),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        "daemon": [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
    }
    for name, cmd in commands.items():
        with open(work / f"{name}.log", "w") as log:
            stack.processes.append(
                subprocess.Popen(
                    cmd, env=full, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
    try:
        wait_ready(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def wait_ready(stack: Stack) -> None:
    """Bounded wait until the webserver answers (the code location loads first)."""
    deadline = time.monotonic() + READY_SECONDS
    while True:
        dead = [p for p in stack.processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a Dagster service exited (logs in {stack.logs})")
        try:
            with urllib.request.urlopen(stack.webserver_url + "/server_info", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the webserver did not answer within {READY_SECONDS} s (logs in {stack.logs})"
            )
        time.sleep(0.5)
