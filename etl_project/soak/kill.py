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
    runs: dict[str, str]  # run id -> night ("YYYY-MM-DD|district") of every run the kill took down
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
    """SIGKILL the process executing one soak run (on a cluster: its whole worker); None if no run has claimed
    a process yet. Every run that process was executing goes with it (a worker may run several at once)."""
    started = instance.get_run_records(RunsFilter(job_name=JOB, statuses=[DagsterRunStatus.STARTED]))
    mine = [r.dagster_run for r in started if r.dagster_run.tags.get(DISTRICT_TAG) in districts]
    victim = next((run for run in mine if run.tags.get(OWNER_PID_TAG)), None)
    if victim is None:
        return None
    pid = int(victim.tags[OWNER_PID_TAG])
    worker = str(victim.tags.get(WORKER_TAG, "")).split("@")[0]  # Celery names it "<name>@<host>"
    named = [int(w["pid"]) for w in workers if w.get("name") == worker and w.get("pid")]
    pids = list(dict.fromkeys(p for p in (pid, *named, worker_of(pid, workers)) if p))
    for target in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)
    for leader in named:  # a cluster worker leads its own process group: all of it goes
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, signal.SIGKILL)
    runs = {
        run.run_id: _night(run.tags) for run in mine if went_with(run.tags, pids, worker if named else "")
    }
    return Killed(runs, pids, time.time())


def went_with(tags, pids: list[int], worker: str) -> bool:
    """Whether the run was executing in a killed process: its own, or any child of the killed worker."""
    on_worker = bool(worker) and str(tags.get(WORKER_TAG, "")).split("@")[0] == worker
    return on_worker or int(tags.get(OWNER_PID_TAG) or 0) in pids


def _night(tags) -> str:
    return f"{tags.get(DATE_TAG)}|{tags.get(DISTRICT_TAG)}"


def what_became(instance: DagsterInstance, killed: Killed | None, requested: bool) -> dict[str, object] | str:
    """What became of every run the kill took down: its status, and the runs that retried it."""
    if not requested:
        return "not requested"
    if killed is None:
        return "no run was executing when a kill was tried"
    runs = {}
    for run_id, night in killed.runs.items():
        run = instance.get_run_by_id(run_id)
        retries = instance.get_runs(RunsFilter(tags={"dagster/parent_run_id": run_id}))
        runs[run_id] = {
            "night": night,
            "status": run.status.value if run else "missing",
            "retried_by": {r.run_id: r.status.value for r in retries},
        }
    return {"killed_pids": killed.pids, "runs": runs}
