"""Runs lost with their Celery worker: failed cleanly, so the run queue frees the district and the
instance's ``run_retries`` starts the night again on a worker that is alive.

Celery alone cannot tell: a worker killed with SIGKILL never reports its task, which stays STARTED in the
result backend (so Dagster's run monitoring sees a healthy run). The sweep instead asks the workers which
tasks they are executing right now (Celery's remote control, ``inspect().active()``). A STARTED run whose
task no worker is executing is lost when

* the worker that took it (run tag ``etl_project/worker``) answered without it: the task is gone; or
* that worker did not answer on two sweeps in a row: it is gone (one missed answer may just be a busy
  worker, so a single miss only makes the run a suspect, remembered in ``suspects``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from celery import Celery
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from etl_project.cluster.config import WORKER_TAG

INSPECT_TIMEOUT_SECONDS = 5.0
MISSES_BEFORE_LOST = 2


def active_tasks(broker: str, timeout: float = INSPECT_TIMEOUT_SECONDS) -> dict[str, set[str]]:
    """Task ids each worker that answered within ``timeout`` is executing, by worker node name."""
    app = Celery(broker=broker)
    try:
        replies = app.control.inspect(timeout=timeout).active() or {}
    finally:
        app.close()
    return {worker: {task["id"] for task in tasks} for worker, tasks in replies.items()}


@dataclass
class Sweep:
    workers: int = 0  # how many workers answered (0 when no run needed asking)
    lost: list[str] = field(default_factory=list)
    suspects: dict[str, int] = field(default_factory=dict)  # run id -> sweeps in a row its worker was silent


def lost_message(run: DagsterRun) -> str:
    worker = run.tags.get(WORKER_TAG, "an unknown worker")
    return (
        f"Marked failed by etl_project's Celery sweep: its worker ({worker}) no longer executes it (killed "
        "or lost mid-run). The LMS load is one transaction, so the LMS holds nothing of this run; the "
        "instance's run_retries starts the night again on a live worker."
    )


def sweep_lost_runs(
    instance: DagsterInstance,
    ask_workers: Callable[[], Mapping[str, set[str]]],
    suspects: Mapping[str, int],
) -> Sweep:
    """Fail the STARTED Celery runs no worker executes (see the module's rules); returns what it did and
    the suspects to remember until the next sweep. ``ask_workers`` returns each answering worker's task ids.

    The runs are read before the workers are asked: a run that starts while they answer would otherwise be
    judged on answers older than it."""
    candidates = [
        record.dagster_run
        for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        if record.dagster_run.tags.get(DAGSTER_CELERY_TASK_ID_TAG)
    ]
    sweep = Sweep()
    if not candidates:
        return sweep
    active = ask_workers()
    sweep.workers = len(active)
    running = set().union(*active.values()) if active else set()
    for run in candidates:
        if run.tags[DAGSTER_CELERY_TASK_ID_TAG] in running:
            continue
        misses = 0 if run.tags.get(WORKER_TAG) in active else suspects.get(run.run_id, 0) + 1
        if 0 < misses < MISSES_BEFORE_LOST:
            sweep.suspects[run.run_id] = misses
            continue
        current = instance.get_run_by_id(run.run_id)  # it may have ended since the query
        if current is not None and current.status == DagsterRunStatus.STARTED:
            instance.report_run_failed(current, lost_message(current))
            sweep.lost.append(run.run_id)
    return sweep
