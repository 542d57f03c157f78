"""Two districts synced for real through Dagster (fetch -> archive -> OneRoster -> LMS -> report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from etl_project.archive import ArchiveResource
from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project.assets.lms import lms_change_plan, lms_entities
from etl_project.assets.oneroster import oneroster_tables
from etl_project.assets.reports import district_sync_report
from etl_project.districts.resource import DistrictsResource
from etl_project.generate import GeneratedDrop, generate_drop
from etl_project.lms.resource import LmsResource
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight
from etl_project.warehouse import WarehouseResource

ASSETS = [fetch_and_archive_drop, oneroster_tables, lms_change_plan, lms_entities, district_sync_report]
RUN_CONFIG = {"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}}
NIGHT1, NIGHT2 = "2026-09-14", "2026-09-15"


@dataclass
class Synced:
    root: Path
    districts_file: Path
    resources: dict[str, object]
    drops: dict[tuple[str, str], GeneratedDrop] = field(default_factory=dict)
    results: dict[tuple[str, str], ExecuteInProcessResult] = field(default_factory=dict)

    @property
    def archive(self) -> ArchiveResource:
        return self.resources["archive"]  # type: ignore[return-value]

    def env(self) -> dict[str, str]:
        """The environment that makes the CLI see the same districts, archive, warehouse and LMS."""
        return {
            "ETL_PROJECT_HOME": str(self.root / "home"),
            "ETL_PROJECT_DISTRICTS": str(self.districts_file),
            "ETL_PROJECT_ARCHIVE": str(self.root / "archive"),
            "ETL_PROJECT_WAREHOUSE": str(self.root / "warehouse"),
            "LMS_URL": f"sqlite:///{self.root}/lms.sqlite",
        }


def district_toml(district: str, name: str, dropbox: Path, extra: str = "") -> str:
    return (
        f'[districts.{district}]\nname = "{name}"\ntimezone = "America/Chicago"\n'
        f'[districts.{district}.source]\nkind = "local"\npath = "{dropbox}"\n{extra}'
    )


def sync_districts(
    root: Path,
    instance: DagsterInstance,
    districts: dict[str, str],
    *,
    students: int = 60,
    errors_night2: int = 6,
    thresholds: str = "",
) -> Synced:
    """Generate two nights per district (night 2 with ``errors_night2`` bad rows) and sync them."""
    toml = []
    drops: dict[tuple[str, str], GeneratedDrop] = {}
    for district, name in districts.items():
        dropbox = root / f"dropbox-{district}"
        for day, night in ((1, NIGHT1), (2, NIGHT2)):
            drops[(district, night)] = generate_drop(
                dropbox / night, students, day=day, seed=3, with_errors=errors_night2 if day == 2 else 0,
                district_id=district, district_name=name,
            )  # fmt: skip
        toml.append(district_toml(district, name, dropbox, thresholds.format(district=district)))
    districts_file = root / "districts.toml"
    districts_file.write_text("\n".join(toml))
    resources = {
        "districts": DistrictsResource(path=str(districts_file)),
        "archive": ArchiveResource(url=str(root / "archive")),
        "warehouse": WarehouseResource(root=str(root / "warehouse")),
        "lms": LmsResource(url=f"sqlite:///{root}/lms.sqlite"),
    }
    synced = Synced(root, districts_file, resources, drops)
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, list(districts))
    for district in districts:
        for night in (NIGHT1, NIGHT2):
            synced.results[(district, night)] = materialize(
                ASSETS,
                partition_key=DistrictNight(night, district).key,
                resources=resources,
                instance=instance,
                run_config=RUN_CONFIG,
                raise_on_error=False,
            )
    return synced


def sync_north_and_south(root: Path) -> Synced:
    """The two districts most report tests use, synced in an ephemeral Dagster instance."""
    with DagsterInstance.ephemeral() as instance:
        return sync_districts(root, instance, {"north": "North Unified", "south": "South County Schools"})
