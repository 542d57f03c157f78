"""The code location: assembles the definitions and nothing else."""

from dagster import Definitions

from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project.assets.lms import lms_change_plan, lms_entities
from etl_project.assets.oneroster import oneroster_tables
from etl_project.jobs import load_lms, nightly_sync, replay_from_archive
from etl_project.resources import build_resources

defs = Definitions(
    assets=[fetch_and_archive_drop, oneroster_tables, lms_change_plan, lms_entities],
    jobs=[nightly_sync, replay_from_archive, load_lms],
    resources=build_resources(),
)
