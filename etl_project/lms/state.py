"""The LMS state a district's warehouse keeps, so a night need not read the whole district back from the LMS.

For each entity, ``lms_state.<entity>`` holds (id, sourced_id, active, row_hash) of every LMS row of the
district as the last sync left it; ``lms_state.marker`` says which LMS state that is (the backend's
``state_key``: this LMS database, the district's last recorded run, its partitions) and the database
snapshot up to which edits made in the LMS were read into it. A night whose key still matches reads back only
the rows the LMS logged as edited since that snapshot (``lms.edits``, filled by triggers) and patches them in;
any other night (another worker's warehouse, a run recorded elsewhere, a crash between the LMS commit and the
update here after a recorded run, a TRUNCATE, a restored database, no marker at all) reads every row back, as
without a kept state, and keeps that.

The kept state is a cache, never the truth: the marker is removed while the tables are being changed and
written again once they hold a whole LMS state, so a state half-changed by a crash is never used. (A night
that records no run keeps its marker; if it crashes after committing a ``row_hash`` repair, the next night
just finds those hashes stale and repairs them again.) PostgreSQL only: the SQLite twin logs no edits, and
its districts are small.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import duckdb

from etl_project.lms.schema import Entity

SCHEMA = "lms_state"
COLUMNS = {"id": "BIGINT", "sourced_id": "VARCHAR", "active": "BOOLEAN", "row_hash": "BIGINT"}


def table(entity: Entity) -> str:
    return f"{SCHEMA}.{entity.name}"


def valid_since(duck: duckdb.DuckDBPyConnection, key: str, entities: Sequence[Entity]) -> str | None:
    """The snapshot the kept state was read up to, when it was kept for ``key`` and every table is there."""
    names = [*(e.name for e in entities), "marker"]
    found = duck.execute(
        """SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()
        AND schema_name = ? AND list_contains(?, table_name)""",
        [SCHEMA, names],
    ).fetchone()[0]
    if found != len(names):
        return None
    row = duck.execute(f"SELECT snapshot FROM {SCHEMA}.marker WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def forget(duck: duckdb.DuckDBPyConnection) -> None:
    """Invalidate the kept state (before changing it); creates its schema and marker on first use."""
    duck.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    duck.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.marker (key VARCHAR, snapshot VARCHAR)")
    duck.execute(f"DELETE FROM {SCHEMA}.marker")


def mark(duck: duckdb.DuckDBPyConnection, key: str, snapshot: str) -> None:
    """The kept state is the LMS state ``key`` with the edits visible in ``snapshot``."""
    duck.execute(f"DELETE FROM {SCHEMA}.marker")
    duck.execute(f"INSERT INTO {SCHEMA}.marker VALUES (?, ?)", [key, snapshot])


def patch(duck: duckdb.DuckDBPyConnection, entity: Entity, edited: str) -> None:
    """Replace the kept rows of ``entity`` whose id is in the table ``edited`` (rows as the LMS holds them
    now; ``active`` NULL: deleted from the LMS)."""
    duck.execute(f"DELETE FROM {table(entity)} WHERE id IN (SELECT id FROM {edited})")
    with uncompressed(duck):
        duck.execute(f"INSERT INTO {table(entity)} SELECT * FROM {edited} WHERE active IS NOT NULL")


@contextlib.contextmanager
def uncompressed(duck: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Kept rows are written uncompressed: at 1M students, compressing the 7M rows a first load keeps costs
    four times the CPU of writing them (the warehouse's own tables stay compressed)."""
    duck.execute("SET force_compression = 'uncompressed'")
    try:
        yield
    finally:
        duck.execute("RESET force_compression")


def update(duck: duckdb.DuckDBPyConnection, key: str, snapshot: str, statements: Sequence[str]) -> None:
    """Apply what a committed night wrote to the kept state (``statements``), then mark it as ``key``."""
    forget(duck)
    with uncompressed(duck):
        for statement in statements:
            duck.execute(statement)
    mark(duck, key, snapshot)
