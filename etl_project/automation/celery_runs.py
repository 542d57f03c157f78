"""``celery_run_sweeper``: in the Celery deployment (``etl-project cluster``), fails runs whose worker is
gone (see etl_project/cluster/lost_runs.py). Elsewhere (no ``ETL_PROJECT_CELERY_BROKER``) it skips.

Its interval is ``ETL_PROJECT_CELERY_SWEEP_SECONDS`` (default 30): a lost run is failed within two sweeps.
"""

from __future__ import annotations

import json
import os

from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor

BROKER_ENV = "ETL_PROJECT_CELERY_BROKER"
SWEEP_SECONDS = int(os.environ.get("ETL_PROJECT_CELERY_SWEEP_SECONDS", "30"))


@sensor(
    name="celery_run_sweeper",
    minimum_interval_seconds=SWEEP_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Celery deployment only: fails runs whose Celery worker is gone (killed, lost), so the "
    "district's run-queue slot is freed and run_retries starts the night again on a live worker.",
)
def celery_run_sweeper(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    broker = os.environ.get(BROKER_ENV)
    if not broker:
        return SkipReason(f"not a Celery deployment ({BROKER_ENV} is not set)")
    from etl_project.cluster.lost_runs import active_tasks, sweep_lost_runs

    sweep = sweep_lost_runs(
        context.instance, lambda: active_tasks(broker), json.loads(context.cursor or "{}")
    )
    for run_id in sweep.lost:
        context.log.warning(f"run {run_id}: no Celery worker executes it; marked failed")
    return SensorResult(
        skip_reason=f"{sweep.workers} worker(s) answered; {len(sweep.lost)} lost run(s) marked failed, "
        f"{len(sweep.suspects)} suspect(s)",
        cursor=json.dumps(sweep.suspects),
    )
