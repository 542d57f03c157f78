"""The nightly schedule: the safety net behind the new-drop sensor, in each district's own time zone.

It ticks every 30 minutes (UTC) and, for every enabled, registered district whose local time has passed its
``expected_by_hour`` for the latest night (see ``etl_project.automation.nights.due_night``), requests one
``nightly_sync`` run for that night unless the night is already handled: ``archive/oneroster_snapshot`` is
materialized for the partition, or any ``nightly_sync`` run for it exists (requested by the sensor, this
schedule or a person; a failed run is left to its retries and the freshness alert, not re-launched every
half hour). A 30-minute tick serves districts in half-hour time zones on time.

Why a custom ``@schedule`` rather than ``build_schedule_from_partitioned_job``: that one fires every district
at one UTC hour, for the UTC day, with no skip logic. Schedules cannot add dynamic partitions, so districts
not yet registered are left to the new-drop sensor (which registers them within one tick).

``default_status=RUNNING``: nobody should have to press a button for districts to sync every night, and the
schedule is idempotent (it only requests nights nothing has handled yet).
"""

import datetime as dt

from dagster import DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from etl_project.automation.nights import due_night
from etl_project.automation.sync_status import TRIGGER_TAG, night_status
from etl_project.districts.resource import DistrictsResource
from etl_project.jobs import nightly_sync
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight

CRON = "*/30 * * * *"


def nightly_run_requests(
    context: ScheduleEvaluationContext, districts: DistrictsResource
) -> list[RunRequest] | SkipReason:
    now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    instance = context.instance
    registered = set(instance.get_dynamic_partitions(DISTRICTS_PARTITION))
    requests: list[RunRequest] = []
    skipped: list[str] = []
    for district in sorted(districts.active().values(), key=lambda d: d.id):
        if district.id not in registered:
            skipped.append(f"{district.id} (not registered yet; the new-drop sensor adds it)")
            continue
        night = due_night(district, now)
        if night is None:
            continue
        dn = DistrictNight(night, district.id)
        status = night_status(instance, dn)
        if status.run_requested or status.archived_at:
            continue
        requests.append(
            RunRequest(
                run_key=f"{dn}:schedule",
                partition_key=dn.key,
                tags={TRIGGER_TAG: "schedule"},
            )
        )
    for line in skipped:
        context.log.info(f"Skipped {line}")
    if not requests:
        return SkipReason(f"no district is due and unsynced at {now.isoformat()}")
    context.log.info(
        f"Starting {len(requests)} district(s): {', '.join(str(r.partition_key) for r in requests)}"
    )
    return requests


@schedule(
    name="nightly_sync_schedule",
    cron_schedule=CRON,
    execution_timezone="UTC",
    job=nightly_sync,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 30 minutes: start each enabled district whose drop is due (its expected hour, local "
    "time) and whose latest night nothing has synced yet; see etl_project/automation/schedules.py.",
)
def nightly_sync_schedule(context: ScheduleEvaluationContext, districts: DistrictsResource):
    return nightly_run_requests(context, districts)
