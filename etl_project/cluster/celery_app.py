"""The Celery app the cluster's workers run (``celery -A etl_project.cluster.celery_app worker``).

Dagster's run launcher (``dagster_celery.CeleryRunLauncher``) sends each run as one ``execute_job`` task; the
worker executes the whole run in its own process with its own ``DAGSTER_HOME`` (PostgreSQL storage). The
broker and the result backend come from ``ETL_PROJECT_CELERY_BROKER`` / ``ETL_PROJECT_CELERY_BACKEND``, the
same variables the instance's ``dagster.yaml`` names for the launcher.

When a worker starts a run it records itself on the run as the tag ``etl_project/worker`` (the Celery
node name): the UI and the stale-run sweep (etl_project/automation/celery_runs.py) read it. It also asks
for whole-run retries (``dagster/retry_strategy: ALL_STEPS``): a retry may land on another worker, whose
disk holds nothing of the first attempt.
"""

from __future__ import annotations

import logging
import os
import time

from celery import Task
from dagster import DagsterInstance, DagsterRun, RunsFilter
from dagster_celery.config import DEFAULT_CONFIG
from dagster_celery.make_app import make_app
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task

from etl_project.cluster.config import SHARED_QUEUE, WORKER_TAG

logger = logging.getLogger(__name__)
BROKER_ENV = "ETL_PROJECT_CELERY_BROKER"
BACKEND_ENV = "ETL_PROJECT_CELERY_BACKEND"
RETRY_STRATEGY_TAG = "dagster/retry_strategy"
LAUNCHER_TAG_WAIT_SECONDS = 30


class RunTask(Task):
    """Dagster's run tasks, recording the worker on the run before it starts (see ``record_worker``)."""

    def before_start(self, task_id: str, args: tuple, kwargs: dict) -> None:
        record_worker(self, task_id, kwargs)


def build_app():
    """The same app the launcher builds from dagster.yaml (``CeleryRunLauncher.app_args``), with its tasks."""
    celery_app = make_app(
        app_args={
            "broker": os.environ.get(BROKER_ENV),
            "backend": os.environ.get(BACKEND_ENV),
            "include": [],
            "config_source": dict(DEFAULT_CONFIG, worker_prefetch_multiplier=1),
            "task_default_queue": SHARED_QUEUE,
        }
    )
    create_execute_job_task(celery_app, base=RunTask)
    create_resume_job_task(celery_app, base=RunTask)
    return celery_app


app = build_app()


def record_worker(task: Task, task_id: str, kwargs: dict) -> None:
    """Tag the run this task executes with the worker's node name, before the run starts."""
    with DagsterInstance.get() as instance:
        run = _launched(instance, task_id)
        if run is None:
            logger.warning(
                "task %s: no run carries it after %s s; not tagged", task_id, LAUNCHER_TAG_WAIT_SECONDS
            )
            return
        tags = {WORKER_TAG: str(task.request.hostname)}
        if RETRY_STRATEGY_TAG not in run.tags:
            tags[RETRY_STRATEGY_TAG] = "ALL_STEPS"
        instance.add_run_tags(run.run_id, tags)
    logger.info("run %s: executed by %s", run.run_id, tags[WORKER_TAG])


def _launched(instance: DagsterInstance, task_id: str) -> DagsterRun | None:
    """The run the launcher tagged with this task's id. The launcher writes that tag right after sending
    the task, and a run's tags are rewritten whole: tags added before it would be lost, so wait for it."""
    deadline = time.monotonic() + LAUNCHER_TAG_WAIT_SECONDS
    while True:  # bounded: the launcher's write follows the send within milliseconds
        records = instance.get_run_records(RunsFilter(tags={DAGSTER_CELERY_TASK_ID_TAG: task_id}), limit=1)
        if records or time.monotonic() > deadline:
            return records[0].dagster_run if records else None
        time.sleep(0.05)
