"""The code location: assembles the definitions and nothing else."""

from dagster import Definitions, colored_console_logger

from etl_project.alerts.sensors import ALERT_SENSORS
from etl_project.assets.ingest import fetch_and_archive_drop, with_archive_kind
from etl_project.assets.lms import lms_change_plan, lms_entities
from etl_project.assets.oneroster import oneroster_tables
from etl_project.assets.reports import district_sync_report
from etl_project.automation.celery_runs import celery_run_sweeper
from etl_project.automation.freshness import drop_arrived_on_time, missing_drop_sensor
from etl_project.automation.schedules import nightly_sync_schedule
from etl_project.automation.sensors import new_drop_sensor
from etl_project.automation.source_health import source_reachable
from etl_project.automation.stale_runs import stale_run_sweeper
from etl_project.checks.definitions import quality_checks
from etl_project.jobs import load_lms, nightly_sync, replay_from_archive
from etl_project.progress import STEP_LINES_LOGGER, step_lines
from etl_project.resources import build_resources
from etl_project.settings import Settings


def build_defs(settings: Settings | None = None) -> Definitions:
    """The definitions for ``settings`` (default: the environment): resources and the archive's kind."""
    settings = settings or Settings.from_env()
    fetch = with_archive_kind(fetch_and_archive_drop, settings.archive_url)
    return Definitions(
        assets=[fetch, oneroster_tables, lms_change_plan, lms_entities, district_sync_report],
        asset_checks=[drop_arrived_on_time, source_reachable, *quality_checks],
        jobs=[nightly_sync, replay_from_archive, load_lms],
        schedules=[nightly_sync_schedule],
        sensors=[new_drop_sensor, missing_drop_sensor, stale_run_sweeper, celery_run_sweeper, *ALERT_SENSORS],
        resources=build_resources(settings),
        # console: Dagster's default; step_lines: one line per step (`etl-project sync` selects it)
        loggers={"console": colored_console_logger, STEP_LINES_LOGGER: step_lines},
    )


defs = build_defs()
