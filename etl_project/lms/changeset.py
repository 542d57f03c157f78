"""The one change-set builder (used by ``plan``, the LMS assets and the bench), set-based in DuckDB.

The night's mapped rows (mapping.py) are compared with what the LMS holds *now* for the district, inside the
same transaction that will apply the changes: narrow rows (id, sourced_id, active, row_hash) read into DuckDB
by the backend session. Per entity, in parent order (schools, terms, courses, sections, users, enrollments):

- the entity's file decides the mode: ``bulk`` (rows missing from the file are deactivated), ``delta`` (each
  row's status applies: active / tobedeleted) or untouched (file absent, or rejected as a whole);
- sourcedIds the ingest rejected that night are **held** (never created, changed or deactivated), and so is
  any row whose parent (section -> course, school; enrollment -> section, user) is held or would not exist
  in the LMS after this night;
- every other row is created, updated (with before/after of the changed fields), deactivated, reactivated
  or unchanged.

The result stays in :func:`chg` (one row per record to write: op, new values, source line, ranks (see
:func:`ranked`), changes JSON (:func:`changes_sql`); the file's provenance is in :class:`EntityChanges`) and
:func:`held_table`, in the in-memory database ``WORK`` attached to the DuckDB connection. For an entity the
LMS holds no row of yet (the district's first load), ``chg`` is a view over the night's mapped rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb

from etl_project.lms.mapping import source_sql
from etl_project.lms.schema import (
    DUCKDB_TYPES,
    ENTITIES,
    OPERATIONS,
    PARENTS,
    Entity,
)
from etl_project.lms.schema import entity as entity_def
from etl_project.scratch import scratch_dir

COUNTED = (*OPERATIONS, "unchanged", "held")
# The narrow rows read back from the LMS (see CurrentRows.current_rows).
CURRENT_COLUMNS = {"id": "BIGINT", "sourced_id": "VARCHAR", "active": "BOOLEAN", "row_hash": "BIGINT"}


class CurrentRows(Protocol):
    """What the builder needs from an LMS session: whether it holds rows of an entity, the district's current
    rows of each entity (narrow: id, sourced_id, active, row_hash) and the full values of some of them."""

    def holds_rows(self, entity: Entity) -> bool: ...

    def current_rows(
        self, entities: Sequence[Entity], scratch: Path
    ) -> contextlib.AbstractContextManager[Callable[[Entity], Path]]: ...

    def current_values(
        self, duck: duckdb.DuckDBPyConnection, entity: Entity, ids_select: str, scratch: Path
    ) -> Path: ...


@dataclass
class EntityChanges:
    entity: str
    mode: str  # bulk | delta | untouched
    size: int  # active rows the LMS holds now
    counts: dict[str, int] = field(default_factory=dict)
    # Provenance of every row of the change set: the entity's file that night (archived URI, version, SHA-256)
    file_uri: str | None = None
    file_version: str | None = None
    file_sha256: str | None = None
    read_back: int = 0  # narrow rows read back from the LMS (the district's rows of the entity)

    @property
    def writes(self) -> int:
        return sum(self.counts.get(op, 0) for op in OPERATIONS)


@dataclass
class ChangeSet:
    district: str
    date: str
    entities: dict[str, EntityChanges]

    @property
    def read_back(self) -> int:
        return sum(e.read_back for e in self.entities.values())

    @property
    def writes(self) -> int:
        return sum(e.writes for e in self.entities.values())

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: dict(e.counts) for name, e in self.entities.items()}

    def held(self) -> int:
        return sum(e.counts.get("held", 0) for e in self.entities.values())


def ranked(select: str) -> str:
    """The rows of ``select`` (which has an ``op`` column) with ``k``, 1..n, the offset of the row's ledger
    id, and ``created_k``, 1..created for the created rows, the offset of its new LMS id. Created rows come
    first; nothing is sorted (any order is as good, and a sort of millions of rows is not free).

    Readers of :func:`chg` rely only on ``k`` and ``created_k`` being unique and >= 1, not contiguous: a first
    load numbers its rows by their place in the night's rows (see _all_new), and ids are then reserved up to
    the highest written (see load._write)."""
    return f"""WITH r AS ({select})
    SELECT * EXCLUDE (rn), rn AS k, rn AS created_k
    FROM (SELECT *, row_number() OVER () AS rn FROM r WHERE op = 'created')
    UNION ALL
    SELECT * EXCLUDE (rn, n), n + rn AS k, NULL::BIGINT AS created_k
    FROM (SELECT *, row_number() OVER () AS rn FROM r WHERE op <> 'created'),
         (SELECT count(*) AS n FROM r WHERE op = 'created')"""


# The change set's rows to write live in an in-memory database attached to the warehouse connection, not in
# temp tables: a cursor of the connection can read them too, so a backend can COPY the ledger from one cursor
# while the connection COPYs the entities (the warehouse connection is exclusive to one district's run).
WORK = "lms_work"


def chg(entity: str) -> str:
    return f"{WORK}.chg_{entity}"


def held_table(entity: str) -> str:
    return f"{WORK}.held_{entity}"


def src_table(entity: str) -> str:
    """The night's mapped rows of the entity (see _map_night)."""
    return f"{WORK}.src_{entity}"


def rehash_table(entity: str) -> str:
    """Rows whose fields equal the night's but whose stored row_hash does not (edited in the LMS and edited
    back, or hashed by another DuckDB version): only their row_hash is rewritten; not a change. Holds the
    fields too: the hash is only stored if they are still those when it is written."""
    return f"_lms_rehash_{entity}"


def row_hash_sql(e: Entity) -> str:
    """The 64-bit hash of a row's mapped fields (NULL-aware, order-sensitive), as stored in ``row_hash``."""
    return f"CAST(hash({', '.join(e.field_names)}) >> 1 AS BIGINT)"


def changes_sql(e: Entity, *, stored: bool = False) -> str:
    """The ``changes`` JSON text of a row of ``chg(e.name)``.

    Updated, deactivated and reactivated rows carry ``{field: {"before": .., "after": ..}}`` for each changed
    field. A created row has no before: its changes are its after-values, shown as ``{field: value}`` of its
    non-NULL fields; ``stored`` gives the ledger's compact form instead, a JSON array of every field in
    ``e.field_names`` order (the names are stored once per file in ``change_sources.fields``). All built here
    as text: cheap for the millions of rows of a first load.
    """
    if stored:
        created = f"CAST(json_array({', '.join(e.field_names)}) AS VARCHAR)"
        return f"CASE WHEN op = 'created' THEN {created} ELSE changes END"
    parts = ", ".join(
        f"CASE WHEN {f} IS NOT NULL THEN '\"{f}\":' || CAST(to_json({f}) AS VARCHAR) END"
        for f in e.field_names
    )
    return f"CASE WHEN op = 'created' THEN '{{' || concat_ws(',', {parts}) || '}}' ELSE changes END"


def build_changeset(
    duck: duckdb.DuckDBPyConnection, lms: CurrentRows, district: str, date: str, workdir: Path | None = None
) -> ChangeSet:
    entities: dict[str, EntityChanges] = {}
    duck.execute(f"DETACH DATABASE IF EXISTS {WORK}")  # what a previous change set left
    duck.execute(f"ATTACH ':memory:' AS {WORK}")
    first = {e.name for e in ENTITIES if not lms.holds_rows(e)}  # entities whose rows are all new tonight
    with (
        scratch_dir("lms-current", root=workdir) as scratch,
        lms.current_rows(ENTITIES, scratch) as current,
    ):
        # The night's rows first (they need nothing from the LMS), while the LMS's rows are being dumped.
        files = {e.name: _map_night(duck, e, date, first_load=e.name in first) for e in ENTITIES}
        for e in ENTITIES:
            cur = f"_lms_cur_{e.name}"
            _read_csv(duck, cur, current(e), CURRENT_COLUMNS)
            changes = _entity_changes(duck, lms, e, date, files[e.name], scratch, e.name in first, cur)
            entities[e.name] = changes
    return ChangeSet(district, date, entities)


def _read_csv(duck: duckdb.DuckDBPyConnection, table: str, path: Path, columns: dict[str, str]) -> None:
    """A header-less CSV the LMS dumped into a temp table of ``columns``; the file is removed once read."""
    spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
    duck.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_csv(?,
            header = false, auto_detect = false, columns = {spec}, quote = '"', escape = '"', delim = ',')""",
        [str(path)],
    )
    path.unlink(missing_ok=True)


def _file_row(duck: duckdb.DuckDBPyConnection, e: Entity, date: str) -> tuple[Any, ...] | None:
    return duck.execute(
        """SELECT file, mode, status, uri, version_id, sha256 FROM oneroster.files
           WHERE _date = CAST(? AS DATE) AND "table" = ? ORDER BY file LIMIT 1""",
        [date, e.source],
    ).fetchone()


def _map_night(
    duck: duckdb.DuckDBPyConnection, e: Entity, date: str, *, first_load: bool
) -> tuple[Any, ...] | None:
    """The night's mapped rows of ``e`` into :func:`src_table` (none when its file is not applied); returns
    the entity's file row (see _file_row).

    A first load writes every row, so it keeps them whole; otherwise only what the comparison and the parent
    check need is kept (h, the row's hash as row_hash stores it), and the few rows to write are mapped
    again (_mapped_again): at 1M students the whole rows would take most of DuckDB's memory."""
    file = _file_row(duck, e, date)
    if first_load:
        rows = _whole_row(e)
    else:
        rows = ", ".join(
            ["sourced_id", "desired_active", f"{row_hash_sql(e)} AS h", "line", *_parent_columns(e)]
        )
    limit = "" if _applied(file) else "LIMIT 0"
    duck.execute(f"CREATE TABLE {src_table(e.name)} AS SELECT {rows} FROM ({source_sql(e, date)}) {limit}")
    return file


def _parent_columns(e: Entity) -> list[str]:
    return [column for column, _ in e.parents]


def _whole_row(e: Entity) -> str:
    """A mapped row's columns as the change set keeps them: provenance is per file, not per row (see
    EntityChanges); h is the row's hash as row_hash stores it."""
    return f"* EXCLUDE (file_uri, file_version, file_sha256), {row_hash_sql(e)} AS h"


def _mapped_again(duck: duckdb.DuckDBPyConnection, e: Entity, date: str, table: str, ids_select: str) -> None:
    """The night's whole mapped rows (with h) of the sourcedIds a DuckDB query selects, into ``table``."""
    duck.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT {_whole_row(e)} FROM ({source_sql(e, date, only=ids_select)})"""
    )


def _applied(file: tuple[Any, ...] | None) -> bool:
    return bool(file and file[2] == "loaded" and file[1] in ("bulk", "delta"))


def _entity_changes(
    duck: duckdb.DuckDBPyConnection,
    lms: CurrentRows,
    e: Entity,
    date: str,
    file: tuple[Any, ...] | None,
    scratch: Path,
    first_load: bool,
    cur: str,
) -> EntityChanges:
    """The entity's change set against ``cur``, the LMS's current rows (CURRENT_COLUMNS; dropped here)."""
    name = e.name
    size, known = duck.execute(f"SELECT count(*) FILTER (WHERE active), count(*) FROM {cur}").fetchone()
    mode = file[1] if _applied(file) else "untouched"
    _held(duck, e, date, file[0] if file else None)
    # (An LMS that gained rows since holds_rows, a read-only plan's race, is simply compared.)
    if first_load and not known:
        counts = _all_new(duck, e)
    else:
        counts = _compare(duck, lms, e, date, mode, scratch, cur)
    counts["held"] = duck.execute(f"SELECT count(*) FROM {held_table(name)}").fetchone()[0]
    if name in PARENTS:
        # What will be active after this night, for the children's parent check (see _held).
        duck.execute(
            f"""CREATE OR REPLACE TEMP TABLE _lms_final_{name} AS
            SELECT c.sourced_id FROM {cur} c
            ANTI JOIN (SELECT sourced_id FROM {chg(name)} WHERE op = 'deactivated') d
                ON d.sourced_id = c.sourced_id
            WHERE c.active
            UNION ALL SELECT sourced_id FROM {chg(name)} WHERE op IN ('created', 'reactivated')"""
        )
    duck.execute(f"DROP TABLE {cur}")
    uri, version, sha = (file[3], file[4], file[5]) if file else (None, None, None)
    return EntityChanges(name, mode, size, counts, uri, version, sha, read_back=known)


def _all_new(duck: duckdb.DuckDBPyConnection, e: Entity) -> dict[str, int]:
    """The LMS holds no row of the entity yet (the district's first load): each of the night's rows is
    created, or held, or (not active) unchanged. The rows to write are then a view over the night's rows,
    numbered by their rowid: no join, no ranking and no second copy of millions of rows. (Ids reserved for
    the rows not written are left unused.)"""
    name, src = e.name, src_table(e.name)
    fields = ", ".join(f"s.{f}" for f in e.field_names)
    # An ANTI JOIN, not NOT EXISTS: DuckDB plans NOT EXISTS as a join on the distinct sourcedIds of all the
    # night's rows, and a first load reads this view several times (counts here and in load._write, the
    # entity and ledger COPYs), so at a million students each read would pay for that join again.
    not_held = f"ANTI JOIN {held_table(name)} h ON h.sourced_id = s.sourced_id"
    duck.execute(
        f"""CREATE VIEW {chg(name)} AS
        SELECT s.sourced_id, NULL::BIGINT AS lms_id, 'created' AS op, {fields}, s.h AS row_hash, s.line,
               s.rowid + 1 AS k, s.rowid + 1 AS created_k, NULL::VARCHAR AS changes
        FROM {src} s {not_held} WHERE s.desired_active"""
    )
    columns = ", ".join(f"NULL::{DUCKDB_TYPES[f.kind]} AS {f.name}" for f in e.fields)
    duck.execute(
        f"""CREATE OR REPLACE TEMP TABLE {rehash_table(name)} AS
        SELECT NULL::BIGINT AS lms_id, NULL::BIGINT AS row_hash, {columns} LIMIT 0"""
    )
    created, unchanged = duck.execute(
        f"""SELECT count(*) FILTER (WHERE s.desired_active), count(*) FILTER (WHERE NOT s.desired_active)
        FROM {src} s {not_held}"""
    ).fetchone()
    return {**dict.fromkeys(COUNTED, 0), "created": created, "unchanged": unchanged}


def _compare(
    duck: duckdb.DuckDBPyConnection,
    lms: CurrentRows,
    e: Entity,
    date: str,
    mode: str,
    scratch: Path,
    cur: str,
) -> dict[str, int]:
    """Every record's operation, the night's rows against the LMS's (``cur``), into :func:`chg`; returns the
    counts."""
    name = e.name
    _classify(duck, e, mode, cur)
    new, vals = f"_lms_new_{name}", f"_lms_vals_{name}"
    _mapped_again(
        duck, e, date, new,
        f"SELECT sourced_id FROM _lms_j_{name} WHERE op IN ('created', 'updated', 'reactivated')",
    )  # fmt: skip
    _unchanged_when_equal(duck, lms, e, scratch, new, vals)
    counts = dict.fromkeys(COUNTED, 0)
    for op_name, n in duck.execute(f"SELECT op, count(*) FROM _lms_j_{name} GROUP BY op").fetchall():
        counts[op_name] = n
    _changes_to_write(duck, e, new, vals)
    for table in (f"_lms_j_{name}", new, vals):
        duck.execute(f"DROP TABLE {table}")
    return counts


def _classify(duck: duckdb.DuckDBPyConnection, e: Entity, mode: str, cur: str) -> None:
    """Every record's operation into ``_lms_j_<entity>`` (narrow: counted, then only the rows to write get
    their values, mapped again).

    Rows are compared through the hash of their fields (the LMS keeps it in row_hash), so only narrow rows
    come back from the LMS and are joined; full values are fetched just for the rows whose hash differs
    (or was cleared by an edit made in the LMS). A changed row is missed only if its new fields hash
    exactly like its old ones (odds 2^-63 per change)."""
    name, src = e.name, src_table(e.name)
    op = f"""CASE
        WHEN h.sourced_id IS NOT NULL THEN 'held'
        WHEN s.sourced_id IS NULL
            THEN CASE WHEN {mode == "bulk"} AND c.active THEN 'deactivated' ELSE 'unchanged' END
        WHEN c.id IS NULL THEN CASE WHEN s.desired_active THEN 'created' ELSE 'unchanged' END
        WHEN NOT s.desired_active THEN CASE WHEN c.active THEN 'deactivated' ELSE 'unchanged' END
        WHEN NOT c.active THEN 'reactivated'
        WHEN s.h IS DISTINCT FROM c.row_hash THEN 'updated'
        ELSE 'unchanged' END"""
    duck.execute(
        f"""CREATE OR REPLACE TEMP TABLE _lms_j_{name} AS
        SELECT coalesce(s.sourced_id, c.sourced_id) AS sourced_id, c.id AS lms_id, {op} AS op, s.line
        FROM (SELECT sourced_id, desired_active, h, line FROM {src}) s
        FULL JOIN {cur} c ON c.sourced_id = s.sourced_id
        LEFT JOIN {held_table(name)} h ON h.sourced_id = coalesce(s.sourced_id, c.sourced_id)"""
    )
    duck.execute(f"DROP TABLE {src}")


def _unchanged_when_equal(
    duck: duckdb.DuckDBPyConnection, lms: CurrentRows, e: Entity, scratch: Path, new: str, vals: str
) -> None:
    """The current values of the rows that may change (before-values) into ``vals``; then rows whose fields
    are in fact equal (their stored hash was stale) are unchanged: only their row_hash is rewritten."""
    name, fields = e.name, e.field_names
    candidates = f"SELECT lms_id FROM _lms_j_{name} WHERE op IN ('updated', 'reactivated')"
    value_columns = {"id": "BIGINT", **{f.name: DUCKDB_TYPES[f.kind] for f in e.fields}}
    if duck.execute(f"SELECT count(*) FROM ({candidates})").fetchone()[0]:
        _read_csv(duck, vals, lms.current_values(duck, e, candidates, scratch), value_columns)
    else:
        cols = ", ".join(f"NULL::{t} AS {c}" for c, t in value_columns.items())
        duck.execute(f"CREATE OR REPLACE TEMP TABLE {vals} AS SELECT {cols} LIMIT 0")
    same = " AND ".join(f"v.{f} IS NOT DISTINCT FROM s.{f}" for f in fields)
    duck.execute(
        f"""CREATE OR REPLACE TEMP TABLE {rehash_table(name)} AS
        SELECT j.lms_id, s.h AS row_hash, {", ".join(f"s.{f}" for f in fields)}
        FROM _lms_j_{name} j JOIN {vals} v ON v.id = j.lms_id
        JOIN {new} s ON s.sourced_id = j.sourced_id WHERE j.op = 'updated' AND {same}"""
    )
    duck.execute(
        f"""UPDATE _lms_j_{name} SET op = 'unchanged'
        WHERE op = 'updated' AND lms_id IN (SELECT lms_id FROM {rehash_table(name)})"""
    )


def _changes_to_write(duck: duckdb.DuckDBPyConnection, e: Entity, new: str, vals: str) -> None:
    """The rows to write into :func:`chg`, ranked on narrow rows (new ids and ledger ids), then joined with
    their values and changes (before -> after; a created row's changes are its after-values: see
    changes_sql). Provenance is per file: see EntityChanges."""
    name, fields = e.name, e.field_names
    pairs = ", ".join(f"struct_pack(k := '{f}', b := to_json(c.{f}), a := to_json(s.{f}))" for f in fields)
    field_changes = (
        f"map_from_entries(list_transform(list_filter([{pairs}], lambda x: x.b IS DISTINCT FROM x.a), "
        f"lambda x: struct_pack(k := x.k, v := struct_pack(before := x.b, after := x.a))))"
    )
    active_change = (
        "map_from_entries([struct_pack(k := 'active', "
        "v := struct_pack(before := to_json({b}), after := to_json({a})))])"
    )
    duck.execute(
        f"""CREATE OR REPLACE TEMP TABLE _lms_k_{name} AS
        {ranked(f"SELECT sourced_id, lms_id, op, line FROM _lms_j_{name} WHERE op IN {OPERATIONS}")}"""
    )
    duck.execute(
        f"""CREATE OR REPLACE TABLE {chg(name)} AS
        SELECT n.sourced_id, n.lms_id, n.op, {", ".join(f"s.{f}" for f in fields)}, s.h AS row_hash, n.line,
               n.k, n.created_k,
               CASE n.op
                   WHEN 'created' THEN NULL
                   WHEN 'deactivated' THEN to_json({active_change.format(b="true", a="false")})::VARCHAR
                   WHEN 'reactivated' THEN to_json(map_concat({active_change.format(b="false", a="true")},
                                                               {field_changes}))::VARCHAR
                   ELSE to_json({field_changes})::VARCHAR END AS changes
        FROM _lms_k_{name} n LEFT JOIN {vals} c ON c.id = n.lms_id
        LEFT JOIN {new} s ON s.sourced_id = n.sourced_id"""
    )
    duck.execute(f"DROP TABLE _lms_k_{name}")


def _held(duck: duckdb.DuckDBPyConnection, e: Entity, date: str, file: str | None) -> None:
    """Rejected sourcedIds of the entity's file, plus rows whose parent is held or missing."""
    src = src_table(e.name)
    parts = [
        f"""SELECT "sourcedId" AS sourced_id, 'rejected (' || code || '): ' || message AS reason, line
            FROM oneroster.rejects WHERE _date = DATE '{date}' AND file = ? AND "sourcedId" IS NOT NULL"""
    ]
    for column, parent in e.parents:
        parts.append(
            f"""SELECT s.sourced_id, 'parent {parent} ' || s.{column} ||
                   CASE WHEN hp.sourced_id IS NOT NULL THEN ' is held' ELSE ' is missing from the LMS' END,
                   s.line
            FROM {src} s LEFT JOIN {held_table(parent)} hp ON hp.sourced_id = s.{column}
            LEFT JOIN _lms_final_{parent} fp ON fp.sourced_id = s.{column}
            WHERE s.desired_active AND s.{column} IS NOT NULL
              AND (hp.sourced_id IS NOT NULL OR fp.sourced_id IS NULL)"""
        )
    duck.execute(
        f"""CREATE TABLE {held_table(e.name)} AS
            SELECT sourced_id, min(reason) AS reason, min(line) AS line
            FROM ({" UNION ALL ".join(parts)}) GROUP BY sourced_id""",
        [file or ""],
    )


def sample(duck: duckdb.DuckDBPyConnection, entity: str, limit: int = 5) -> list[dict[str, Any]]:
    """A few rows per operation (and held rows with their reason), for plan output and metadata."""
    rows = duck.execute(
        f"""SELECT op, sourced_id, lms_id, {changes_sql(entity_def(entity))}, line FROM (
              SELECT *, row_number() OVER (PARTITION BY op ORDER BY sourced_id) AS sample_k
              FROM {chg(entity)})
            WHERE sample_k <= {int(limit)} ORDER BY op, sourced_id"""
    ).fetchall()
    out = [{"op": r[0], "sourced_id": r[1], "lms_id": r[2], "changes": r[3], "line": r[4]} for r in rows]
    held = duck.execute(
        f"SELECT sourced_id, reason, line FROM {held_table(entity)} ORDER BY sourced_id LIMIT {int(limit)}"
    ).fetchall()
    out += [{"op": "held", "sourced_id": r[0], "reason": r[1], "line": r[2]} for r in held]
    return out
