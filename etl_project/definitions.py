"""The code location: assembles the definitions and nothing else."""

from dagster import Definitions

from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project.assets.oneroster import oneroster_tables
from etl_project.jobs import nightly_sync, replay_from_archive
from etl_project.resources import build_resources

defs = Definitions(
    assets=[fetch_and_archive_drop, oneroster_tables],
    jobs=[nightly_sync, replay_from_archive],
    resources=build_resources(),
)
