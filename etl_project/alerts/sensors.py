"""What triggers an alert, and deduplication.

* ``sync_failure_alert_sensor`` (``@run_failure_sensor`` on nightly_sync, replay_from_archive and load_lms):
  a failed run is a **held night** when its ``within_safety_thresholds`` check failed (the blocking check
  stops the run; the hold is recorded in the LMS ``sync_runs``), a **blocked night** when the registry's
  night state (etl_project/registry/nights.py) says a blocking check stopped it, else a **failed night**.
  Alert kinds use the night states' words: held, blocked, failed (and deactivations_held, missing_drop).
  Dagster's run-status cursor hands each run to the sensor once, so each failure is sent once.
* ``deactivations_held_alert_sensor`` (``@run_status_sensor`` on success): a run that succeeded while the
  check failed with WARN (districts holding only deactivations) applied creates/updates but held the rest.
* ``missing_drop_alert_sensor``: ``missing_drop_sensor`` (freshness.py) records one failed, run-less
  ``drop_arrived_on_time`` evaluation per late district-night; this sensor sends one alert per such record,
  its cursor being the last record id sent.

For held, blocked and failed nights the report asset did not run; the jobs' failure hook published the
report already, and the sensor publishes it again (best effort) so there is always something to link to.
"""

from __future__ import annotations

import datetime as dt

from dagster import (
    AssetCheckKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
    sensor,
)

from etl_project.alerts.base import Alert, send_all
from etl_project.alerts.resource import AlertsResource
from etl_project.archive import ArchiveResource
from etl_project.assets.lms import CHANGE_PLAN, CHECK_NAME
from etl_project.automation.freshness import CHECK_KEY as DROP_CHECK_KEY
from etl_project.districts.resource import DistrictsResource
from etl_project.jobs import load_lms, nightly_sync, replay_from_archive
from etl_project.lms.resource import LmsResource
from etl_project.partitions import DistrictNight
from etl_project.reports.serve import district_path, report_link, report_secret
from etl_project.warehouse import WarehouseResource

THRESHOLD_CHECK = AssetCheckKey(CHANGE_PLAN, CHECK_NAME)
MAX_TEXT = 300
FIRST_LOOKBACK = dt.timedelta(hours=36)  # a fresh cursor alerts on recent misses only, not on all history


def night_of_run(run: DagsterRun) -> DistrictNight | None:
    tags = run.tags
    date, district = tags.get("dagster/partition/date"), tags.get("dagster/partition/district")
    if date and district:
        return DistrictNight(date, district)
    key = tags.get("dagster/partition")
    try:
        return DistrictNight.of(key) if key else None
    except ValueError:
        return None


def threshold_evaluation(instance: DagsterInstance, run_id: str):
    """The run's within_safety_thresholds evaluation (or None)."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data
        if evaluation.asset_check_key == THRESHOLD_CHECK:
            return evaluation
    return None


def failure_summary(instance: DagsterInstance, run_id: str) -> tuple[str, list[str]]:
    """(safe description, failed steps): our own Failure descriptions; other errors by class name only."""
    descriptions, steps = [], []
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        steps.append(event.step_key or "?")
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            descriptions.append(data.user_failure_data.description)
        else:
            cause = data.error.cause if data.error and data.error.cause else data.error
            descriptions.append(f"an unexpected error ({cause.cls_name if cause else 'unknown'})")
    text = "; ".join(dict.fromkeys(descriptions)) or "the run failed before any step ran"
    return (text[:MAX_TEXT] + "…" if len(text) > MAX_TEXT else text), steps


def _publish(
    night: DistrictNight,
    alerts: AlertsResource,
    warehouse: WarehouseResource,
    lms: LmsResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
    log,
) -> tuple[str, str | None]:
    """(district name, link to the night's report) — publishes the report first; never raises."""
    from etl_project.reports import publish_night

    name, timezone = night.district, "UTC"
    try:
        d = districts.get(night.district)
        name, timezone = d.name, d.timezone
    except Exception as exc:
        log.warning(f"district {night.district}: not in the registry ({type(exc).__name__})")
    uri = None
    try:
        published = publish_night(
            warehouse, lms.backend(), archive.open(), night.district, night.date,
            district_name=name, timezone=timezone, states=districts.night_states().by_night(night.district),
        )  # fmt: skip
        uri = published.report_uri
    except Exception as exc:
        log.warning(f"{night}: the report could not be published ({type(exc).__name__})")
    if alerts.reports_url:
        return name, report_link(report_secret(alerts.home), night.district, night.date, alerts.reports_url)
    return name, uri


def _deliver(alert: Alert, alerts: AlertsResource, log) -> None:
    notifiers = alerts.notifiers()
    if not notifiers:
        log.warning(f"alert not sent (no notifier configured): {alert.subject}")
        return
    failures = send_all(alert, notifiers)
    for f in failures:
        log.error(f"alert not delivered: {f}")
    if len(failures) < len(notifiers):
        log.info(f"alert sent: {alert.subject}")


def _night_record(districts: DistrictsResource, night: DistrictNight, run_id: str):
    """The registry's record of the night when this run wrote it (None otherwise or when unreachable)."""
    try:
        record = districts.night_states().get(night.district, night.date)
    except Exception:
        return None
    return record if record is not None and record.run_id == run_id else None


def _held_details(evaluation) -> dict[str, int | str]:
    details: dict[str, int | str] = {}
    breaches = evaluation.metadata.get("breaches")
    for b in (breaches.value if breaches else None) or []:
        if isinstance(b, dict):
            entity, op = b.get("entity", "?"), b.get("kind", "?")
            details[f"{entity} {op}"] = (
                f"{b.get('count', '?')} of {b.get('size', '?')} (limit {b.get('limit', '?')})"
            )
    return details


def failed_run_alert(
    context: RunStatusSensorContext,
    alerts: AlertsResource,
    warehouse: WarehouseResource,
    lms: LmsResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
    *,
    succeeded: bool = False,
) -> Alert | None:
    run = context.dagster_run
    night = night_of_run(run)
    if night is None:
        return None
    evaluation = threshold_evaluation(context.instance, run.run_id)
    held = evaluation is not None and not evaluation.passed
    if succeeded and not held:
        return None
    name, link = _publish(night, alerts, warehouse, lms, archive, districts, context.log)
    verdict = evaluation.metadata.get("verdict") if evaluation else None
    if held and succeeded:
        kind = "deactivations_held"
        what = (
            "The night was applied to the LMS except its deactivations, which exceed the safety limits and "
            "are held for review. " + (f"({verdict.value})" if verdict else "")
        )
    elif held:
        kind = "held"
        what = (
            "The night's roster would change more of the LMS than the safety limits allow, so nothing was "
            "applied. Review the report; to apply it anyway, release it (see the run's check). "
            + (f"({verdict.value})" if verdict else "")
        )
    elif (record := _night_record(districts, night, run.run_id)) is not None and record.state == "blocked":
        kind = "blocked"
        what = f"A blocking check failed, so nothing was applied to the LMS: {record.reason}"
    else:
        kind = "failed"
        text, steps = failure_summary(context.instance, run.run_id)
        what = f"The {run.job_name} run failed ({', '.join(steps) or 'no step'}): {text}"
    details = _held_details(evaluation) if held else {}
    details["run_id"] = run.run_id
    return Alert(kind, night.district, night.date, what.strip(), name, details, link, f"{kind}:{run.run_id}")


_JOBS = [nightly_sync, replay_from_archive, load_lms]


@run_failure_sensor(
    name="sync_failure_alert_sensor",
    monitored_jobs=_JOBS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Sends one alert per failed sync run: a held night (safety thresholds) or a failure, with "
    "the district, the night, what happened and a link to the report. See etl_project/alerts/sensors.py.",
)
def sync_failure_alert_sensor(
    context: RunFailureSensorContext,
    alerts: AlertsResource,
    warehouse: WarehouseResource,
    lms: LmsResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
):
    alert = failed_run_alert(context, alerts, warehouse, lms, archive, districts)
    if alert is None:
        return SkipReason(f"run {context.dagster_run.run_id} is not a district-night run")
    _deliver(alert, alerts, context.log)
    return None


@run_status_sensor(
    name="deactivations_held_alert_sensor",
    run_status=DagsterRunStatus.SUCCESS,
    monitored_jobs=_JOBS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Sends one alert when a successful run held a district's deactivations (WARN hold mode).",
)
def deactivations_held_alert_sensor(
    context: RunStatusSensorContext,
    alerts: AlertsResource,
    warehouse: WarehouseResource,
    lms: LmsResource,
    archive: ArchiveResource,
    districts: DistrictsResource,
):
    alert = failed_run_alert(context, alerts, warehouse, lms, archive, districts, succeeded=True)
    if alert is None:
        return SkipReason("nothing held")
    _deliver(alert, alerts, context.log)
    return None


def new_missing_drops(instance: DagsterInstance, after_id: int, now: dt.datetime) -> list:
    """Failed run-less drop_arrived_on_time records newer than ``after_id``, oldest first."""
    found, cursor = [], None
    while True:
        page = instance.event_log_storage.get_asset_check_execution_history(
            DROP_CHECK_KEY, limit=100, cursor=cursor
        )
        fresh = [r for r in page if r.id > after_id]
        found += fresh
        if len(page) < 100 or len(fresh) < len(page):
            break
        cursor = page[-1].id
    out = [r for r in found if not r.run_id and r.partition and r.evaluation and not r.evaluation.passed]
    if after_id == 0:
        out = [r for r in out if now.timestamp() - r.create_timestamp <= FIRST_LOOKBACK.total_seconds()]
    return sorted(out, key=lambda r: r.id)


@sensor(
    name="missing_drop_alert_sensor",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Sends one alert per missing drop recorded by missing_drop_sensor (deduplicated by cursor).",
)
def missing_drop_alert_sensor(
    context: SensorEvaluationContext, alerts: AlertsResource, districts: DistrictsResource
):
    after = int(context.cursor or 0)
    records = new_missing_drops(context.instance, after, dt.datetime.now(dt.UTC))
    if not records:
        if not after:
            latest = context.instance.event_log_storage.get_asset_check_execution_history(
                DROP_CHECK_KEY, limit=1
            )
            context.update_cursor(str(latest[0].id if latest else 0))
        return SkipReason("no new missing drop")
    secret = report_secret(alerts.home) if alerts.reports_url else None
    for record in records:
        night = DistrictNight.of(record.partition)
        evaluation = record.evaluation
        meta = {k: v.value for k, v in (evaluation.metadata if evaluation else {}).items()}
        try:
            name = districts.get(night.district).name
        except Exception:
            name = ""
        late = int(meta.get("late_minutes", 0) or 0)
        what = (
            f"No drop arrived for this night: it was expected by {meta.get('expected_by', '?')} and is "
            f"{late // 60} h {late % 60:02d} min late. Check that the SIS export ran and reached the SFTP "
            "folder."
        )
        link = (alerts.reports_url.rstrip("/") + district_path(secret, night.district)) if secret else None
        alert = Alert("missing_drop", night.district, night.date, what, name, {"late_minutes": late}, link,
                      f"missing_drop:{record.partition}")  # fmt: skip
        _deliver(alert, alerts, context.log)
        context.update_cursor(str(record.id))
    return None


ALERT_SENSORS = [sync_failure_alert_sensor, deactivations_held_alert_sensor, missing_drop_alert_sensor]
__all__ = ["ALERT_SENSORS", "failed_run_alert"]
