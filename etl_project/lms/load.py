"""Apply one district-night to the LMS: change set, thresholds, writes, ledger, sync_runs: ONE transaction.

Inside the district's locked transaction the change set is computed against the LMS as it is at that moment,
so a re-run of the same night finds nothing to do and records nothing; a crash anywhere rolls everything
back. A night older than one the LMS already holds (applied or released) is never applied: it would undo
the newer night's changes. That happens when a night's run is retried after the next night's run (a lost
worker's run goes back to the end of the queue), or when an old held night is released too late.

Parents are written before children; deactivations go children first. New LMS ids and ledger ids are
reserved in blocks up front, so created rows and ledger rows are COPYed straight into their tables (a first
load's ledger on a second connection, published at commit: see ``LmsSession.load_beside``); updates and
deactivations go through temp staging tables and one set-based ``UPDATE ... FROM`` each.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from etl_project.lms.backend import LmsBackend, LmsSession
from etl_project.lms.changeset import (
    ChangeSet,
    build_changeset,
    changes_sql,
    chg,
    rehash_table,
    sample,
)
from etl_project.lms.schema import ENTITIES, OPERATIONS
from etl_project.lms.thresholds import Thresholds, Verdict
from etl_project.oneroster.validate import lit
from etl_project.partitions import validate_district_id, validate_night

log = logging.getLogger(__name__)

LEDGER_COLUMNS = ("id", "district", "source_id", "sourced_id", "lms_id", "operation", "line", "changes")


class NewerNightApplied(RuntimeError):
    """The LMS already holds a newer night of the district than the one asked for."""

    def __init__(self, district: str, date: str, newer: str):
        self.district, self.date, self.newer = district, date, newer
        super().__init__(
            f"night {date} of {district} was not applied: the LMS already holds the newer night {newer}, and "
            f"applying an older night would undo its changes. The drop stays archived; nothing to do unless "
            f"{newer} itself was wrong, and then the next night's corrected drop sets the LMS right"
        )


def _refuse_older(session: LmsSession, district: str, date: str) -> None:
    """Raise :class:`NewerNightApplied` when a night after ``date`` changed the district's LMS."""
    newer = session.query(
        f"SELECT max(partition_date) FROM {session.table('sync_runs')} "
        "WHERE district = %s AND partition_date > %s AND state IN ('applied', 'released')",
        [district, date],
    )[0][0]
    if newer:
        raise NewerNightApplied(district, date, str(newer)[:10])


def refuse_older_night(backend: LmsBackend, district: str, date: str) -> None:
    """Raise :class:`NewerNightApplied` when the LMS holds a newer night than ``date``: the nightly graph
    stops at its change plan instead of planning (and perhaps holding) a change that undoes it."""
    with backend.session(district, write=False) as session:
        _refuse_older(session, district, validate_night(date))


@dataclass(frozen=True)
class Release:
    """A one-time release of a held night: who released it and why (both required)."""

    by: str
    reason: str

    def __post_init__(self) -> None:
        if not self.by.strip() or not self.reason.strip():
            raise ValueError("a release needs both who releases it and why")


@dataclass
class LoadResult:
    district: str
    date: str
    run_id: str
    state: str  # applied | held | released (what sync_runs says), or "unchanged" when nothing was recorded
    changes: ChangeSet
    verdict: Verdict
    written: dict[str, dict[str, int]] = field(default_factory=dict)
    sync_run_id: int | None = None
    ledger_first: int | None = None
    ledger_last: int | None = None
    released_by: str | None = None
    release_reason: str | None = None
    # Seconds per phase: change set (read the LMS + compare), ledger (written, or for a PostgreSQL first load
    # handed to a second connection), entity writes, commit (first loads: keys, attaching new partitions).
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def rows_written(self) -> int:
        return sum(sum(ops.values()) for ops in self.written.values())


@dataclass
class Plan:
    changes: ChangeSet
    verdict: Verdict
    samples: dict[str, list[dict[str, Any]]]


def plan_night(
    duck: duckdb.DuckDBPyConnection,
    backend: LmsBackend,
    district: str,
    date: str,
    thresholds: Thresholds,
    *,
    sample_size: int = 5,
) -> Plan:
    """The change set against the LMS as it is now, and the thresholds' verdict; writes nothing. Also a
    what-if for a night older than the LMS holds (which :func:`load_night` would refuse)."""
    with backend.session(district, write=False) as session:
        changes = build_changeset(duck, session, district, validate_night(date))
    samples = {e.name: sample(duck, e.name, sample_size) for e in ENTITIES}
    return Plan(changes, thresholds.evaluate(changes), samples)


def load_night(
    duck: duckdb.DuckDBPyConnection,
    backend: LmsBackend,
    district: str,
    date: str,
    *,
    run_id: str,
    thresholds: Thresholds,
    release: Release | None = None,
    workdir: Path | None = None,
) -> LoadResult:
    validate_district_id(district)
    validate_night(date)
    try:
        with backend.session(district, write=True) as session:
            _refuse_older(session, district, date)
            started = time.perf_counter()
            changes = build_changeset(duck, session, district, date, workdir)
            changeset_s = time.perf_counter() - started
            verdict = thresholds.evaluate(changes)
            result = _apply(session, duck, changes, verdict, run_id, release)
            result.durations["changeset_s"] = round(changeset_s, 3)
            started = time.perf_counter()
        result.durations["commit_s"] = round(time.perf_counter() - started, 3)
    except Exception as failure:
        _record_failed(backend, district, date, run_id, failure)
        raise
    return result


def _record_failed(backend: LmsBackend, district: str, date: str, run_id: str, failure: Exception) -> None:
    """Record the night as failed in ``sync_runs``. If that fails too (the database itself may be what
    failed), the night's own error stays the one raised: the recording error is logged at ERROR and noted
    on it, so an operator sees both."""
    try:
        with backend.session(district, write=True) as session:
            session.discard_staged()
            session.execute(
                f"INSERT INTO {session.table('sync_runs')} "
                "(district, partition_date, run_id, state, finished_at) "
                "VALUES (%s, %s, %s, 'failed', CURRENT_TIMESTAMP)",
                [district, date, run_id],
            )
    except Exception as exc:
        log.error("could not record the failed night %s %s (run %s) in the LMS's sync_runs",
                  district, date, run_id, exc_info=exc)  # fmt: skip
        failure.add_note(f"recording this failed night in the LMS's sync_runs also failed: {exc!r}")


def _apply(
    session: LmsSession,
    duck: duckdb.DuckDBPyConnection,
    changes: ChangeSet,
    verdict: Verdict,
    run_id: str,
    release: Release | None,
) -> LoadResult:
    district, date = changes.district, changes.date
    held_ops = set() if release else verdict.held_operations()
    ops = [op for op in OPERATIONS if op not in held_ops]
    state = "held" if held_ops else ("released" if release and verdict.holds else "applied")
    result = LoadResult(district, date, run_id, state, changes, verdict)
    if release and verdict.holds:
        result.released_by, result.release_reason = release.by, release.reason
    to_write = sum(e.counts.get(op, 0) for e in changes.entities.values() for op in ops)
    if "updated" not in held_ops:
        _rehash(session, duck, district)
    runs = session.table("sync_runs")
    if to_write == 0 and state == "applied":
        done = session.query(
            f"SELECT count(*) FROM {runs} WHERE district = %s AND partition_date = %s "
            "AND state IN ('applied', 'released')",
            [district, date],
        )[0][0]
        if done:
            result.state = "unchanged"
            return result
    sync_run_id = session.query(
        f"INSERT INTO {runs} (district, partition_date, run_id, state, released_by, release_reason) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        [district, date, run_id, state, result.released_by, result.release_reason],
    )[0][0]
    result.sync_run_id = int(sync_run_id)
    if to_write:
        _write(session, duck, changes, ops, result)
    counts = {
        name: {**{op: result.written.get(name, {}).get(op, 0) for op in OPERATIONS},
               "unchanged": e.counts.get("unchanged", 0), "held": e.counts.get("held", 0)}
        for name, e in changes.entities.items()
    }  # fmt: skip
    held = {
        "breaches": [b.to_json() for b in verdict.breaches],
        "held_operations": sorted(held_ops),
        "not_applied": {
            name: {op: e.counts.get(op, 0) for op in sorted(held_ops) if e.counts.get(op, 0)}
            for name, e in changes.entities.items()
        },
    }
    session.execute(
        f"UPDATE {runs} SET counts = %s, held = %s, ledger_first = %s, ledger_last = %s, "
        "finished_at = CURRENT_TIMESTAMP WHERE id = %s",
        [json.dumps(counts), json.dumps(held), result.ledger_first, result.ledger_last, result.sync_run_id],
    )
    return result


def _write(
    session: LmsSession,
    duck: duckdb.DuckDBPyConnection,
    changes: ChangeSet,
    ops: list[str],
    result: LoadResult,
) -> None:
    """Write the change set's operations ``ops``: ledger, then entities."""
    writing = f"op IN ({', '.join(lit(op) for op in ops)})"  # not the operations held tonight
    written, span = _spans(duck, writing)
    result.written = {name: {op: ops_.get(op, 0) for op in OPERATIONS} for name, ops_ in written.items()}
    # Ids in blocks for the night: each entity's ledger ids and new LMS ids at their k / created_k offsets.
    next_id = session.reserve("lms_ids", sum(created for _, created in span.values()))
    lms_id: dict[str, str] = {}  # per entity: the SQL of a written row's LMS id
    for e in ENTITIES:
        lms_id[e.name] = f"coalesce(lms_id, {next_id - 1} + created_k)"
        next_id += span[e.name][1]
    started = time.perf_counter()
    _write_ledger(session, duck, changes, result, writing, written, span, lms_id)
    result.durations["ledger_s"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    _write_entities(session, duck, changes.district, written, lms_id)
    result.durations["entities_s"] = round(time.perf_counter() - started, 3)


def _spans(
    duck: duckdb.DuckDBPyConnection, writing: str
) -> tuple[dict[str, dict[str, int]], dict[str, tuple[int, int]]]:
    """Rows written per entity and operation, and how many ledger ids and new LMS ids each entity's rows
    need: their highest k and created_k."""
    written: dict[str, dict[str, int]] = {}
    span: dict[str, tuple[int, int]] = {}
    for e in ENTITIES:
        rows = duck.execute(
            f"SELECT op, count(*), max(k), max(created_k) FROM {chg(e.name)} WHERE {writing} GROUP BY op"
        ).fetchall()
        written[e.name] = {op: n for op, n, _, _ in rows}
        span[e.name] = (max((k for *_, k, _ in rows), default=0), max((c or 0 for *_, c in rows), default=0))
    return written, span


def _write_ledger(
    session: LmsSession,
    duck: duckdb.DuckDBPyConnection,
    changes: ChangeSet,
    result: LoadResult,
    writing: str,
    written: dict[str, dict[str, int]],
    span: dict[str, tuple[int, int]],
    lms_id: dict[str, str],
) -> None:
    """The ledger first: one change_sources row per entity file, then one narrow change_entries row per
    written record (ids in entity order, each at its k offset), from DuckDB. Handed to load_beside, so a
    backend can write a first load's millions of ledger rows on a second connection meanwhile."""
    district, total = lit(changes.district), sum(k for k, _ in span.values())
    first = session.reserve("ledger_ids", total)
    offset, selects = first, []
    for e in ENTITIES:
        if not sum(written[e.name].values()):
            continue
        file = changes.entities[e.name]
        source_id = session.query(
            f"INSERT INTO {session.table('change_sources')} "
            "(sync_run_id, entity, file_uri, file_version, file_sha256, fields) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [result.sync_run_id, e.name, file.file_uri, file.file_version, file.file_sha256,
             json.dumps(e.field_names)],
        )[0][0]  # fmt: skip
        selects.append(
            f"""SELECT {offset - 1} + k, {district}, {int(source_id)}, sourced_id, {lms_id[e.name]}, op,
                       line, {changes_sql(e, stored=True)}
                FROM {chg(e.name)} WHERE {writing}"""
        )
        offset += span[e.name][0]
    session.load_beside(duck, selects, session.table("change_entries"), LEDGER_COLUMNS)
    result.ledger_first, result.ledger_last = first, first + total - 1


def _write_entities(
    session: LmsSession,
    duck: duckdb.DuckDBPyConnection,
    district: str,
    written: dict[str, dict[str, int]],
    lms_id: dict[str, str],
) -> None:
    """Parents first: creates, updates and reactivations; then children first: deactivations."""
    now = "CURRENT_TIMESTAMP"
    for e in ENTITIES:
        table, fields = session.table(e.name), e.field_names
        if written[e.name].get("created"):
            session.load(
                duck,
                f"SELECT {lms_id[e.name]}, {lit(district)}, sourced_id, {', '.join(fields)}, true, row_hash "
                f"FROM {chg(e.name)} WHERE op = 'created'",
                session.bulk_target(table),
                ["id", "district", "sourced_id", *fields, "active", "row_hash"],
            )
        if written[e.name].get("updated") or written[e.name].get("reactivated"):
            sets = ", ".join(f"{f} = s.{f}" for f in fields)
            _update_by_id(
                session, duck, district, table,
                f"SELECT lms_id, {', '.join(fields)}, row_hash FROM {chg(e.name)} "
                "WHERE op IN ('updated', 'reactivated')",
                [*fields, "row_hash"],
                f"{sets}, active = true, row_hash = s.row_hash, deactivated_at = NULL, updated_at = {now}",
            )  # fmt: skip
    for e in reversed(ENTITIES):
        if written[e.name].get("deactivated"):
            _update_by_id(
                session, duck, district, session.table(e.name),
                f"SELECT lms_id FROM {chg(e.name)} WHERE op = 'deactivated'",
                [],
                f"active = false, deactivated_at = {now}, updated_at = {now}",
            )  # fmt: skip


def _rehash(session: LmsSession, duck: duckdb.DuckDBPyConnection, district: str) -> None:
    """Store the hash again on rows whose stored hash was stale but whose fields equal the night's (see
    changeset.rehash_table): not a change, so no ledger row, and updated_at stays."""
    for e in ENTITIES:
        if not duck.execute(f"SELECT count(*) FROM {rehash_table(e.name)}").fetchone()[0]:
            continue
        table, fields = session.table(e.name), e.field_names
        # Only where the fields are still the night's: an edit made in the LMS since they were read (it
        # cleared the hash) must stay visible to the next night.
        same = " AND ".join(f"{table}.{f} IS NOT DISTINCT FROM s.{f}" for f in fields)
        select = f"SELECT lms_id, row_hash, {', '.join(fields)} FROM {rehash_table(e.name)}"
        _update_by_id(
            session, duck, district, table, select, ["row_hash", *fields], "row_hash = s.row_hash", also=same
        )


def _update_by_id(
    session: LmsSession,
    duck: duckdb.DuckDBPyConnection,
    district: str,
    table: str,
    select: str,
    columns: list[str],
    sets: str,
    also: str = "",
) -> None:
    """One set-based UPDATE of the district's rows of ``table`` whose ids (and new ``columns``) a DuckDB
    query selects: the rows are staged in a temp table (analyzed, so the join is planned right), then
    ``UPDATE ... SET {sets} FROM`` it (``s.<column>`` is the staged value), where ``also`` holds too."""
    stage = session.staging(f"_stg_{table.rsplit('.', 1)[-1]}", table, ["id", *columns])
    session.load(duck, select, stage, ["id", *columns])
    session.analyze(stage)
    where = f"{table}.district = {lit(district)} AND {table}.id = s.id" + (f" AND {also}" if also else "")
    session.execute(f"UPDATE {table} SET {sets} FROM {stage} s WHERE {where}")
