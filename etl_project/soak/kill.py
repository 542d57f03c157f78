"""``--kill-worker``: SIGKILL the process executing a run, in the middle of the run, and what became of it.

The run's own tags name the process that executes it (``etl_project/owner_pid``, set by the run's first
step, see etl_project/run_owner.py). Locally that is the run's worker process under the default launcher;
on a cluster it is a Celery worker's process, and the worker listed in ``cluster.json`` whose process it is
(or whose child it is) is killed with it: the whole worker goes, as when a machine dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from etl_project.run_owner import OWNER_PID_TAG
from etl_project.soak.observe import DATE_TAG, DISTRICT_TAG, JOB

WORKER_TAG = "etl_project/worker"  # the cluster's Celery worker that took the run (etl_project/cluster)


@dataclass
class Killed:
    run_id: str
    night: str
    pids: list[int] = field(default_factory=list)
    at: float = 0.0


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def worker_of(pid: int, workers: list[dict[str, object]]) -> int | None:
    """The listed worker whose process ``pid`` is, or descends from."""
    listed = {int(w["pid"]) for w in workers if w.get("pid")}
    current: int | None = pid
    while current and current > 1:
        if current in listed:
            return current
        current = parent_pid(current)
    return None


def kill_one(
    instance: DagsterInstance, districts: set[str], workers: list[dict[str, object]]
) -> Killed | None:
    """SIGKILL the process of one soak run that is executing now; None if no run has claimed a process yet."""
    for record in instance.get_run_records(RunsFilter(job_name=JOB, statuses=[DagsterRunStatus.STARTED])):
        tags = record.dagster_run.tags
        if tags.get(DISTRICT_TAG) not in districts or not tags.get(OWNER_PID_TAG):
            continue
        pid = int(tags[OWNER_PID_TAG])
        named = [int(w["pid"]) for w in workers if w.get("name") == tags.get(WORKER_TAG) and w.get("pid")]
        pids = [p for p in (pid, *named, worker_of(pid, workers)) if p]
        for victim in dict.fromkeys(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        for leader in named:  # a cluster worker leads its own process group: all of it goes
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(leader, signal.SIGKILL)
        night = f"{tags.get(DATE_TAG)}|{tags[DISTRICT_TAG]}"
        return Killed(record.dagster_run.run_id, night, list(dict.fromkeys(pids)), time.time())
    return None


def what_became(instance: DagsterInstance, killed: Killed | None, requested: bool) -> dict[str, object] | str:
    """The killed run's end: its status, the runs that retried it and their statuses."""
    if not requested:
        return "not requested"
    if killed is None:
        return "no run was executing when a kill was tried"
    run = instance.get_run_by_id(killed.run_id)
    retries = instance.get_runs(RunsFilter(tags={"dagster/parent_run_id": killed.run_id}))
    return {
        "run_id": killed.run_id,
        "night": killed.night,
        "killed_pids": killed.pids,
        "status": run.status.value if run else "missing",
        "retried_by": {r.run_id: r.status.value for r in retries},
    }
