"""The persistent Dagster instance the CLI and the UI share (``DAGSTER_HOME``)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from dagster import DagsterInstance

from etl_project.files import PRIVATE_FILE_MODE, private_dir
from etl_project.partitions import DISTRICTS_PARTITION, validate_district_id
from etl_project.settings import Settings

_TEMPLATE = Path(__file__).with_name("dagster.yaml")


def ensure_dagster_home(settings: Settings) -> Path:
    """Use ``DAGSTER_HOME`` if set, else ``$ETL_PROJECT_HOME/dagster``; seed it with our dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    private_dir(home)
    os.environ["DAGSTER_HOME"] = str(home)
    initialized = home / ".etl_project_initialized"
    if initialized.exists():
        return home
    # Two commands starting at once on a new home would both create the SQLite storage and collide
    # ("table ... already exists"): the first one creates it under a lock, the others wait.
    fd = os.open(home / ".etl_project_init.lock", os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not initialized.exists():
            if not (home / "dagster.yaml").exists():
                shutil.copyfile(_TEMPLATE, home / "dagster.yaml")
            DagsterInstance.get().dispose()
            initialized.touch()
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return home


def register_district(instance: DagsterInstance, district_id: str) -> bool:
    """Add the district's dynamic partition if missing; returns True when it was added."""
    validate_district_id(district_id)
    if instance.has_dynamic_partition(DISTRICTS_PARTITION, district_id):
        return False
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, [district_id])
    return True
