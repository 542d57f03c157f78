"""The persistent Dagster instance the CLI and the UI share (``DAGSTER_HOME``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster import DagsterInstance

from etl_project.partitions import DISTRICTS_PARTITION, validate_district_id
from etl_project.settings import Settings

_TEMPLATE = Path(__file__).with_name("dagster.yaml")


def ensure_dagster_home(settings: Settings) -> Path:
    """Use ``DAGSTER_HOME`` if set, else ``$ETL_PROJECT_HOME/dagster``; seed it with our dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(_TEMPLATE, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def register_district(instance: DagsterInstance, district_id: str) -> bool:
    """Add the district's dynamic partition if missing; returns True when it was added."""
    validate_district_id(district_id)
    if instance.has_dynamic_partition(DISTRICTS_PARTITION, district_id):
        return False
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, [district_id])
    return True
