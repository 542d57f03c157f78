"""Data-quality checks on real nights: generated drops -> nightly_sync in process -> DuckDB + SQLite LMS.

Bad nights are made by editing the generated CSVs the way real exports go wrong: a users.csv whose last
line is cut off, a header-only enrollments.csv, a users.csv that lost most of its rows, a district that
grew by a third (drift, a warning only).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from etl_project.checks.rules import evaluate_night
from etl_project.generate import generate_drop
from etl_project.lms import open_backend
from etl_project.oneroster.load import load_drop
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight
from etl_project.warehouse import DUCKDB_CONFIG
from etl_project_tests.automation import local_district, make_defs, write_districts

N1, N2 = "2026-10-05", "2026-10-06"
STUDENTS = 120
DISTRICT = "qc"
FETCH = {"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}}


class Sync:
    """One district in a temp home, synced night by night through the real nightly_sync job."""

    def __init__(self, home: Path, instance):
        self.home, self.instance = home, instance
        self.dropbox = home / "dropbox"
        self.configure()
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, [DISTRICT])

    def configure(self, **thresholds: str) -> None:
        write_districts(self.home, [local_district(DISTRICT, self.dropbox, thresholds=thresholds)])
        self.defs = make_defs(self.home)

    def drop(self, night: str, day: int, students: int = STUDENTS, **kwargs) -> Path:
        out = self.dropbox / night
        generate_drop(out, students, day=day, seed=5, **kwargs)
        return out

    def run(self, night: str, ops: dict | None = None):
        config = {"ops": {**FETCH["ops"], **(ops or {})}}
        return self.defs.resolve_job_def("nightly_sync").execute_in_process(
            partition_key=DistrictNight(night, DISTRICT).key,
            instance=self.instance,
            run_config=config,
            raise_on_error=False,
        )

    def active_users(self) -> int:
        backend = open_backend(f"sqlite:///{self.home / 'lms.sqlite'}")
        with backend.session(DISTRICT, write=False) as s:
            return s.query("SELECT count(*) FROM users WHERE district = %s AND active", [DISTRICT])[0][0]


def checks(result) -> dict[str, object]:
    """'oneroster/users:file_complete' -> evaluation."""
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def materialized(result) -> set[str]:
    return {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}


def lms_loaded(result) -> bool:
    return bool({k for k in materialized(result) if k.startswith("lms/") and k != "lms/change_plan"})


@pytest.fixture
def sync(tmp_path, instance):
    return Sync(tmp_path, instance)


def test_good_nights_pass_every_check_and_the_lms_loads(sync):
    sync.drop(N1, 1)
    first = sync.run(N1)
    assert first.success
    evals = checks(first)
    assert {k for k, e in evals.items() if not e.passed} == set()
    # every rule is there for the tables the LMS is built from, and the LMS checks ran after the load
    for table in ("users", "enrollments", "classes"):
        for rule in (
            "required_fields",
            "valid_values",
            "unique_sourced_ids",
            "file_complete",
            "row_count_drift",
        ):
            assert f"oneroster/{table}:{rule}" in evals
    assert "oneroster/enrollments:references_resolve" in evals
    assert {
        "lms/users:required_fields",
        "lms/users:usernames_unique",
        "lms/enrollments:references_resolve",
    } <= set(evals)
    assert lms_loaded(first)
    assert evals["oneroster/users:row_count_drift"].description.endswith("no earlier bulk night")

    sync.drop(N2, 2)
    second = sync.run(N2)
    assert second.success
    drift = checks(second)["oneroster/users:row_count_drift"]
    assert drift.passed and drift.metadata["previous_night"].value == N1


def test_rejected_rows_are_counted_per_rule_as_warnings_and_the_load_goes_ahead(sync):
    sync.drop(N1, 1)
    assert sync.run(N1).success
    sync.drop(N2, 2, with_errors=3)
    result = sync.run(N2)
    assert result.success and lms_loaded(result)
    failed = {k: e for k, e in checks(result).items() if not e.passed}
    assert failed, "the generated errors must show up as failed checks"
    assert all(e.severity.value == "WARN" for e in failed.values())
    # the counts are the ingest's rejects, per file and rule
    db = duckdb.connect(
        str(sync.home / "warehouse" / f"{DISTRICT}.duckdb"), read_only=True, config=dict(DUCKDB_CONFIG)
    )
    try:
        rejected = dict(
            db.execute(
                "SELECT file, count(DISTINCT line) FROM oneroster.rejects WHERE _date = ? GROUP BY 1", [N2]
            ).fetchall()
        )
    finally:
        db.close()
    reported: dict[str, int] = {}
    for key, e in failed.items():
        table = key.split(":")[0].split("/")[1]
        reported[table] = reported.get(table, 0) + e.metadata["rejected_rows"].value
        assert e.metadata["accepted_rows_violating"].value == 0
        assert "| line |" in e.metadata["sample"].value
    files = {"users": "users.csv", "enrollments": "enrollments.csv", "classes": "classes.csv"}
    for table, n in reported.items():
        assert n >= 1 and n <= rejected[files.get(table, f"{table}.csv")]


def test_truncated_users_file_blocks_the_lms_load_in_the_same_run(sync):
    sync.drop(N1, 1)
    assert sync.run(N1).success
    before = sync.active_users()
    users = sync.drop(N2, 2) / "users.csv"
    data = users.read_bytes()
    users.write_bytes(data[: len(data) - 30])  # the export died mid-row
    result = sync.run(N2)
    assert not result.success
    check = checks(result)["oneroster/users:file_complete"]
    assert not check.passed and check.severity.value == "ERROR"
    assert "is cut off" in check.description and "last_line" in check.metadata
    # blocked before the LMS: no change plan, no threshold check, no lms/* materialization, LMS untouched
    assert "lms/change_plan" not in materialized(result) and not lms_loaded(result)
    assert "lms/change_plan:within_safety_thresholds" not in checks(result)
    assert sync.active_users() == before
    assert "oneroster/users" in materialized(result)  # the night itself is kept for inspection


def test_header_only_enrollments_is_an_empty_export_not_everyone_leaving(sync):
    sync.drop(N1, 1)
    assert sync.run(N1).success
    enrollments = sync.drop(N2, 2) / "enrollments.csv"
    enrollments.write_text(enrollments.read_text().splitlines()[0] + "\n")
    result = sync.run(N2)
    assert not result.success and not lms_loaded(result)
    check = checks(result)["oneroster/enrollments:file_complete"]
    assert not check.passed and "header but no rows" in check.description
    assert check.metadata["rows"].value == 0 and check.metadata["previous_rows"].value > 0


def test_a_big_drop_in_rows_fails_as_truncated_and_warns_as_drift(sync):
    sync.drop(N1, 1)
    assert sync.run(N1).success
    users = sync.drop(N2, 2) / "users.csv"
    lines = users.read_text().splitlines(keepends=True)
    users.write_text("".join(lines[: 1 + (len(lines) - 1) // 3]))  # two thirds of the users gone
    result = sync.run(N2)
    assert not result.success and not lms_loaded(result)
    evals = checks(result)
    assert "looks truncated" in evals["oneroster/users:file_complete"].description
    drift = evals["oneroster/users:row_count_drift"]
    assert not drift.passed and drift.severity.value == "WARN" and drift.metadata["change"].value < -0.5


def test_drift_warns_without_blocking_and_its_threshold_is_config(sync):
    sync.configure(deactivate="50%")  # a regrouping of classes is expected with the growth
    sync.drop(N1, 1)
    assert sync.run(N1).success
    sync.drop(N2, 2, students=STUDENTS * 4 // 3)  # the district grew by a third overnight
    result = sync.run(N2)
    assert result.success and lms_loaded(result)
    drift = checks(result)["oneroster/users:row_count_drift"]
    assert not drift.passed and drift.severity.value == "WARN"
    assert 0.2 < drift.metadata["change"].value < 0.5
    assert checks(result)["oneroster/users:file_complete"].passed

    relaxed = sync.run(N2, {"oneroster_quality": {"config": {"drift_threshold": 0.6}}})
    assert relaxed.success and checks(relaxed)["oneroster/users:row_count_drift"].passed


def test_rows_that_slip_into_the_clean_tables_are_errors(tmp_path):
    """The re-check half of each rule, on a real DuckDB night with rows forced past the ingest."""
    drop = tmp_path / "drop"
    generate_drop(drop, 40, day=1, seed=1)
    conn = duckdb.connect(str(tmp_path / "w.duckdb"), config=dict(DUCKDB_CONFIG))
    try:
        report = load_drop(conn, drop, district="x", date=N1)
        assert not report.refused
        assert all(f.passed for f in evaluate_night(conn, N1))
        conn.execute(
            "INSERT INTO oneroster.users SELECT * REPLACE (9999 AS _line) FROM oneroster.users "
            "WHERE _date = ? ORDER BY _line LIMIT 1",
            [N1],
        )  # a duplicate sourcedId
        conn.execute("UPDATE oneroster.enrollments SET role = 'janitor' WHERE _line = 2 AND _date = ?", [N1])
        conn.execute(
            "UPDATE oneroster.enrollments SET \"userSourcedId\" = 'nobody' WHERE _line = 3 AND _date = ?",
            [N1],
        )
        conn.execute("UPDATE oneroster.classes SET title = NULL WHERE _line = 2 AND _date = ?", [N1])
        found = {(f.table, f.check): f for f in evaluate_night(conn, N1) if not f.passed}
    finally:
        conn.close()
    assert set(found) == {
        ("users", "unique_sourced_ids"),
        ("enrollments", "valid_values"),
        ("enrollments", "references_resolve"),
        ("classes", "required_fields"),
    }
    assert all(f.severity == "ERROR" and f.failing == 1 for f in found.values())
    assert found[("enrollments", "valid_values")].sample[0]["column"] == "role"
    assert found[("enrollments", "references_resolve")].sample[0]["missing"] == "nobody"
    assert found[("classes", "required_fields")].sample[0] == {"line": 2, "sourcedId": found[
        ("classes", "required_fields")].sample[0]["sourcedId"], "column": "title"}  # fmt: skip


def test_lms_checks_find_orphans_and_shared_usernames(sync):
    sync.drop(N1, 1)
    assert sync.run(N1).success
    backend = open_backend(f"sqlite:///{sync.home / 'lms.sqlite'}")
    with backend.session(DISTRICT) as s:
        s.execute("UPDATE users SET active = 0 WHERE id = (SELECT min(user_id) FROM (SELECT u.id AS user_id "
                  "FROM users u JOIN enrollments e ON e.user_sourced_id = u.sourced_id))")  # fmt: skip
        s.execute(
            "UPDATE users SET username = 'same.name' WHERE id IN (SELECT id FROM users ORDER BY id LIMIT 2)"
        )
    from etl_project.checks.lms_rules import evaluate_lms

    found = {(f.table, f.check): f for f in evaluate_lms(backend, DISTRICT) if not f.passed}
    assert set(found) == {("enrollments", "references_resolve"), ("users", "usernames_unique")}
    orphans = found[("enrollments", "references_resolve")]
    assert orphans.failing >= 1 and "is not an active users row" in orphans.sample[0]["detail"]
    assert found[("users", "usernames_unique")].severity == "WARN"
    assert "same.name" not in str(found[("users", "usernames_unique")].sample)


def test_checks_are_wired_into_the_jobs(sync):
    job = sync.defs.resolve_job_def("nightly_sync")
    names = {n.name for n in job.graph.nodes}
    assert {"oneroster_quality", "lms_quality"} <= names
    replay = sync.defs.resolve_job_def("replay_from_archive")
    assert "oneroster_quality" in {n.name for n in replay.graph.nodes}


def test_lineage_reads_well_column_lineage_and_schema_on_the_lms_assets(sync):
    from dagster import AssetKey, TableColumnDep

    graph = sync.defs.resolve_asset_graph()
    groups = {"ingest", "archive", "oneroster", "lms", "reports"}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and node.group_name in groups and node.owners, key
        assert 1 <= len(node.kinds) <= 10, key
    for check_key in graph.asset_check_keys:
        assert graph.get_check_spec(check_key).description, check_key

    users = graph.get(AssetKey(["lms", "users"]))
    lineage = users.metadata["dagster/column_lineage"].deps_by_column
    assert lineage["email"] == [TableColumnDep(AssetKey(["oneroster", "users"]), "email")]
    assert {d.asset_key for d in lineage["role"]} == {
        AssetKey(["oneroster", "users"]),
        AssetKey(["oneroster", "roles"]),
    }
    upstream = set(users.parent_keys)
    assert {d.asset_key for deps in lineage.values() for d in deps} <= upstream
    schema = {c.name: c for c in users.metadata["dagster/column_schema"].columns}
    assert set(lineage) <= set(schema)
    assert schema["email"].description == "from OneRoster users.email"
    assert users.metadata["dagster/table_name"] == "lms.users"
    enrollments = (
        graph.get(AssetKey(["lms", "enrollments"])).metadata["dagster/column_lineage"].deps_by_column
    )
    assert enrollments["section_sourced_id"] == [
        TableColumnDep(AssetKey(["oneroster", "enrollments"]), "classSourcedId")
    ]

    # the same lineage travels with every materialization
    sync.drop(N1, 1)
    result = sync.run(N1)
    meta = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("lms_entities")
    }
    assert meta["lms/users"]["dagster/column_lineage"].value.deps_by_column["email"] == lineage["email"]
    assert "dagster/column_schema" in meta["lms/enrollments"]
