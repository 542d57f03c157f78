"""Edits made in the LMS itself, against a real PostgreSQL: a night reads the district's narrow rows back
(id, sourced_id, active, row_hash), and the trigger that clears ``row_hash`` on an edit makes the next night
compare that row in full, so every edit is seen, also one committed while a night runs."""

from __future__ import annotations

import psycopg
import pytest

from etl_project.generate import generate_drop
from etl_project.lms import plan_night
from etl_project.lms.changeset import chg
from etl_project.lms.schema import ENTITIES
from etl_project.warehouse import WarehouseResource
from etl_project_tests.lms_helpers import (
    DEFAULTS,
    NIGHT1,
    NIGHT2,
    edit_in_lms,
    ingest,
    load,
    query,
    start_load,
    waiting_loader,
)


@pytest.fixture(scope="module")
def drops(tmp_path_factory):
    root = tmp_path_factory.mktemp("edits-drops")
    return {night: generate_drop(root / f"day{night}", 120, day=night, seed=11).path for night in (1, 2)}


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    return WarehouseResource(root=str(tmp_path / "warehouse"))


def _planned(warehouse, backend, night: str) -> dict[str, list[tuple]]:
    """plan_night's change set: every row to write, per entity."""
    with warehouse.connect("d1") as duck:
        plan_night(duck, backend, "d1", night, DEFAULTS)
        columns = "sourced_id, lms_id, op, row_hash, changes"
        return {
            e.name: duck.execute(f"SELECT {columns} FROM {chg(e.name)} ORDER BY sourced_id").fetchall()
            for e in ENTITIES
        }


def test_edits_made_in_the_lms_are_in_the_next_change_set(pg_backend, pg_url, warehouse, drops):
    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, drops[2])
    load(warehouse, pg_backend, "d1", NIGHT1)

    # Edits made in the LMS itself: a field, a hard delete, an account the roster does not have, and a fix
    # made with triggers bypassed (the row_hash trigger fires always).
    edit_in_lms(pg_backend, "UPDATE {p}users SET given_name = 'Edited' WHERE sourced_id = 'stu-0000001'")
    deleted = query(pg_backend, "d1", "SELECT min(sourced_id) FROM {p}enrollments")[0][0]
    edit_in_lms(pg_backend, "DELETE FROM {p}enrollments WHERE sourced_id = %s", [deleted])
    edit_in_lms(
        pg_backend,
        "INSERT INTO {p}users (id, district, sourced_id, username, active) "
        "VALUES (-5, 'd1', 'made-in-lms', 'teacher.helper', true)",
    )
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE lms.users SET family_name = 'Replica' WHERE sourced_id = 'stu-0000005'")

    planned = _planned(warehouse, pg_backend, NIGHT2)
    assert any(r[0] == deleted and r[2] == "created" for r in planned["enrollments"])  # deleted: made again
    assert any(r[0] == "made-in-lms" and r[2] == "deactivated" for r in planned["users"])  # not in the roster
    assert any(r[0] == "stu-0000001" and '"Edited"' in (r[4] or "") for r in planned["users"])
    assert any(r[0] == "stu-0000005" and '"Replica"' in (r[4] or "") for r in planned["users"])

    held = sum(
        query(pg_backend, "d1", f"SELECT count(*) FROM {{p}}{e.name} WHERE district = 'd1'")[0][0]
        for e in ENTITIES
    )
    second = load(warehouse, pg_backend, "d1", NIGHT2)
    assert second.changes.read_back == held  # every row of the district, narrow
    assert second.written["enrollments"]["created"] >= 1 and second.written["users"]["deactivated"] >= 1
    again = load(warehouse, pg_backend, "d1", NIGHT2, run_id="rerun")
    assert (again.state, again.rows_written) == ("unchanged", 0)


def test_edit_committed_while_a_night_runs_is_read_back_by_the_next(pg_backend, pg_url, warehouse, drops):
    """An edit made in the LMS after a night read the LMS, committed before that night commits: the night
    does not see it, and the next night does (its log entry is neither missed nor pruned)."""
    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, drops[2])
    load(warehouse, pg_backend, "d1", NIGHT1)

    def given_name() -> str:
        sql = "SELECT given_name FROM {p}users WHERE district = 'd1' AND sourced_id = 'stu-0000003'"
        return query(pg_backend, "d1", sql)[0][0]

    roster_name = given_name()
    blocker = psycopg.connect(pg_url)
    blocker.execute("LOCK TABLE lms.sync_runs IN SHARE MODE")  # the night waits to record its run
    thread, errors = start_load(warehouse, pg_backend, "d1", NIGHT2)
    try:
        waiting_loader(pg_url)  # the change set is computed: the LMS was read
        edit_in_lms(
            pg_backend, "UPDATE {p}users SET given_name = 'Concurrent' WHERE sourced_id = 'stu-0000003'"
        )
    finally:
        blocker.rollback()
        blocker.close()
        thread.join()
    assert not errors
    assert given_name() == "Concurrent"  # not seen by that night, so not reverted
    after = load(warehouse, pg_backend, "d1", NIGHT2, run_id="next")
    assert after.written["users"]["updated"] == 1 and given_name() == roster_name


def test_edit_made_while_a_stale_hash_is_repaired_stays_visible(pg_backend, pg_url, warehouse, drops):
    """A row edited in the LMS and edited back has a cleared hash, which the next night stores again; an
    edit committed while that night waits to store it keeps the hash cleared, so the night after sees it."""
    ingest(warehouse, "d1", NIGHT1, drops[1])
    load(warehouse, pg_backend, "d1", NIGHT1)

    def user() -> tuple[str, int | None]:
        sql = "SELECT given_name, row_hash FROM {p}users WHERE district = 'd1' AND sourced_id = 'stu-0000001'"
        return query(pg_backend, "d1", sql)[0]

    roster_name, _ = user()
    edit_in_lms(pg_backend, "UPDATE {p}users SET given_name = 'Typo' WHERE sourced_id = 'stu-0000001'")
    edit_in_lms(
        pg_backend, "UPDATE {p}users SET given_name = %s WHERE sourced_id = 'stu-0000001'", [roster_name]
    )
    assert user() == (roster_name, None)
    blocker = psycopg.connect(pg_url)
    blocker.execute("LOCK TABLE lms.users IN SHARE MODE")  # the night waits to store the hash again
    thread, errors = start_load(warehouse, pg_backend, "d1", NIGHT1, run_id="repair")
    try:
        waiting_loader(pg_url)
        blocker.execute("UPDATE lms.users SET given_name = 'Late' WHERE sourced_id = 'stu-0000001'")
        blocker.commit()
    finally:
        blocker.close()
        thread.join()
    assert not errors
    assert user() == ("Late", None)
    after = load(warehouse, pg_backend, "d1", NIGHT1, run_id="next")
    assert after.written["users"]["updated"] == 1 and user()[0] == roster_name
