"""The LMS assets through Dagster (blocking threshold check, release by run tag); plan/trace/history CLI."""

from __future__ import annotations

import json

from dagster import DagsterInstance, materialize

from etl_project.archive import ArchiveResource
from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project.assets.lms import RELEASE_BY_TAG, RELEASE_REASON_TAG, lms_change_plan, lms_entities
from etl_project.assets.oneroster import oneroster_tables
from etl_project.cli.main import main
from etl_project.districts.resource import DistrictsResource
from etl_project.generate import generate_drop
from etl_project.lms.resource import LmsResource
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight
from etl_project.warehouse import WarehouseResource
from etl_project_tests.lms_helpers import NIGHT1, NIGHT2

ASSETS = [fetch_and_archive_drop, oneroster_tables, lms_change_plan, lms_entities]
RUN_CONFIG = {"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}}


def test_assets_hold_on_blocking_check_then_release(tmp_path, monkeypatch, capsys):
    dropbox = tmp_path / "dropbox"
    for day, night in ((1, NIGHT1), (2, NIGHT2)):
        generate_drop(dropbox / night, 120, day=day, seed=2)
    districts = tmp_path / "districts.toml"
    districts.write_text(
        f'[districts.t1]\nname = "T1"\n[districts.t1.source]\nkind = "local"\npath = "{dropbox}"\n'
        "[districts.t1.thresholds]\ndeactivate = 0\n"  # any deactivation holds the night
    )
    lms_url = f"sqlite:///{tmp_path}/lms.sqlite"
    resources = {
        "districts": DistrictsResource(path=str(districts)),
        "archive": ArchiveResource(url=str(tmp_path / "archive")),
        "warehouse": WarehouseResource(root=str(tmp_path / "warehouse")),
        "lms": LmsResource(url=lms_url),
    }
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["t1"])

        def run(night: str, tags=None):
            return materialize(
                ASSETS,
                partition_key=DistrictNight(night, "t1").key,
                resources=resources,
                instance=instance,
                run_config=RUN_CONFIG,
                tags=tags or {},
                raise_on_error=False,
            )

        first = run(NIGHT1)
        assert first.success
        users = first.asset_materializations_for_node("lms_entities")
        meta = {m.asset_key.to_user_string(): m.metadata for m in users}
        assert meta["lms/users"]["state"].value == "applied" and meta["lms/users"]["created"].value > 0
        assert meta["lms/users"]["ledger_last"].value > 0
        assert "dagster/column_lineage" in meta["lms/users"]

        held = run(NIGHT2)
        assert not held.success
        [check] = [
            e for e in held.get_asset_check_evaluations() if e.check_name == "within_safety_thresholds"
        ]
        assert not check.passed
        assert "etl_project/release_by" in check.metadata["how_to_release"].value
        assert not [m for m in held.get_asset_materialization_events() if m.asset_key.path[0] == "lms"
                    and m.asset_key.path[1] != "change_plan"]  # fmt: skip

        released = run(NIGHT2, {RELEASE_BY_TAG: "ops-lead", RELEASE_REASON_TAG: "withdrawals confirmed"})
        assert released.success
        meta = {
            m.asset_key.to_user_string(): m.metadata
            for m in released.asset_materializations_for_node("lms_entities")
        }
        assert meta["lms/users"]["state"].value == "released"
        assert meta["lms/users"]["released_by"].value == "ops-lead"

    # the CLI reads the same LMS
    monkeypatch.setenv("LMS_URL", lms_url)
    monkeypatch.setenv("ETL_PROJECT_DISTRICTS", str(districts))
    monkeypatch.setenv("ETL_PROJECT_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("ETL_PROJECT_ARCHIVE", str(tmp_path / "archive"))  # plan reads the archived night
    capsys.readouterr()
    assert main(["history", "--district", "t1", "--json"]) == 0
    nights = json.loads(capsys.readouterr().out)
    assert [(n["date"], n["state"]) for n in nights] == [(NIGHT1, "applied"), (NIGHT2, "released")]
    assert nights[1]["counts"]["users"]["deactivated"] >= 1
    assert set(nights[0]) == {"date", "run_id", "state", "counts", "reason", "step"}

    assert main(["trace", "--district", "t1", "--entity", "sections", "--id", "cls-0000001", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["changes"]
    assert rows[-1]["operation"] == "created" and rows[-1]["line"] == 2
    assert rows[-1]["file_uri"].endswith(f"date={NIGHT1}/classes.csv") and len(rows[-1]["file_sha256"]) == 64

    assert main(["plan", "--district", "t1", "--date", NIGHT1, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["would_hold"] is True  # going back to night 1 would deactivate the new students
    assert plan["counts"]["users"]["reactivated"] >= 1

    assert main(["trace", "--district", "t1", "--entity", "pupils", "--id", "x"]) == 2
    assert "unknown LMS entity" in capsys.readouterr().err
