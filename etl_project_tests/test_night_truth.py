"""One truth per night, through the real jobs (their hooks included): every surface says what happened.

Nights run through ``nightly_sync`` exactly as the CLI and the daemon run them: a blocked night (users.csv
saved in Windows-1252, enrollments.csv cut off mid-line) after a good one, a held night, a failed night (the
LMS unreachable), a night whose fetch raises the ``missing`` contract, and a night with rejected rows.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from dagster import (
    DagsterEventType,
    Definitions,
    build_run_status_sensor_context,
)

from etl_project.alerts.resource import AlertsResource
from etl_project.alerts.sensors import failed_run_alert
from etl_project.archive import ArchiveResource
from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project.assets.lms import lms_change_plan, lms_entities
from etl_project.assets.oneroster import oneroster_tables
from etl_project.assets.reports import SYNC_REPORT, district_sync_report
from etl_project.automation.source_health import source_reachable
from etl_project.checks.definitions import quality_checks
from etl_project.cli.main import main
from etl_project.districts.resource import DistrictsResource
from etl_project.generate import generate_drop
from etl_project.jobs import nightly_sync
from etl_project.lms.resource import LmsResource
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight
from etl_project.registry.nights import NightState, NightStates
from etl_project.warehouse import WarehouseResource
from etl_project_tests.lms_helpers import snapshot
from etl_project_tests.reports_helpers import district_toml

NIGHT1, NIGHT2 = "2026-09-14", "2026-09-15"
RUN_CONFIG = {"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}}
ASSETS = [fetch_and_archive_drop, oneroster_tables, lms_change_plan, lms_entities, district_sync_report]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nights:
    """Districts synced night by night through the real ``nightly_sync`` job."""

    def __init__(self, root: Path, instance, districts: dict[str, str], lms_url: str | None = None):
        self.root, self.instance = root, instance
        root.mkdir(parents=True, exist_ok=True)
        toml = [district_toml(d, d.title(), root / f"dropbox-{d}", extra) for d, extra in districts.items()]
        (root / "districts.toml").write_text("\n".join(toml))
        self.resources = {
            "districts": DistrictsResource(path=str(root / "districts.toml")),
            "archive": ArchiveResource(url=str(root / "archive")),
            "warehouse": WarehouseResource(root=str(root / "warehouse")),
            "lms": LmsResource(url=lms_url or f"sqlite:///{root}/lms.sqlite"),
        }
        self.defs = Definitions(
            assets=ASSETS,
            asset_checks=[source_reachable, *quality_checks],  # nightly_sync leaves the sensor's check out
            jobs=[nightly_sync],
            resources=self.resources,
        )
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, list(districts))

    def drop(self, district: str, night: str, day: int, **kwargs) -> Path:
        return generate_drop(
            self.root / f"dropbox-{district}" / night, 40, day=day, seed=5, district_id=district, **kwargs
        ).path

    def run(self, district: str, night: str):
        return self.defs.resolve_job_def("nightly_sync").execute_in_process(
            partition_key=DistrictNight(night, district).key,
            instance=self.instance,
            run_config=RUN_CONFIG,
            raise_on_error=False,
        )

    def env(self) -> dict[str, str]:
        return {
            "ETL_PROJECT_HOME": str(self.root / "home"),
            "ETL_PROJECT_DISTRICTS": str(self.root / "districts.toml"),
            "ETL_PROJECT_ARCHIVE": str(self.root / "archive"),
            "ETL_PROJECT_WAREHOUSE": str(self.root / "warehouse"),
            "LMS_URL": self.resources["lms"].url,
        }


@pytest.fixture
def registry(tmp_path, monkeypatch) -> NightStates:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    monkeypatch.setenv("ETL_PROJECT_REGISTRY_URL", url)
    return NightStates(url)


def _cli(monkeypatch, capsys, nights: Nights, *argv: str) -> tuple[int, str]:
    for k, v in nights.env().items():
        monkeypatch.setenv(k, v)
    code = main(list(argv))
    return code, capsys.readouterr().out


def _cp1252(drop: Path) -> None:
    """users.csv as Excel saves it: Windows-1252, with one accented name."""
    text = (drop / "users.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    fields = lines[1].split(",")
    fields[lines[0].split(",").index("givenName")] = "José"
    lines[1] = ",".join(fields)
    (drop / "users.csv").write_bytes(("\n".join(lines) + "\n").encode("cp1252"))


def _cut_off(drop: Path) -> int:
    """enrollments.csv cut off in the middle of its last line; returns that line's number."""
    data = (drop / "enrollments.csv").read_bytes().rstrip(b"\n")
    last_start = data.rindex(b"\n") + 1
    (drop / "enrollments.csv").write_bytes(data[: last_start + (len(data) - last_start) // 3])
    return data.count(b"\n") + 1


def test_a_blocked_night_is_blocked_everywhere(tmp_path, instance, registry, monkeypatch, capsys):
    nights = Nights(tmp_path, instance, {"lincoln": ""})
    nights.drop("lincoln", NIGHT1, 1)
    assert nights.run("lincoln", NIGHT1).success
    assert registry.get("lincoln", NIGHT1).state is NightState.APPLIED
    lms_before = snapshot(nights.resources["lms"].backend(), "lincoln")

    bad = nights.drop("lincoln", NIGHT2, 2)
    _cp1252(bad)
    cut_line = _cut_off(bad)
    result = nights.run("lincoln", NIGHT2)
    assert not result.success
    lms_after = snapshot(nights.resources["lms"].backend(), "lincoln")
    assert lms_after == lms_before  # the LMS is untouched

    night = registry.get("lincoln", NIGHT2)
    assert night.state is NightState.BLOCKED and night.run_id == result.run_id
    assert night.detail["check"] == "file_complete" and night.detail["file"] == "users.csv"
    assert "users.csv" in night.reason and "UTF-8" in night.reason
    problems = {(p["file"], p["check"]) for p in night.detail["problems"]}
    assert ("enrollments.csv", "file_complete") in problems

    # the alert uses the same word and reason
    [failure] = instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name="sync_failure_alert_sensor", dagster_event=failure.dagster_event,
        dagster_instance=instance, dagster_run=instance.get_run_by_id(result.run_id),
    ).for_run_failure()  # fmt: skip
    alert = failed_run_alert(context, AlertsResource(home=str(tmp_path / "home")), **nights.resources)
    assert alert.kind == "blocked" and "users.csv" in alert.what

    # history: both nights, the blocked one with its reason
    code, out = _cli(monkeypatch, capsys, nights, "history", "--district", "lincoln")
    assert code == 0
    [line1] = [ln for ln in out.splitlines() if ln.startswith(NIGHT1)]
    [line2] = [ln for ln in out.splitlines() if ln.startswith(NIGHT2)]
    assert "applied" in line1 and "blocked" in line2 and "users.csv" in line2
    code, out = _cli(monkeypatch, capsys, nights, "history", "--district", "lincoln", "--json")
    by_date = {n["date"]: n for n in json.loads(out)}
    assert by_date[NIGHT2]["state"] == "blocked" and "users.csv" in by_date[NIGHT2]["reason"]
    assert by_date[NIGHT2]["counts"] == {} and by_date[NIGHT1]["counts"]["users"]["created"] > 0

    # the report exists (published when the night was blocked) and says so, with no other night's changes;
    # the report asset's materialization for the night carries the state
    event = instance.get_latest_materialization_event(SYNC_REPORT)
    assert event.asset_materialization.partition == str(DistrictNight(NIGHT2, "lincoln").key)
    assert event.asset_materialization.metadata["night_state"].value == "blocked"
    archived = nights.resources["archive"].open().get_bytes("lincoln", NIGHT2, "report.html").decode()
    code, out = _cli(monkeypatch, capsys, nights, "report", "--district", "lincoln")
    assert code == 0 and "LMS blocked" in out.splitlines()[0]
    html = Path(out.strip().splitlines()[-1]).read_text()
    for page in (archived, html):
        assert "Blocked" in page and "Synced" not in page and 'id="changes"' not in page
        assert "users.csv" in page and "re-export" in page.lower()
    assert "the file ends mid-line" in html.lower()  # the truncation hint, not the commas/quotes one
    assert "Values that contain commas" not in html

    # one definition of rejected rows and files, everywhere
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name == "file_complete"]
    checked_rows = sum(
        e.metadata["rejected_rows"].value for e in evaluations if "rejected_rows" in e.metadata
    )
    checked_files = sorted(e.metadata["file_rejected"].value for e in evaluations if "file_rejected"
                           in e.metadata)  # fmt: skip
    # the cut-off enrollment, and every row that refers to a user of the rejected users.csv (held with it)
    assert checked_rows > 1 and checked_files == ["users.csv"]
    assert f"Rejected rows ({checked_rows})" in html and f"{checked_rows} row(s) were rejected" in html
    assert "1 file(s) were rejected" in html
    assert f"rows rejected\n{checked_rows}" not in html  # (sanity: the card is a cell, not text)
    line = out.splitlines()[0]
    assert f"{checked_rows} rejected row(s)" in line and "1 rejected file(s)" in line
    cut = [p for p in night.detail["problems"] if p["file"] == "enrollments.csv"]
    assert str(cut_line) in cut[0]["description"]


def test_held_and_failed_and_missing_nights(tmp_path, instance, registry, monkeypatch, capsys):
    nights = Nights(tmp_path, instance, {"hayes": "[districts.hayes.thresholds]\ndeactivate = 0\n"})
    nights.drop("hayes", NIGHT1, 1)
    nights.drop("hayes", NIGHT2, 2)
    first, held_run = nights.run("hayes", NIGHT1), nights.run("hayes", NIGHT2)
    assert first.success and not held_run.success
    users = {
        m.asset_key.to_user_string(): m.metadata
        for m in first.asset_materializations_for_node("lms_entities")
    }
    assert users["lms/users"]["night_state"].value == "applied"
    [plan] = held_run.asset_materializations_for_node("lms__change_plan")
    assert plan.metadata["night_state"].value == "held"
    held = registry.get("hayes", NIGHT2)
    assert held.state is NightState.HELD and "deactivat" in held.reason
    code, out = _cli(monkeypatch, capsys, nights, "report", "--district", "hayes", "--date", NIGHT2)
    assert code == 0
    html = Path(out.strip().splitlines()[-1]).read_text()
    assert "Held" in html and "release" in html and "Synced" not in html
    _, out = _cli(monkeypatch, capsys, nights, "history", "--district", "hayes")
    assert [ln for ln in out.splitlines() if ln.startswith(NIGHT2) and "held" in ln]

    # the LMS unreachable: failed, with the step, and no password in the reason
    down = Nights(tmp_path / "down", instance, {"adams": ""},
                  lms_url=f"postgresql://etl:s3cret-pw@127.0.0.1:{_free_port()}/lms")  # fmt: skip
    down.drop("adams", NIGHT1, 1)
    assert not down.run("adams", NIGHT1).success
    failed = registry.get("adams", NIGHT1)
    assert failed.state is NightState.FAILED and failed.step == "lms__change_plan"
    assert failed.reason and "s3cret-pw" not in failed.reason and "\n" not in failed.reason

    # no drop for a night: the real fetch step fails at once, and the night is missing
    assert not nights.run("hayes", "2026-09-16").success
    missing = registry.get("hayes", "2026-09-16")
    assert missing.state is NightState.MISSING
    assert (
        missing.reason.startswith("no complete drop for 2026-09-16 in ")
        and "newest complete drop is" in missing.reason
    )


def test_trace_explains_a_rejected_record(tmp_path, instance, registry, monkeypatch, capsys):
    nights = Nights(tmp_path, instance, {"grant": ""})
    nights.drop("grant", NIGHT1, 1)
    drop = generate_drop(tmp_path / "dropbox-grant" / NIGHT2, 40, day=2, seed=5, district_id="grant",
                         with_errors=3)  # fmt: skip
    assert nights.run("grant", NIGHT1).success
    assert nights.run("grant", NIGHT2).success
    [error] = [e for e in drop.errors if e.file == "users.csv" and e.kind == "missing_required"]

    code, out = _cli(monkeypatch, capsys, nights, "trace", "--district", "grant", "--entity", "users",
                     "--id", error.sourced_id)  # fmt: skip
    assert code == 1
    assert f"users.csv line {error.line}" in out and "username" in out
    assert "still kept out" in out and NIGHT2 in out
    code, out = _cli(monkeypatch, capsys, nights, "trace", "--district", "grant", "--entity", "users",
                     "--id", error.sourced_id, "--json")  # fmt: skip
    data = json.loads(out)
    assert data["changes"] == []
    [kept] = data["kept_out"]
    assert kept["file"] == "users.csv" and kept["line"] == error.line and kept["column"] == "username"
    assert kept["date"] == NIGHT2 and kept["code"] == "required_missing" and kept["reason"]
    assert data["still_kept_out"] is True and data["district_night"]["state"] == "applied"
