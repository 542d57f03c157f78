"""``stale_run_sweeper``: on the daemon's host, marks runs whose process died as failed and removes the
scratch folders of dead processes (see etl_project/run_owner.py and etl_project/scratch.py).

Every 60 seconds; it requests no runs. ``default_status=RUNNING``: a dead run must not hold its district's
run-queue slot until someone notices. A run marked failed here goes through the failure alerts like any other.
"""

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from etl_project.run_owner import sweep_stale_runs
from etl_project.scratch import sweep_scratch

SWEEP_INTERVAL_SECONDS = 60


@sensor(
    name="stale_run_sweeper",
    minimum_interval_seconds=SWEEP_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks runs whose process died on this host (killed, crashed) as failed, so their district's "
    "next nights are not held in the run queue, and removes scratch folders of dead processes.",
)
def stale_run_sweeper(context: SensorEvaluationContext) -> SkipReason:
    runs = sweep_stale_runs(context.instance)
    folders = sweep_scratch()
    for run_id in runs:
        context.log.warning(f"run {run_id}: its process is gone; marked failed")
    for folder in folders:
        context.log.info(f"removed stale scratch folder {folder}")
    return SkipReason(f"{len(runs)} stale run(s) marked failed, {len(folders)} scratch folder(s) removed")
