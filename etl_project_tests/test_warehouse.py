import fcntl
import multiprocessing as mp
import os

import pytest

from etl_project.warehouse import WarehouseResource


def _write_rows(root: str, district: str, start: int, ready, release) -> None:
    warehouse = WarehouseResource(root=root)
    with warehouse.connect(district) as conn:
        conn.execute("create table if not exists t (writer int, n int)")
        conn.execute("insert into t select ?, range from range(1000)", [start])
        if ready is not None:
            ready.set()
            release.wait(30)


def test_each_district_has_its_own_database_file(tmp_path):
    warehouse = WarehouseResource(root=str(tmp_path))
    for district in ("north", "south"):
        with warehouse.connect(district) as conn:
            conn.execute("create table t as select ? as d", [district])
    assert warehouse.districts() == ["north", "south"]
    with warehouse.connect("south") as conn:
        assert conn.execute("select d from t").fetchall() == [("south",)]


def test_two_districts_write_at_the_same_time_from_two_processes(tmp_path):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_write_rows, args=(str(tmp_path), "north", 1, ready, release))
    holder.start()
    assert ready.wait(60), "first writer never got its connection"
    # While north's writer still holds its connection, south writes in another process without waiting.
    other = ctx.Process(target=_write_rows, args=(str(tmp_path), "south", 2, None, None))
    other.start()
    other.join(60)
    assert other.exitcode == 0
    release.set()
    holder.join(60)
    assert holder.exitcode == 0


def test_same_district_writers_queue_instead_of_failing(tmp_path):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    first = ctx.Process(target=_write_rows, args=(str(tmp_path), "north", 1, ready, release))
    first.start()
    assert ready.wait(60)
    # The district lock (not DuckDB's lock error and a retry loop) is what the second writer waits on.
    fd = os.open(tmp_path / "north.lock", os.O_RDWR)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)
    second = ctx.Process(target=_write_rows, args=(str(tmp_path), "north", 2, None, None))
    second.start()
    release.set()
    first.join(60)
    second.join(60)
    assert (first.exitcode, second.exitcode) == (0, 0)
    with WarehouseResource(root=str(tmp_path)).connect("north") as conn:
        assert conn.execute("select writer, count(*) from t group by 1 order by 1").fetchall() == [
            (1, 1000),
            (2, 1000),
        ]


def test_offboard_removes_the_district_and_nothing_else(tmp_path):
    warehouse = WarehouseResource(root=str(tmp_path))
    for district in ("north", "south"):
        with warehouse.connect(district) as conn:
            conn.execute("create table t as select 1")
    removed = warehouse.offboard("north")
    assert any(p.endswith("north.duckdb") for p in removed)
    assert warehouse.districts() == ["south"]


def test_district_ids_are_checked_before_touching_the_disk(tmp_path):
    with pytest.raises(ValueError), WarehouseResource(root=str(tmp_path)).connect("../etc"):
        pass


def test_offboarding_a_district_that_never_synced_is_a_no_op(tmp_path):
    assert WarehouseResource(root=str(tmp_path / "never-created")).offboard("north") == []
