"""Which process runs a Dagster run, and marking runs whose process died as failed.

A run killed outside the daemon (a CLI ``etl-project sync`` killed with SIGKILL, a run worker lost with its
machine's power) stays STARTED for ever: the default run launcher has no health check. A STARTED run keeps
its ``dagster/partition/district`` tag in the run queue's limit of one run per district, so the district's
next nights would wait behind it. Each run therefore records its owner process as run tags:

* a CLI sync passes them when it creates the run (the run executes in the CLI's own process);
* a launched run records them at the start of its first step (``claim_run``): with the in-process executor
  (every job of this project) the step's own process is the run worker, even when that process is itself a
  multiprocessing child (of the code server that launched it); with Dagster's multiprocess executor the run
  worker is the step's parent.

``sweep_stale_runs`` marks STARTED runs whose owner is gone from this host as failed, with a message saying
so; runs owned on other hosts, and runs that recorded no owner yet, are left alone.

A retry or re-execution starts with a copy of its parent run's tags, owner included: the owner tags also
name the parent run of the run they were recorded for (``OWNER_PARENT_TAG``), and owner tags copied from
another run (their parent differs from this run's ``dagster/parent_run_id``) are no owner, so the retry of a
run killed with its worker is claimed by its own worker, not swept as the dead parent.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping

from dagster import (
    AssetExecutionContext,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
    in_process_executor,
)

from etl_project.owner import Owner, this_host

OWNER_HOST_TAG = "etl_project/owner_host"
OWNER_PID_TAG = "etl_project/owner_pid"
OWNER_STARTED_TAG = "etl_project/owner_started"
OWNER_PARENT_TAG = "etl_project/owner_parent_run"  # the parent run of the run the owner was recorded for
PARENT_RUN_TAG = "dagster/parent_run_id"  # set by Dagster on retries and re-executions
SWEPT_STATUSES = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def owner_tags(owner: Owner | None = None, parent_run: str = "") -> dict[str, str]:
    owner = owner or Owner.of()
    return {
        OWNER_HOST_TAG: owner.host,
        OWNER_PID_TAG: str(owner.pid),
        OWNER_STARTED_TAG: owner.started,
        OWNER_PARENT_TAG: parent_run,
    }


def run_owner(tags: Mapping[str, str]) -> Owner | None:
    """The run's owner process, or None when it has none yet (or only the one copied from its parent)."""
    host, pid = tags.get(OWNER_HOST_TAG), tags.get(OWNER_PID_TAG, "")
    if not host or not pid.isdigit():
        return None
    if tags.get(OWNER_PARENT_TAG, "") != tags.get(PARENT_RUN_TAG, ""):
        return None
    return Owner(host=host, pid=int(pid), started=tags.get(OWNER_STARTED_TAG, ""))


def claim_run(context: AssetExecutionContext) -> None:
    """Record the run worker as the run's owner, unless the run already names one (a CLI sync, an earlier
    step)."""
    if run_owner(context.run.tags) is not None:
        return
    in_process = context.job_def.executor_def.name == in_process_executor.name
    parent = None if in_process else multiprocessing.parent_process()
    owner = Owner.of(parent.pid if parent is not None and parent.pid else os.getpid())
    parent_run = context.run.tags.get(PARENT_RUN_TAG, "")
    context.instance.add_run_tags(context.run.run_id, owner_tags(owner, parent_run))


def stale_message(run: DagsterRun, owner: Owner) -> str:
    partition = run.tags.get("dagster/partition", "")
    return (
        f"Marked failed by etl_project's stale-run sweep: the process that ran it (pid {owner.pid} on "
        f"{owner.host}) is gone: it was killed or crashed mid-run, and its scratch files are removed by the "
        "same sweep. Re-run"
        + (f" partition {partition}" if partition else " it")
        + " if that night is still needed."
    )


def sweep_stale_runs(instance: DagsterInstance) -> list[str]:
    """Mark the STARTED runs whose owner process is gone from this host as failed; returns their run ids."""
    records = instance.get_run_records(
        RunsFilter(statuses=SWEPT_STATUSES, tags={OWNER_HOST_TAG: this_host()})
    )
    swept = []
    for record in records:
        run = record.dagster_run
        owner = run_owner(run.tags)
        if owner is None or not owner.is_dead():
            continue
        # the run may have finished between the query and now: only a run still in progress is marked
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status not in SWEPT_STATUSES:
            continue
        instance.report_run_failed(current, stale_message(current, owner))
        swept.append(run.run_id)
    return swept
