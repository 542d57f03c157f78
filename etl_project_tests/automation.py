"""Helpers for the automation tests: a districts file, definitions bound to a test home, recent nights."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, Definitions

from etl_project.districts import District, LocalSource, to_toml
from etl_project.districts.resource import DistrictsResource
from etl_project.resources import build_resources
from etl_project.settings import Settings
from etl_project_tests.oneroster_drops import write_drop as write_oneroster_drop  # noqa: F401 (re-export)


@pytest.fixture
def registry_home(tmp_path, monkeypatch) -> Path:
    """A fresh ETL_PROJECT_HOME: night states and source polls go to its registry, never the checkout's."""
    home = tmp_path / "home"
    monkeypatch.setenv("ETL_PROJECT_HOME", str(home))
    monkeypatch.delenv("ETL_PROJECT_REGISTRY_URL", raising=False)
    return home


def night(days_ago: int = 1) -> str:
    """A night relative to today (the sensor only considers recent nights)."""
    return (dt.date.today() - dt.timedelta(days=days_ago)).isoformat()


def local_district(did: str, folder: Path, **kwargs) -> District:
    folder.mkdir(parents=True, exist_ok=True)
    return District(id=did, name=did.title(), source=LocalSource(str(folder)), **kwargs)


def write_districts(home: Path, districts: Iterable[District]) -> DistrictsResource:
    path = home / "districts.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml({d.id: d for d in districts}))
    return DistrictsResource(path=str(path))


def record_run(
    instance: DagsterInstance, job_name: str, status: DagsterRunStatus, tags: dict[str, str]
) -> None:
    """A run of ``job_name`` in ``status`` in the instance's run storage, as the daemon records one."""
    instance.add_run(DagsterRun(job_name=job_name, run_id=str(uuid.uuid4()), status=status, tags=tags))


def make_defs(home: Path) -> Definitions:
    """The project's definitions with resources pointed at ``home`` (districts.toml, archive, warehouse)."""
    from etl_project.definitions import defs

    env = {"ETL_PROJECT_HOME": str(home)}
    if (home / "districts.toml").exists():
        env["ETL_PROJECT_DISTRICTS"] = str(home / "districts.toml")
    settings = Settings.from_env(env)
    return Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=build_resources(settings),
    )


class TickLog(logging.Handler):
    """Collects what a sensor tick writes to its log (what the UI shows under the tick)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def clear(self):
        self.lines.clear()
