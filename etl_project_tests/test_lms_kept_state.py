"""The LMS state a warehouse keeps (etl_project/lms/state.py), against a real PostgreSQL: a night reads back
only the rows edited in the LMS since, gets the same change set as a night that reads every row back, and
never uses a kept state that is not the LMS's current one."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from etl_project.generate import generate_drop
from etl_project.lms import open_backend, plan_night
from etl_project.lms import state as kept_state
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
    root = tmp_path_factory.mktemp("kept-drops")
    return {night: generate_drop(root / f"day{night}", 120, day=night, seed=11).path for night in (1, 2)}


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    return WarehouseResource(root=str(tmp_path / "warehouse"))


def _lms_rows(backend, entity: str) -> list[tuple]:
    return query(
        backend,
        "d1",
        f"SELECT id, sourced_id, active, row_hash FROM {{p}}{entity} WHERE district = 'd1' ORDER BY id",
    )


def _kept_rows(warehouse, entity) -> list[tuple]:
    with warehouse.connect("d1") as duck:
        return duck.execute(f"SELECT * FROM {kept_state.table(entity)} ORDER BY id").fetchall()


def _planned(warehouse, backend, night: str) -> tuple[bool, int, dict[str, list[tuple]]]:
    """plan_night's change set: whether it used the kept state, rows read back, and every row to write."""
    with warehouse.connect("d1") as duck:
        plan = plan_night(duck, backend, "d1", night, DEFAULTS)
        columns = "sourced_id, lms_id, op, row_hash, changes"
        rows = {
            e.name: duck.execute(f"SELECT {columns} FROM {chg(e.name)} ORDER BY sourced_id").fetchall()
            for e in ENTITIES
        }
    return plan.changes.from_kept_state, plan.changes.read_back, rows


def test_night_reads_back_only_rows_edited_in_the_lms_and_gets_the_same_change_set(
    pg_backend, pg_url, warehouse, drops
):
    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, drops[2])
    first = load(warehouse, pg_backend, "d1", NIGHT1)
    assert not first.changes.from_kept_state  # nothing kept yet
    for e in ENTITIES:  # the kept state is what the LMS holds
        assert _kept_rows(warehouse, e) == _lms_rows(pg_backend, e.name)

    # Edits made in the LMS itself: a field, a hard delete, an account the roster does not have.
    edit_in_lms(pg_backend, "UPDATE {p}users SET given_name = 'Edited' WHERE sourced_id = 'stu-0000001'")
    deleted = query(pg_backend, "d1", "SELECT min(sourced_id) FROM {p}enrollments")[0][0]
    edit_in_lms(pg_backend, "DELETE FROM {p}enrollments WHERE sourced_id = %s", [deleted])
    edit_in_lms(
        pg_backend,
        "INSERT INTO {p}users (id, district, sourced_id, username, active) "
        "VALUES (-5, 'd1', 'made-in-lms', 'teacher.helper', true)",
    )
    # A row given another id (both ids are logged), and a fix made with triggers bypassed (the edit log
    # fires always).
    edit_in_lms(pg_backend, "UPDATE {p}users SET id = -7 WHERE sourced_id = 'stu-0000004'")
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE lms.users SET family_name = 'Replica' WHERE sourced_id = 'stu-0000005'")
    assert query(pg_backend, "d1", "SELECT count(*) FROM {p}edits WHERE district = 'd1'")[0][0] == 6

    kept, read_back, with_kept = _planned(warehouse, pg_backend, NIGHT2)
    assert kept and read_back == 6  # the edited rows (one id each), not the district's
    with warehouse.connect("d1") as duck:
        kept_state.forget(duck)
    kept, read_back, read_all = _planned(warehouse, pg_backend, NIGHT2)
    assert not kept and read_back == sum(len(_lms_rows(pg_backend, e.name)) for e in ENTITIES)
    assert with_kept == read_all
    assert any(r[0] == deleted and r[2] == "created" for r in with_kept["enrollments"])  # deleted: made again
    assert any(
        r[0] == "made-in-lms" and r[2] == "deactivated" for r in with_kept["users"]
    )  # not in the roster
    assert any(r[0] == "stu-0000001" and '"Edited"' in (r[4] or "") for r in with_kept["users"])
    assert any(r[0] == "stu-0000005" and '"Replica"' in (r[4] or "") for r in with_kept["users"])

    second = load(warehouse, pg_backend, "d1", NIGHT2)
    assert second.changes.from_kept_state and second.changes.read_back == 0  # the plan read the edits in
    assert second.written["enrollments"]["created"] >= 1 and second.written["users"]["deactivated"] >= 1
    for e in ENTITIES:
        assert _kept_rows(warehouse, e) == _lms_rows(pg_backend, e.name)
    assert (
        query(pg_backend, "d1", "SELECT count(*) FROM {p}edits WHERE district = 'd1'")[0][0] == 0
    )  # seen: pruned
    again = load(warehouse, pg_backend, "d1", NIGHT2, run_id="rerun")
    assert (again.state, again.rows_written, again.changes.read_back) == ("unchanged", 0, 0)


def test_kept_state_of_another_lms_state_is_not_used(
    pg_server, pg_backend, pg_url, warehouse, drops, tmp_path
):
    """A warehouse that missed a night (another worker ran it, or this one crashed after the LMS commit), or
    pointed at a copy of the LMS database, or at a database gone back in time, reads every row back instead
    of trusting what it kept."""
    ingest(warehouse, "d1", NIGHT1, drops[1])
    ingest(warehouse, "d1", NIGHT2, drops[2])
    load(warehouse, pg_backend, "d1", NIGHT1)
    stale = WarehouseResource(root=str(tmp_path / "stale"))
    shutil.copytree(warehouse.root, stale.root)
    second = load(warehouse, pg_backend, "d1", NIGHT2)
    assert second.rows_written > 0

    elsewhere = load(stale, pg_backend, "d1", NIGHT2, run_id="elsewhere")
    assert not elsewhere.changes.from_kept_state
    assert (elsewhere.state, elsewhere.rows_written) == ("unchanged", 0)
    for e in ENTITIES:
        assert _kept_rows(stale, e) == _lms_rows(pg_backend, e.name)
    assert load(stale, pg_backend, "d1", NIGHT2, run_id="kept").changes.from_kept_state

    source = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{source}_copy" TEMPLATE "{source}"')
    copy = open_backend(pg_server.url(f"{source}_copy"))
    assert not load(stale, copy, "d1", NIGHT2, run_id="copy").changes.from_kept_state

    with stale.connect("d1") as duck:  # a marker read at transaction ids this database has not reached
        duck.execute("UPDATE lms_state.marker SET snapshot = '4000000000:4000000000:'")
    assert not load(stale, copy, "d1", NIGHT2, run_id="restored").changes.from_kept_state


def test_truncated_lms_partition_is_read_back_whole(pg_backend, warehouse, drops):
    ingest(warehouse, "d1", NIGHT1, drops[1])
    first = load(warehouse, pg_backend, "d1", NIGHT1)
    edit_in_lms(
        pg_backend, "TRUNCATE {p}enrollments_d1"
    )  # no row trigger fires; the partition's file changes
    again = load(warehouse, pg_backend, "d1", NIGHT1, run_id="after-truncate")
    assert not again.changes.from_kept_state
    assert again.written["enrollments"]["created"] == first.written["enrollments"]["created"]
    assert _kept_rows(warehouse, ENTITIES[-1]) == _lms_rows(pg_backend, "enrollments")


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
    assert after.changes.from_kept_state and after.changes.read_back == 1
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
