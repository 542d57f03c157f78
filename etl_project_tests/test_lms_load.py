"""The LMS load against a real PostgreSQL server (started by the fixture) and the embedded SQLite backend."""

from __future__ import annotations

import csv
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import psycopg
import pytest

from etl_project.generate import generate_drop
from etl_project.lms import Release, Thresholds, mask_url, open_backend, plan_night
from etl_project.lms.history import history, trace
from etl_project.lms.postgres import _tail
from etl_project.lms.schema import entity as entity_def
from etl_project.lms.thresholds import ThresholdConfigError
from etl_project.oneroster.load import FileProvenance, load_drop
from etl_project.warehouse import WarehouseResource
from etl_project_tests.lms_helpers import (
    DEFAULTS,
    NIGHT1,
    NIGHT2,
    NIGHT3,
    copy_drop,
    edit_in_lms,
    ingest,
    load,
    manifest,
    query,
    replace_line,
    snapshot,
    start_load,
    user_line,
    waiting_loader,
)

STUDENTS = 150


@pytest.fixture(scope="module")
def drops(tmp_path_factory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("lms-drops")
    return {
        day: generate_drop(
            root / f"day{day}", STUDENTS, day=day, seed=5, with_errors=3 if day == 2 else 0
        ).path
        for day in (1, 2)
    }


@pytest.fixture(params=["postgres", "sqlite"])
def backend(request, tmp_path):
    url = (
        request.getfixturevalue("pg_url")
        if request.param == "postgres"
        else f"sqlite:///{tmp_path}/lms.sqlite"
    )
    return open_backend(url)


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    return WarehouseResource(root=str(tmp_path / "warehouse"))


def _oneroster_ids(warehouse, district, table, date, where="true") -> set[str]:
    with warehouse.connect(district) as duck:
        rows = duck.execute(
            f'SELECT "sourcedId" FROM oneroster.{table} WHERE _date = CAST(? AS DATE) AND {where}', [date]
        ).fetchall()
    return {r[0] for r in rows}


def test_literals_and_values_holding_question_marks_and_percent_signs_are_kept(backend):
    """Both backends take psycopg's placeholders (``%s``; ``%%`` is a percent sign when there are
    parameters): a SQL literal or a value holding ``?`` or ``%s`` comes back as written."""
    value = "What? 100%s of 'Lincoln' ?1 %%"
    with backend.session("what", write=True) as s:
        assert s.query("SELECT 'What? 100%s', '?'") == [("What? 100%s", "?")]
        assert s.query("SELECT 'What? 100%%s', %s, '?'", [value]) == [("What? 100%s", value, "?")]
        runs = s.table("sync_runs")
        s.execute(
            f"INSERT INTO {runs} (district, partition_date, run_id, state, started_at) "
            "VALUES (%s, %s, %s, 'failed', CURRENT_TIMESTAMP)",
            ["what", "2026-09-14", value],
        )
        assert s.query(f"SELECT run_id FROM {runs} WHERE run_id = %s AND '%%' = '%%'", [value]) == [(value,)]


def test_day1_day2_then_rerun_changes_nothing(backend, warehouse, drops):
    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, drops[2])
    first = load(warehouse, backend, "d1", NIGHT1)
    users1 = _oneroster_ids(warehouse, "d1", "users", NIGHT1)
    assert first.state == "applied"
    assert first.written["users"]["created"] == len(users1)
    assert first.written["enrollments"]["created"] == len(
        _oneroster_ids(warehouse, "d1", "enrollments", NIGHT1)
    )
    assert first.written["schools"]["created"] == len(
        _oneroster_ids(warehouse, "d1", "orgs", NIGHT1, "type = 'school'")
    )
    ledger = query(backend, "d1", "SELECT count(*) FROM {p}change_ledger WHERE district = %s", ["d1"])[0][0]
    assert ledger == first.rows_written <= first.ledger_last - first.ledger_first + 1

    second = load(warehouse, backend, "d1", NIGHT2)
    assert second.state == "applied"
    users2 = _oneroster_ids(warehouse, "d1", "users", NIGHT2)
    withdrawn = users1 - users2
    assert withdrawn and second.written["users"]["deactivated"] == len(withdrawn)
    for sid in withdrawn:
        active, deactivated_at = query(
            backend,
            "d1",
            "SELECT active, deactivated_at FROM {p}users WHERE district = %s AND sourced_id = %s",
            ["d1", sid],
        )[0]
        assert not active and deactivated_at is not None
    assert second.written["users"]["updated"] >= 1 and second.written["sections"]["updated"] >= 1
    assert second.written["enrollments"]["created"] >= 1 and second.written["enrollments"]["deactivated"] >= 1
    # the renamed student: the LMS now holds day 2's family name, and the ledger has before/after
    renamed = [r for r in trace_all(backend, "d1", "users") if r[1] == "updated"]
    sid, _, changes = renamed[0]
    with warehouse.connect("d1") as duck:
        family = duck.execute(
            'SELECT "familyName" FROM oneroster.users WHERE _date = DATE \'2026-09-15\' AND "sourcedId" = ?',
            [sid],
        ).fetchone()[0]
    assert changes["family_name"]["after"] == family
    assert (
        query(backend, "d1", "SELECT family_name FROM {p}users WHERE sourced_id = %s", [sid])[0][0] == family
    )
    # rejected rows (err-*) never reach the LMS
    assert not query(backend, "d1", "SELECT count(*) FROM {p}users WHERE sourced_id LIKE 'err-%%'")[0][0]
    assert second.changes.entities["users"].counts["held"] == 2

    before = snapshot(backend, "d1")
    runs = query(backend, "d1", "SELECT count(*) FROM {p}sync_runs")[0][0]
    again = load(warehouse, backend, "d1", NIGHT2, run_id="rerun")
    assert again.state == "unchanged" and again.rows_written == 0 and again.sync_run_id is None
    assert snapshot(backend, "d1") == before
    assert query(backend, "d1", "SELECT count(*) FROM {p}sync_runs")[0][0] == runs
    nights = history(backend, "d1")
    assert [(n["date"], n["state"], n["run_id"]) for n in nights] == [
        (NIGHT1, "applied", f"run-{NIGHT1}"),
        (NIGHT2, "applied", f"run-{NIGHT2}"),
    ]
    assert nights[1]["counts"]["users"]["deactivated"] == len(withdrawn)


def test_an_older_night_is_never_applied_over_a_newer_one(backend, warehouse, drops):
    """Night 1's run retried after night 2 was applied (a lost worker's run requeued behind it) would undo
    night 2: the change plan and the load refuse it, name the newer night, and leave the LMS as it is."""
    from etl_project.lms.load import NewerNightApplied, refuse_older_night

    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, drops[2])
    assert load(warehouse, backend, "d1", NIGHT2).state == "applied"
    before = snapshot(backend, "d1")
    runs = query(backend, "d1", "SELECT count(*) FROM {p}sync_runs WHERE state = 'applied'")[0][0]
    with pytest.raises(
        NewerNightApplied, match=f"night {NIGHT1} of d1 was not applied: .* newer night {NIGHT2}"
    ):
        load(warehouse, backend, "d1", NIGHT1)
    with pytest.raises(NewerNightApplied):  # what the nightly graph's change plan asks first
        refuse_older_night(backend, "d1", NIGHT1)
    assert snapshot(backend, "d1") == before
    assert query(backend, "d1", "SELECT count(*) FROM {p}sync_runs WHERE state = 'applied'")[0][0] == runs
    assert load(warehouse, backend, "d1", NIGHT2, run_id="again").state == "unchanged"  # the same night: fine
    ingest(warehouse, "d2", NIGHT1, drops[1])
    assert load(warehouse, backend, "d2", NIGHT1).state == "applied"  # another district: unaffected


def trace_all(backend, district, entity):
    rows = query(
        backend,
        district,
        "SELECT sourced_id, operation, changes FROM {p}change_ledger WHERE entity = %s ORDER BY id",
        [entity],
    )

    return [(r[0], r[1], json.loads(r[2]) if isinstance(r[2], str) else r[2]) for r in rows]


def test_rejected_user_is_held_with_its_enrollments(backend, warehouse, drops, tmp_path):
    drop2 = copy_drop(drops[2], tmp_path / "day2")
    index, line = user_line(drop2, "stu-0000010")
    replace_line(drop2 / "users.csv", index, line.replace(",student,", ",Student Teacher,"))
    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, drop2)
    load(warehouse, backend, "d1", NIGHT1)
    enrolled = query(
        backend, "d1", "SELECT count(*) FROM {p}enrollments WHERE user_sourced_id = 'stu-0000010' AND active"
    )[0][0]
    assert enrolled > 0
    with warehouse.connect("d1") as duck:
        plan = plan_night(duck, backend, "d1", NIGHT2, DEFAULTS, sample_size=50)
    held = {r["sourced_id"]: r["reason"] for r in plan.samples["users"] if r["op"] == "held"}
    for name, changes in plan.changes.entities.items():  # up to 50 sample rows per operation, in order
        for op in ("created", "updated", "deactivated"):
            rows = [r["sourced_id"] for r in plan.samples[name] if r["op"] == op]
            assert len(rows) == min(50, changes.counts[op]) and rows == sorted(rows)
    assert held["stu-0000010"].startswith("rejected (invalid_enum)")
    held_enrollments = [r for r in plan.samples["enrollments"] if r["op"] == "held"]
    assert any("stu-0000010" in r["reason"] for r in held_enrollments)
    result = load(warehouse, backend, "d1", NIGHT2)
    assert result.state == "applied"
    # held, not deactivated: the user and the enrollments stay exactly as they were
    assert query(backend, "d1", "SELECT active, role FROM {p}users WHERE sourced_id = 'stu-0000010'")[0] in [
        (True, "student"),
        (1, "student"),
    ]
    assert (
        query(
            backend,
            "d1",
            "SELECT count(*) FROM {p}enrollments WHERE user_sourced_id = 'stu-0000010' AND active",
        )[0][0]
        == enrolled
    )
    assert [r["operation"] for r in trace(backend, "d1", "users", "stu-0000010")] == ["created"]


def test_first_load_with_held_rows_keeps_ids_and_ledger_consistent(backend, warehouse, drops, tmp_path):
    """A first load numbers its rows by their place in the night's file, so held rows leave unused ids: every
    written row still has one LMS id of its own and one ledger entry naming it, and the next night's ids
    come after the reserved blocks."""
    drop1 = copy_drop(drops[1], tmp_path / "day1")
    index, line = user_line(drop1, "stu-0000010")
    fields = line.split(",")
    fields[1], fields[2] = "tobedeleted", "2026-09-14T10:00:00Z"
    replace_line(drop1 / "users.csv", index, ",".join(fields))
    bulk = ("academicSessions", "classes", "courses", "demographics", "enrollments", "orgs")
    manifest(drop1, {**dict.fromkeys(bulk, "bulk"), "users": "delta"})
    ingest(warehouse, "d1", NIGHT1, drop1)
    ingest(warehouse, "d1", NIGHT2, drops[2])
    first = load(warehouse, backend, "d1", NIGHT1)
    # the user is not created (its delta row says tobedeleted), so its enrollments are held: rows of the
    # night's files that are not written
    users, enrollments = (first.changes.entities[name].counts for name in ("users", "enrollments"))
    assert (
        users["unchanged"] == 1
        and users["created"] == len(_oneroster_ids(warehouse, "d1", "users", NIGHT1)) - 1
    )
    held = enrollments["held"]
    assert (
        held > 0
        and enrollments["created"] == len(_oneroster_ids(warehouse, "d1", "enrollments", NIGHT1)) - held
    )
    assert not query(
        backend, "d1", "SELECT count(*) FROM {p}enrollments WHERE user_sourced_id = 'stu-0000010'"
    )[0][0]

    def consistent(night) -> int:
        """The night's ledger entries: their ids within its block, every ledger id and LMS id used once, each
        entry naming the LMS row it wrote by both ids. Returns how many entries the night has."""
        entries, total, distinct = query(
            backend,
            "d1",
            "SELECT count(*) FILTER (WHERE id BETWEEN %s AND %s), count(*), count(DISTINCT id) "
            "FROM {p}change_entries",
            [night.ledger_first, night.ledger_last],
        )[0]
        assert total == distinct
        assert not query(
            backend,
            "d1",
            "SELECT count(*) FROM {p}change_ledger l LEFT JOIN {p}id_map m ON m.lms_id = l.lms_id "
            "AND m.entity = l.entity AND m.sourced_id = l.sourced_id WHERE m.lms_id IS NULL",
        )[0][0]
        rows, distinct_ids = query(backend, "d1", "SELECT count(*), count(DISTINCT lms_id) FROM {p}id_map")[0]
        assert rows == distinct_ids
        return entries

    assert consistent(first) == first.rows_written < first.ledger_last - first.ledger_first + 1  # unused ids
    assert load(warehouse, backend, "d1", NIGHT1).state == "unchanged"
    second = load(warehouse, backend, "d1", NIGHT2)
    assert second.state == "applied" and second.ledger_first > first.ledger_last
    assert consistent(second) == second.rows_written
    # the user held on the first night is valid on the second: created then, with its enrollments
    assert [r["operation"] for r in trace(backend, "d1", "users", "stu-0000010")] == ["created"]
    assert query(backend, "d1", "SELECT count(*) FROM {p}enrollments WHERE user_sourced_id = 'stu-0000010'")[
        0
    ][0]


def test_delta_file_and_absent_files(pg_backend, warehouse, drops, tmp_path):
    backend = pg_backend
    ingest(warehouse, "d1", NIGHT1, drops[1])
    load(warehouse, backend, "d1", NIGHT1)
    header = (drops[1] / "users.csv").read_text().splitlines()[0]
    _, leaving = user_line(drops[1], "stu-0000020")
    delta = tmp_path / "delta"
    delta.mkdir()
    fields = leaving.split(",")
    fields[1], fields[2] = "tobedeleted", "2026-09-15T10:00:00Z"
    new = "stu-9999999,active,2026-09-15T10:00:00Z,true,sch-00001,student,new.kid,,New,Kid,,9999999,,,,,05,"
    (delta / "users.csv").write_text("\n".join([header, ",".join(fields), new]) + "\n")
    manifest(delta, {"users": "delta"})
    ingest(warehouse, "d1", NIGHT2, delta)
    before = snapshot(backend, "d1")
    result = load(warehouse, backend, "d1", NIGHT2)
    assert {k: v.mode for k, v in result.changes.entities.items()} == {
        "schools": "untouched", "terms": "untouched", "courses": "untouched", "sections": "untouched",
        "users": "delta", "enrollments": "untouched",
    }  # fmt: skip
    assert result.written["users"] == {"created": 1, "updated": 0, "deactivated": 1, "reactivated": 0}
    assert sum(result.rows_written for _ in [0]) == 2
    after = snapshot(backend, "d1")
    for entity in ("schools", "terms", "courses", "sections", "enrollments"):
        assert after[entity] == before[entity]  # absent files leave their entities untouched
    assert query(backend, "d1", "SELECT active FROM {p}users WHERE sourced_id = 'stu-0000020'")[0][0] is False
    # the deactivation came from the delta file's row: the ledger names its line
    [deactivated] = [
        r for r in trace(backend, "d1", "users", "stu-0000020") if r["operation"] == "deactivated"
    ]
    with warehouse.connect("d1") as duck:
        line = duck.execute(
            'SELECT _line FROM oneroster.users WHERE _date = CAST(? AS DATE) AND "sourcedId" = ?',
            [NIGHT2, "stu-0000020"],
        ).fetchone()[0]
    assert line == 2 and deactivated["line"] == line
    # a later delta brings the student back: reactivated
    back = tmp_path / "back"
    back.mkdir()
    fields[1] = "active"
    (back / "users.csv").write_text("\n".join([header, ",".join(fields)]) + "\n")
    manifest(back, {"users": "delta"})
    ingest(warehouse, "d1", NIGHT3, back)
    result = load(warehouse, backend, "d1", NIGHT3)
    assert result.written["users"]["reactivated"] == 1
    ops = [r["operation"] for r in trace(backend, "d1", "users", "stu-0000020")]
    assert ops == ["reactivated", "deactivated", "created"]


def _truncated_day2(drops, tmp_path) -> Path:
    drop2 = copy_drop(drops[2], tmp_path / "truncated")
    lines = (drop2 / "users.csv").read_text().splitlines()
    (drop2 / "users.csv").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    return drop2


def test_threshold_hold_then_release_recorded(pg_backend, warehouse, drops, tmp_path):
    backend = pg_backend
    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, _truncated_day2(drops, tmp_path))
    load(warehouse, backend, "d1", NIGHT1)
    before = snapshot(backend, "d1")
    held = load(warehouse, backend, "d1", NIGHT2, run_id="held-run")
    assert held.state == "held" and held.rows_written == 0
    assert [b.entity for b in held.verdict.breaches if b.kind == "deactivate"] == ["users"]
    assert snapshot(backend, "d1") == before
    assert history(backend, "d1")[-1]["state"] == "held"

    released = load(
        warehouse,
        backend,
        "d1",
        NIGHT2,
        run_id="release-run",
        release=Release(by="ana", reason="mid-year cleanup"),
    )
    assert released.state == "released" and released.written["users"]["deactivated"] > 0
    night = history(backend, "d1")[-1]
    assert (night["state"], night["run_id"], night["released_by"]) == ("released", "release-run", "ana")
    rows = query(
        backend,
        "d1",
        "SELECT DISTINCT released_by, release_reason FROM {p}change_ledger WHERE run_id = 'release-run'",
    )
    assert rows == [("ana", "mid-year cleanup")]
    with pytest.raises(ValueError):
        Release(by="ana", reason=" ")


def test_hold_only_deactivations_mode(backend, warehouse, drops, tmp_path):
    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, _truncated_day2(drops, tmp_path))
    load(warehouse, backend, "d1", NIGHT1)
    thresholds = Thresholds.from_config({"hold": "deactivations"})
    result = load(warehouse, backend, "d1", NIGHT2, thresholds=thresholds)
    assert result.state == "held"
    assert all(ops["deactivated"] == 0 for ops in result.written.values())
    assert result.written["sections"]["updated"] >= 1  # updates still applied
    assert query(backend, "d1", "SELECT count(*) FROM {p}users WHERE NOT active")[0][0] == 0


def test_edit_made_in_the_lms_is_seen_by_the_next_change_set(backend, warehouse, drops):
    ingest(warehouse, "d1", NIGHT1, drops[1])
    load(warehouse, backend, "d1", NIGHT1)
    edit_in_lms(backend, "UPDATE {p}users SET given_name = 'Edited' WHERE sourced_id = 'stu-0000001'")
    edit_in_lms(backend, "UPDATE {p}sections SET active = false WHERE sourced_id = 'cls-0000001'")
    result = load(warehouse, backend, "d1", NIGHT1, run_id="again")
    assert result.written["users"]["updated"] == 1 and result.written["sections"]["reactivated"] == 1
    assert result.rows_written == 2
    latest = trace(backend, "d1", "users", "stu-0000001")[0]
    assert latest["changes"]["given_name"]["before"] == "Edited"

    def row_hash() -> int | None:
        sql = "SELECT row_hash FROM {p}users WHERE district = %s AND sourced_id = 'stu-0000001'"
        return query(backend, "d1", sql, ["d1"])[0][0]

    # An edit made in the LMS clears the row's stored hash (trigger), so the next night compares it in full;
    # edited back to the roster's value, it is not a change: nothing is written or recorded, the hash returns.
    synced = row_hash()
    assert synced is not None
    edit_in_lms(backend, "UPDATE {p}users SET given_name = 'Typo' WHERE sourced_id = 'stu-0000001'")
    assert row_hash() is None
    edit_in_lms(
        backend,
        "UPDATE {p}users SET given_name = %s WHERE sourced_id = 'stu-0000001'",
        [latest["changes"]["given_name"]["after"]],
    )
    assert row_hash() is None
    result = load(warehouse, backend, "d1", NIGHT1, run_id="edited-back")
    assert (result.state, result.rows_written) == ("unchanged", 0)
    assert row_hash() == synced
    assert trace(backend, "d1", "users", "stu-0000001")[0]["run_id"] == "again"


def test_thresholds_config():
    t = Thresholds.from_config({"deactivate": "5%", "users": {"deactivate": 3, "update": "50%"}})
    assert str(t.limits["users"]["deactivate"]) == "3" and str(t.limits["courses"]["deactivate"]) == "5%"
    assert str(t.limits["courses"]["update"]) == "75%"
    for bad in (
        {"deactivate": "ten"},
        {"hold": "some"},
        {"pupils": {"deactivate": 1}},
        {"users": {"delete": 1}},
    ):
        with pytest.raises(ThresholdConfigError):
            Thresholds.from_config(bad)


def test_mask_url():
    assert mask_url("postgresql://lms:s3cret@db:5432/lms") == "postgresql://lms:***@db:5432/lms"
    assert mask_url("sqlite:////tmp/x.sqlite") == "sqlite:////tmp/x.sqlite"


# --- crashes, locks, concurrency (PostgreSQL) ------------------------------------------------------------

CHILD = """
import sys
from etl_project.lms import Thresholds, load_night, open_backend
from etl_project.warehouse import WarehouseResource
root, district, url, date = sys.argv[1:]
with WarehouseResource(root=root).connect(district) as duck:
    load_night(duck, open_backend(url), district, date, run_id="child", thresholds=Thresholds.from_config({}))
"""


def _gone(url: str, pid: int) -> None:
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the loader's backend did not go away"
            time.sleep(0.02)


def _prepare_crash(pg_url, warehouse, drops):
    backend = open_backend(pg_url)
    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, drops[2])
    load(warehouse, backend, "d1", NIGHT1)
    return backend, snapshot(backend, "d1")


def _converges(backend, warehouse):
    result = load(warehouse, backend, "d1", NIGHT2)
    assert result.state == "applied" and result.written["users"]["deactivated"] >= 1
    assert load(warehouse, backend, "d1", NIGHT2, run_id="x").state == "unchanged"


def test_killed_load_process_leaves_lms_as_before(pg_url, warehouse, drops):
    backend, before = _prepare_crash(pg_url, warehouse, drops)
    # the loader blocks on its first users write: by then schools..sections were written in its transaction
    _kill_loader_waiting_on(pg_url, warehouse, NIGHT2, "lms.users")
    assert snapshot(backend, "d1") == before
    _converges(backend, warehouse)


def _kill_loader_waiting_on(
    pg_url: str, warehouse, night: str, table: str, while_waiting: Callable[[], None] = lambda: None
) -> None:
    """Run d1's load of ``night`` in a child process, SIGKILL it once it waits for a lock the test holds on
    ``table``, and wait until its backend is gone."""
    blocker = psycopg.connect(pg_url)
    blocker.execute(f"LOCK TABLE {table} IN SHARE MODE")
    child = subprocess.Popen([sys.executable, "-c", CHILD, warehouse.root, "d1", pg_url, night])
    try:
        pid = waiting_loader(pg_url)
        while_waiting()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        blocker.rollback()
        blocker.close()
    _gone(pg_url, pid)


def _terminate_loader_waiting_on(
    pg_url: str, backend, warehouse, night: str, table: str, while_waiting: Callable[[], None] = lambda: None
) -> None:
    """Run d1's load of ``night`` in a thread, terminate its database connection once it waits for a lock the
    test holds on ``table``, and check that the load failed on that."""
    blocker = psycopg.connect(pg_url)
    blocker.execute(f"LOCK TABLE {table} IN SHARE MODE")
    thread, errors = start_load(warehouse, backend, "d1", night, run_id="terminated")
    try:
        pid = waiting_loader(pg_url)
        while_waiting()
        with psycopg.connect(pg_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        thread.join(60)
    finally:
        blocker.rollback()
        blocker.close()
    assert errors and isinstance(errors[0], psycopg.OperationalError)


def test_terminated_db_connection_leaves_lms_as_before(pg_url, warehouse, drops):
    backend, before = _prepare_crash(pg_url, warehouse, drops)
    _terminate_loader_waiting_on(pg_url, backend, warehouse, NIGHT2, "lms.enrollments")
    assert snapshot(backend, "d1") == before
    assert history(backend, "d1")[-1]["state"] == "failed"
    _converges(backend, warehouse)


def test_night_whose_failure_cannot_be_recorded_raises_its_own_error_and_logs_the_other(
    pg_backend, warehouse, drops, caplog
):
    """The LMS refuses the night's run and then its failed run too: the night's error is the one raised,
    and the recording failure is logged at ERROR and attached to it as a note, never dropped."""
    pg_backend.ensure_schema()
    with psycopg.connect(pg_backend.url, autocommit=True) as conn:
        conn.execute(
            """CREATE FUNCTION lms.refuse_run() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'run refused: %', NEW.state; END $$"""
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON lms.sync_runs "
            "FOR EACH ROW EXECUTE FUNCTION lms.refuse_run()"
        )
    ingest(warehouse, "d1", NIGHT1, drops[1])
    with (
        caplog.at_level("ERROR", logger="etl_project.lms.load"),
        pytest.raises(psycopg.errors.RaiseException, match="run refused: applied") as raised,
    ):
        load(warehouse, pg_backend, "d1", NIGHT1)
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "d1" in record.getMessage() and NIGHT1 in record.getMessage()
    assert "run refused: failed" in str(record.exc_info[1])
    assert any("run refused: failed" in note for note in getattr(raised.value, "__notes__", []))


def test_two_districts_load_at_once(pg_url, tmp_path, drops):
    backend = open_backend(pg_url)
    warehouse = WarehouseResource(root=str(tmp_path / "wh"))
    for district in ("east", "west"):
        ingest(warehouse, district, NIGHT1, drops[1])
    holder = psycopg.connect(pg_url)
    # hold east's district lock: east's run waits, west's runs to the end meanwhile
    holder.execute("SELECT pg_advisory_xact_lock(hashtextextended('etl_project.lms:east', 0))")
    results = {}
    thread = threading.Thread(target=lambda: results.update(east=load(warehouse, backend, "east", NIGHT1)))
    thread.start()
    try:
        waiting_loader(pg_url)
        results["west"] = load(warehouse, backend, "west", NIGHT1)
        assert thread.is_alive()
    finally:
        holder.rollback()
        holder.close()
    thread.join(60)
    assert results["east"].written == results["west"].written
    assert results["east"].written["users"]["created"] > 0
    for district in ("east", "west"):
        assert (
            query(
                backend,
                district,
                "SELECT count(DISTINCT district) FROM {p}users WHERE district = %s",
                [district],
            )[0][0]
            == 1
        )
    ids = query(backend, "east", "SELECT count(*), count(DISTINCT id) FROM {p}users")[0]
    assert ids[0] == ids[1]  # LMS ids never collide across districts


def test_sqlite_failure_mid_load_rolls_back(tmp_path, warehouse, drops):
    backend = open_backend(f"sqlite:///{tmp_path}/lms.sqlite")
    ingest(warehouse, "d1", NIGHT1, drops[1])
    backend.ensure_schema()
    with backend.session("d1") as s:  # a real failure inside SQLite, after schools..sections were written
        s.execute(
            "CREATE TRIGGER refuse AFTER INSERT ON users BEGIN SELECT RAISE(ABORT, 'users refused'); END"
        )
    with pytest.raises(Exception, match="users refused"):
        load(warehouse, backend, "d1", NIGHT1)
    assert all(not rows for rows in snapshot(backend, "d1").values())
    assert history(backend, "d1")[-1]["state"] == "failed"
    with backend.session("d1") as s:
        s.execute("DROP TRIGGER refuse")
    assert load(warehouse, backend, "d1", NIGHT1).state == "applied"


def test_created_rows_ledger_holds_every_after_value_and_provenance(pg_backend, warehouse, drops, tmp_path):
    """A created row's ledger entry: its after-values (every non-NULL field, as in the LMS, typed) and
    provenance; stored as a JSON array in the file's field order (the names once per file), values holding
    quotes, backslashes, control characters and non-ASCII text included."""
    backend = pg_backend
    snapshot_dir = copy_drop(drops[1], tmp_path / "prov")
    names = {"stu-0000007": 'Ann, "Jo" \\ \u00e9\u4e2d\nMay', "stu-0000008": "Bo\x1fb"}
    with open(snapshot_dir / "users.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    given = rows[0].index("givenName")
    for row in rows:
        row[given] = names.get(row[0], row[given])
    with open(snapshot_dir / "users.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    provenance = {
        p.name: FileProvenance(p.stat().st_size, f"sha-{p.name}", f"file:///archive/{p.name}", f"v-{p.name}")
        for p in snapshot_dir.iterdir()
    }
    with warehouse.connect("d1") as duck:
        load_drop(duck, snapshot_dir, district="d1", date=NIGHT1, provenance=provenance)
        line = duck.execute(
            'SELECT _line FROM oneroster.users WHERE _date = CAST(? AS DATE) AND "sourcedId" = ?',
            [NIGHT1, "stu-0000007"],
        ).fetchone()[0]
    load(warehouse, backend, "d1", NIGHT1)
    stored_forms, traced = {}, {}
    for entity, sourced_id in [("users", "stu-0000007"), ("users", "stu-0000008"), ("terms", None)]:
        fields = entity_def(entity).field_names
        row = query(
            backend,
            "d1",
            f"SELECT id, sourced_id, {', '.join(fields)} FROM {{p}}{entity} "
            f"WHERE sourced_id = coalesce(%s, sourced_id) ORDER BY id LIMIT 1",
            [sourced_id],
        )[0]
        [created] = traced[row[1]] = trace(backend, "d1", entity, row[1])
        assert created["operation"] == "created" and created["lms_id"] == row[0]
        assert created["changes"] == _created_changes(fields, row[2:])
        stored, names_stored = query(
            backend,
            "d1",
            "SELECT e.changes, s.fields FROM {p}change_entries e JOIN {p}change_sources s "
            "ON s.id = e.source_id WHERE e.lms_id = %s",
            [row[0]],
        )[0]
        assert names_stored == fields  # the field names once per file
        stored_forms[row[1]] = stored
    assert (
        names["stu-0000007"]
        == query(backend, "d1", "SELECT given_name FROM {p}users WHERE sourced_id = 'stu-0000007'")[0][0]
    )
    for sourced_id in ("stu-0000007", "stu-0000008"):
        assert names[sourced_id] in json.loads(stored_forms[sourced_id])
    [term] = [k for k in stored_forms if not k.startswith("stu-")]
    assert isinstance(trace(backend, "d1", "terms", term)[0]["changes"]["school_year"]["after"], int)
    [created] = traced["stu-0000007"]
    assert (created["file_uri"], created["file_version"], created["file_sha256"], created["line"]) == (
        "file:///archive/users.csv",
        "v-users.csv",
        "sha-users.csv",
        line,
    )


def _created_changes(fields: list[str], values) -> dict:
    """A created entry's changes as trace shows them: each non-NULL field's after-value (dates as ISO text,
    as in JSON)."""
    return {
        f: {"before": None, "after": v.isoformat() if isinstance(v, datetime.date) else v}
        for f, v in zip(fields, values, strict=True)
        if v is not None
    }


def test_pg_bulk_load_errors_surface_and_never_hang(pg_backend, tmp_path):
    """DuckDB -> scratch file -> COPY: an error on either side is raised, never a hang; the transaction
    rolls back.
    """
    pg_backend.ensure_schema()
    duck = duckdb.connect()
    duck.execute("CREATE TABLE t AS SELECT range AS id FROM range(200000)")
    with pytest.raises(duckdb.Error), pg_backend.session("d1") as s:  # DuckDB fails before writing
        stage = s.staging("_stg_x", "lms.users", ["id"])
        s.load(duck, "SELECT no_such_column FROM t", stage, ["id"])
    with pytest.raises(psycopg.errors.InvalidTextRepresentation), pg_backend.session("d1") as s:
        stage = s.staging("_stg_x", "lms.users", ["id"])
        s.load(duck, "SELECT CASE WHEN id = 150000 THEN 'x' ELSE id::VARCHAR END FROM t", stage, ["id"])
    with pg_backend.session("d1") as s:
        stage = s.staging("_stg_x", "lms.users", ["id"])
        assert s.load(duck, "SELECT id FROM t", stage, ["id"]) == 200000
        assert s.query(f"SELECT count(*), max(id) FROM {stage}") == [(200000, 199999)]
        s.execute(  # d1's first rows: into a new partition, attached at commit
            f"INSERT INTO {s.bulk_target('lms.users')} (id, district, sourced_id, active) "
            f"SELECT id, 'd1', 'u' || id, true FROM {stage}"
        )
    # the other direction (PostgreSQL dumps ahead on a second connection, DuckDB reads): a reader failing
    # before it reads never hangs the dump; a normal read sees the rows as of the session's snapshot
    users = entity_def("users")
    with (
        pytest.raises(RuntimeError, match="reader failed"),
        pg_backend.session("d1", write=False) as s,
        s.current_rows([users], tmp_path),
    ):
        raise RuntimeError("reader failed")
    with pg_backend.session("d1", write=False) as s, s.current_rows([users], tmp_path) as current:
        with psycopg.connect(pg_backend.url, autocommit=True) as other:  # committed after the snapshot
            other.execute(
                "INSERT INTO lms.users (id, district, sourced_id, active) VALUES (-1, 'd1', 'late', true)"
            )
        path = current(users)
        assert (
            duck.execute(f"SELECT count(*) FROM read_csv('{path}', header = false)").fetchone()[0] == 200000
        )


def test_copy_feeder_passes_on_only_what_duckdb_has_written(tmp_path):
    """A read racing DuckDB's write of the scratch file can see zeros where bytes are still being written
    (seen in a 1M day 2: COPY failed on byte 0x00). The feeder passes on what comes before them, reads
    them again once written, and ends with exactly the file's bytes."""
    before, hole, after = b"1,a\n2,b\n", b"3,c\n4,d\n", b"5,e\n"
    path = tmp_path / "rows.csv"
    with open(path, "wb") as out:
        out.write(before)
        out.seek(len(before) + len(hole))
        out.write(after)  # a later part first: the file now has a hole of zeros
    written, failed = threading.Event(), threading.Event()
    passed: list[bytes] = []

    def write(block: bytes) -> None:
        passed.append(block)
        if len(passed) == 1:  # DuckDB fills the hole only now, and finishes
            with open(path, "r+b") as out:
                out.seek(len(before))
                out.write(hole)
            written.set()

    with open(path, "rb") as src:
        _tail(src, write, written, failed)
    assert passed[0] == before and b"".join(passed) == before + hole + after


def test_pg_each_district_has_its_own_partitions_and_keys(pg_backend, warehouse, drops):
    """PostgreSQL: a district's first load creates its partitions (with their keys); others are untouched."""
    ingest(warehouse, "d1", NIGHT1, drops[1])
    load(warehouse, pg_backend, "d1", NIGHT1)
    partitions = query(
        pg_backend,
        "d1",
        "SELECT parent.relname, child.relname FROM pg_inherits i "
        "JOIN pg_class parent ON parent.oid = i.inhparent JOIN pg_class child ON child.oid = i.inhrelid "
        "JOIN pg_namespace n ON n.oid = parent.relnamespace WHERE n.nspname = 'lms' AND child.relkind = 'r'",
    )
    written = {"schools", "terms", "courses", "sections", "users", "enrollments", "change_entries"}
    assert set(partitions) == {(table, f"{table}_d1") for table in written}
    unique = query(
        pg_backend,
        "d1",
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'lms' AND tablename = 'users_d1' "
        "AND indexdef LIKE 'CREATE UNIQUE%%' ORDER BY 1",
    )
    assert [d[0].split(" USING btree ")[1] for d in unique] == ["(id)", "(sourced_id)"]
    with pytest.raises(psycopg.errors.UniqueViolation), pg_backend.session("d1") as s:
        s.execute(
            "INSERT INTO lms.users (id, district, sourced_id, active) VALUES (-1, 'd1', 'stu-0000001', true)"
        )


def test_lms_column_names_are_the_oneroster_names_in_snake_case():
    from etl_project.lms.schema import _snake

    assert _snake("parentSourcedId") == "parent_sourced_id"
    assert _snake("schoolYear") == "school_year"
    assert _snake("SourcedId") == "sourced_id"  # no leading underscore
    assert _snake("title") == "title"


def test_partition_names_fit_postgresql_and_stay_distinct():
    from etl_project.lms.schema import PARTITIONED, partition_name

    longest = "d" * 62 + "1"  # district ids are at most 63 characters
    names = {partition_name(t, d) for t in PARTITIONED for d in ("d1", longest, longest[:-1] + "2")}
    assert len(names) == 3 * len(PARTITIONED) and max(map(len, names)) <= 63
    assert partition_name("users", "lincoln-usd") == "users_lincoln-usd"  # readable when it fits


def test_pg_district_with_the_longest_id_loads_into_its_own_partitions(pg_backend, warehouse, drops):
    district = "north-valley-" + "x" * 49 + "9"  # 63 characters, with hyphens
    ingest(warehouse, district, NIGHT1, drops[1])
    first = load(warehouse, pg_backend, district, NIGHT1)
    assert first.state == "applied" and first.written["users"]["created"] > 0
    users = query(pg_backend, district, "SELECT count(*) FROM lms.users WHERE district = %s", [district])
    assert users[0][0] == first.written["users"]["created"]
    assert load(warehouse, pg_backend, district, NIGHT1, run_id="again").state == "unchanged"


def test_sourced_ids_needing_csv_quotes_round_trip_through_the_lms(
    backend, warehouse, drops, tmp_path, monkeypatch
):
    """A sourcedId with a comma, a double quote and a non-ASCII letter is read back from the LMS as written
    (PostgreSQL's dump is read in many page ranges here): a re-run is unchanged and an edit is an update."""
    import etl_project.lms.postgres as pg

    monkeypatch.setattr(pg, "_DUMP_PAGES", 1)
    odd = 'stu-"0001", Zoë'
    quoted = '"' + odd.replace('"', '""') + '"'
    day1 = copy_drop(drops[1], tmp_path / "odd1")
    for name in ("users.csv", "enrollments.csv"):
        path = day1 / name
        path.write_text(path.read_text().replace("stu-0000001,", quoted + ","))
    ingest(warehouse, "d1", NIGHT1, day1)
    first = load(warehouse, backend, "d1", NIGHT1)
    stored = query(
        backend, "d1", "SELECT count(*) FROM {p}users WHERE district = %s AND sourced_id = %s", ["d1", odd]
    )
    assert stored == [(1,)] and first.written["users"]["created"] > 1
    assert load(warehouse, backend, "d1", NIGHT1, run_id="again").state == "unchanged"

    day2 = copy_drop(day1, tmp_path / "odd2")
    index, line = user_line(day2, quoted)
    replace_line(day2 / "users.csv", index, line.replace(",true,", ",false,", 1))
    ingest(warehouse, "d1", NIGHT2, day2)
    second = load(warehouse, backend, "d1", NIGHT2)
    assert second.written["users"] == {"created": 0, "updated": 1, "deactivated": 0, "reactivated": 0}
    assert trace(backend, "d1", "users", odd)[0]["changes"]["enabled"] == {"before": True, "after": False}


def _staged(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'lms_staging' ORDER BY 1")
        return [r[0] for r in rows.fetchall()]


@pytest.mark.parametrize("stopped", ["killed", "connection terminated"])
def test_pg_first_load_stopped_after_its_ledger_was_built_beside(pg_url, warehouse, drops, stopped):
    """A first load's ledger is built and committed on a second connection, in the staging schema; stopped
    before the night commits, the LMS holds nothing of it. A loader that fails (its connection terminated)
    records the failure and drops the staged table (as big as the district's entities); a killed one leaves
    it, and the re-run replaces it. The re-run attaches the ledger with the indexes built beside (adopted, not
    built twice) and leaves no staged table."""
    backend = open_backend(pg_url)
    ingest(warehouse, "d1", NIGHT1, drops[1])
    backend.ensure_schema()
    before = snapshot(backend, "d1")

    def staged_not_attached() -> None:
        assert _staged(pg_url) == ["change_entries_d1"]

    # the loader blocks attaching the ledger, its last step: by then the ledger was staged and committed
    if stopped == "killed":
        _kill_loader_waiting_on(pg_url, warehouse, NIGHT1, "lms.change_entries", staged_not_attached)
        assert _staged(pg_url) == ["change_entries_d1"]
    else:
        _terminate_loader_waiting_on(
            pg_url, backend, warehouse, NIGHT1, "lms.change_entries", staged_not_attached
        )
        assert history(backend, "d1")[-1]["state"] == "failed" and _staged(pg_url) == []
    assert snapshot(backend, "d1") == before
    ledger = query(backend, "d1", "SELECT count(*) FROM lms.change_ledger WHERE district = %s", ["d1"])
    assert ledger == [(0,)]

    first = load(warehouse, backend, "d1", NIGHT1)
    assert first.state == "applied" and _staged(pg_url) == []
    entries = query(backend, "d1", "SELECT count(*) FROM lms.change_entries WHERE district = %s", ["d1"])
    assert entries == [(first.rows_written,)]
    indexes = query(
        backend,
        "d1",
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'lms' AND tablename = 'change_entries_d1'",
    )
    assert sorted(d[0].split(" USING ")[1] for d in indexes) == ["brin (id)", "btree (lms_id)"]
    assert load(warehouse, backend, "d1", NIGHT1, run_id="again").state == "unchanged"
