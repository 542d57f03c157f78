"""Data-quality rules over one night of a district's ``oneroster`` tables, as set-based DuckDB SQL.

Each rule answers, per table, one question and returns a :class:`Finding` (passed, severity, a one-line
description, the failing count and a small sample):

* ``required_fields``, ``valid_values`` (vocabularies and typed values), ``unique_sourced_ids`` and
  ``references_resolve`` report how many rows the ingest rejected for that reason (WARN: the rows are held,
  not loaded) and re-check in SQL that no *accepted* row breaks the rule (ERROR: something slipped into the
  clean tables).
* ``file_complete``: an empty, truncated or rejected bulk file is a failure, never "everyone left" (ERROR).
* ``row_count_drift``: the rows received moved by more than a threshold against the previous night (WARN).

Nothing here knows about Dagster; etl_project/checks/definitions.py turns findings into check results.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb

from etl_project.lms.schema import ENTITIES
from etl_project.oneroster.rejected import rejected_files, rejected_rows
from etl_project.oneroster.spec import (
    ENUM,
    REFLIST,
    REQUIRED_REFS,
    SPECS,
    STATUS,
    TableSpec,
)

SAMPLE = 5
ERROR, WARN = "ERROR", "WARN"

# The ingest's reject codes, by the rule they break.
REJECT_CODES: dict[str, tuple[str, ...]] = {
    "required_fields": ("required_missing",),
    "valid_values": ("invalid_enum", "bad_boolean", "bad_date", "bad_datetime", "bad_year"),
    "unique_sourced_ids": ("duplicate_sourced_id",),
    "references_resolve": ("unknown_reference", "parent_rejected"),
}
STRUCTURAL = ("cut_off",)  # a last record without its line ending, or shorter than the header
# Tables the LMS is built from: a bulk file of these with no rows is never a plausible night.
LMS_SOURCES = frozenset({e.source for e in ENTITIES} | {"roles"})

RULE_DESCRIPTIONS = {
    "required_fields": "Required OneRoster fields are filled: rows rejected for an empty required field "
    "(WARN, held) and a re-check that no accepted row has one empty (ERROR, blocks the LMS load).",
    "valid_values": "Vocabularies (status, role, type, ...) and typed values (booleans, dates, years) are "
    "valid: rows rejected for a bad value (WARN) and a re-check of the accepted rows' vocabularies (ERROR).",
    "unique_sourced_ids": "Every sourcedId appears once in the night's file: rows rejected as duplicates "
    "(WARN) and a re-check that the accepted rows are unique (ERROR, blocks the LMS load).",
    "references_resolve": "Required references (class -> course, enrollment -> user/class, ...) point at "
    "accepted rows: rows rejected for a dangling reference (WARN) and a re-check over the accepted rows of "
    "a bulk night (ERROR, blocks the LMS load).",
    "file_complete": "The night's file is whole: an empty (header-only) bulk file, a bulk file with far "
    "fewer rows than the previous night, a file rejected as a whole or a last line cut off is a failure, "
    "never 'everyone left'. ERROR, blocks the LMS load.",
    "row_count_drift": "Rows received moved by more than the drift threshold (default 20%) against the "
    "previous bulk night. WARN only: the LMS load goes ahead (its safety thresholds still apply).",
}


@dataclass(frozen=True)
class QualityThresholds:
    drift: float = 0.2  # row_count_drift warns above this relative change
    truncation: float = 0.5  # file_complete fails when a bulk file lost more than this share of its rows

    def __post_init__(self) -> None:
        for name in ("drift", "truncation"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} threshold must be between 0 and 1 (exclusive), got {value}")


@dataclass
class Finding:
    table: str
    check: str
    passed: bool
    severity: str  # ERROR | WARN (meaningful when not passed)
    description: str
    failing: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FileRow:
    date: dt.date
    file: str
    mode: str | None
    status: str
    rows: int
    accepted: int
    rejected: int
    error: str | None


def _file_row(conn: duckdb.DuckDBPyConnection, table: str, where: str, params: list[Any]) -> FileRow | None:
    row = conn.execute(
        "SELECT _date, file, mode, status, coalesce(rows, 0), coalesce(accepted, 0), coalesce(rejected, 0), "
        f'error FROM oneroster.files WHERE "table" = ? AND {where} ORDER BY _date DESC LIMIT 1',
        [table, *params],
    ).fetchone()
    return FileRow(*row) if row else None


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- the rules -----------------------------------------------------------------------------------------


def _rejected(conn: duckdb.DuckDBPyConnection, spec: TableSpec, date: dt.date, codes: tuple[str, ...]):
    where = f"_date = ? AND file = ? AND code IN ({', '.join(_lit(c) for c in codes)})"
    count = conn.execute(
        f"SELECT count(DISTINCT line) FROM oneroster.rejects WHERE {where}", [date, spec.file]
    )
    n = count.fetchone()[0]
    by_code = dict(
        conn.execute(
            f"SELECT code, count(*) FROM oneroster.rejects WHERE {where} GROUP BY 1 ORDER BY 2 DESC",
            [date, spec.file],
        ).fetchall()
    )
    sample = _rows(
        conn,
        f'SELECT line, "column", code, message FROM oneroster.rejects WHERE {where} '
        f"ORDER BY line LIMIT {SAMPLE}",
        [date, spec.file],
    )
    return n, by_code, sample


def _clean_required(spec: TableSpec) -> str | None:
    cols = [c for c in spec.stored_columns if c.required and c.required_in is None and c.kind != STATUS]
    if not cols:
        return None
    cases = " ".join(f"WHEN {_q(c.name)} IS NULL THEN {_lit(c.name)}" for c in cols)
    return (
        f'SELECT _line AS line, "sourcedId", CASE {cases} END AS "column" FROM oneroster.{spec.table} '
        f"WHERE _date = ? AND ({' OR '.join(f'{_q(c.name)} IS NULL' for c in cols)})"
    )


def _clean_values(spec: TableSpec) -> str | None:
    parts = []
    for c in spec.stored_columns:
        if c.kind == STATUS:
            allowed: tuple[str, ...] = ("active", "tobedeleted")
        elif c.kind == ENUM:
            allowed = c.values
        else:
            continue
        vocabulary = ", ".join(_lit(v.lower()) for v in allowed)
        bad = f"{_q(c.name)} IS NOT NULL AND lower({_q(c.name)}) NOT IN ({vocabulary})"
        if c.extensible:
            bad += f" AND NOT starts_with({_q(c.name)}, 'ext:')"
        parts.append((c.name, bad))
    if not parts:
        return None
    cases = " ".join(f"WHEN {bad} THEN {_lit(name)}" for name, bad in parts)
    where = " OR ".join(f"({bad})" for _, bad in parts)
    return (
        f'SELECT _line AS line, "sourcedId", CASE {cases} END AS "column" FROM oneroster.{spec.table} '
        f"WHERE _date = ? AND ({where})"
    )


def _clean_duplicates(spec: TableSpec) -> str:
    return f"""SELECT min(_line) AS line, "sourcedId", count(*) AS occurrences FROM oneroster.{spec.table}
        WHERE _date = ? AND "sourcedId" IS NOT NULL GROUP BY "sourcedId" HAVING count(*) > 1"""


def _clean_references(conn: duckdb.DuckDBPyConnection, spec: TableSpec, date: dt.date) -> str | None:
    """Only when this file and every referenced file were bulk-loaded tonight (a delta night's parents may
    live in earlier nights)."""
    selects = []
    for column, target in REQUIRED_REFS.get(spec.table, ()):
        target_file = _file_row(conn, target, "_date = ?", [date])
        if target_file is None or target_file.mode != "bulk" or target_file.status != "loaded":
            continue
        col = spec.column(column)
        value = f"unnest({_q(column)})" if col.kind == REFLIST else _q(column)
        selects.append(
            f"""SELECT r._line AS line, r."sourcedId", {_lit(column)} AS "column", r.ref AS missing
                FROM (SELECT _line, "sourcedId", {value} AS ref FROM oneroster.{spec.table} WHERE _date = ?) r
                WHERE r.ref IS NOT NULL AND r.ref NOT IN (
                    SELECT "sourcedId" FROM oneroster.{target} WHERE _date = ? AND "sourcedId" IS NOT NULL)"""
        )
    return " UNION ALL ".join(selects) if selects else None


def _rule(
    conn: duckdb.DuckDBPyConnection, spec: TableSpec, date: dt.date, check: str, this: FileRow | None
) -> Finding:
    rejected, by_code, reject_sample = _rejected(conn, spec, date, REJECT_CODES[check])
    sql: str | None
    if check == "required_fields":
        sql = _clean_required(spec)
    elif check == "valid_values":
        sql = _clean_values(spec)
    elif check == "unique_sourced_ids":
        sql = _clean_duplicates(spec)
    else:
        sql = None
        if this is not None and this.mode == "bulk" and this.status == "loaded":
            sql = _clean_references(conn, spec, date)
    slipped, slipped_sample = 0, []
    if sql:
        params = [date] * sql.count("?")  # every placeholder is the night
        slipped = conn.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
        if slipped:
            slipped_sample = _rows(conn, f"SELECT * FROM ({sql}) ORDER BY line LIMIT {SAMPLE}", params)
    metadata: dict[str, Any] = {"rejected_rows": rejected, "accepted_rows_violating": slipped}
    if by_code:
        metadata["rejected_by_code"] = by_code
    if slipped:
        text = f"{slipped} accepted row(s) of oneroster.{spec.table} break the rule (slipped past the ingest)"
        return Finding(spec.table, check, False, ERROR, text, slipped, metadata, slipped_sample)
    if rejected:
        text = f"{rejected} row(s) of {spec.file} rejected ({', '.join(by_code)}); held, not loaded"
        return Finding(spec.table, check, False, WARN, text, rejected, metadata, reject_sample)
    return Finding(spec.table, check, True, WARN, f"{spec.file}: no row breaks the rule", 0, metadata)


def _previous_bulk(conn: duckdb.DuckDBPyConnection, table: str, date: dt.date) -> FileRow | None:
    return _file_row(conn, table, "_date < ? AND mode = 'bulk' AND status = 'loaded'", [date])


def _change(now: int, before: int) -> float:
    return (now - before) / before if before else 0.0


def _last_line_cut(conn: duckdb.DuckDBPyConnection, spec: TableSpec, date: dt.date) -> dict[str, Any] | None:
    """The file's last record was rejected as cut off (no line ending, or fewer fields than the header)."""
    row = conn.execute(
        f"""WITH last AS (
                SELECT max(line) AS line FROM (
                    SELECT _line AS line FROM oneroster.{spec.table} WHERE _date = ?
                    UNION ALL SELECT line FROM oneroster.rejects WHERE _date = ? AND file = ?))
            SELECT r.line, r.code, r.message FROM oneroster.rejects r, last
            WHERE r._date = ? AND r.file = ? AND r.line = last.line
              AND r.code IN ({", ".join(_lit(c) for c in STRUCTURAL)}) LIMIT 1""",
        [date, date, spec.file, date, spec.file],
    ).fetchone()
    return {"line": row[0], "code": row[1], "message": row[2]} if row else None


def cut_off_lines(conn: duckdb.DuckDBPyConnection, date: str | dt.date) -> dict[str, int]:
    """The night's files whose last line is cut off: file name -> that line's number."""
    night = dt.date.fromisoformat(date) if isinstance(date, str) else date
    codes = ", ".join(_lit(c) for c in STRUCTURAL)
    candidates = {
        r[0]
        for r in conn.execute(
            f"SELECT DISTINCT file FROM oneroster.rejects WHERE _date = ? AND code IN ({codes})", [night]
        ).fetchall()
    }
    cut = {}
    for spec in SPECS:
        if spec.file in candidates and (found := _last_line_cut(conn, spec, night)) is not None:
            cut[spec.file] = found["line"]
    return cut


def _file_complete(
    conn: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    date: dt.date,
    this: FileRow | None,
    before: FileRow | None,
    limits: QualityThresholds,
) -> Finding:
    metadata: dict[str, Any] = {
        "mode": this.mode if this else "absent",
        "status": this.status if this else "absent",
    }
    if this is None or this.status == "absent":
        return Finding(spec.table, "file_complete", True, ERROR, f"no {spec.file} tonight", 0, metadata)
    # One definition of rejected rows and files (etl_project/oneroster/rejected.py).
    metadata.update({"rows": this.rows, "accepted": this.accepted, "rejected_rows": rejected_rows([this])})
    if rejected_files([this]):
        metadata["file_rejected"] = this.file
    if before is not None:
        metadata.update({"previous_night": before.date.isoformat(), "previous_rows": before.rows})
    problem = None
    if this.status == "rejected":
        problem = f"{this.file} was rejected as a whole: {this.error}"
    elif this.mode == "bulk" and this.rows == 0 and (spec.table in LMS_SOURCES or (before and before.rows)):
        problem = (
            f"{this.file} is a bulk file with a header but no rows: read as-is it would deactivate every "
            f"{spec.table} record; treated as an empty export instead"
        )
    elif (
        this.mode == "bulk"
        and before is not None
        and before.rows
        and this.rows < before.rows * (1 - limits.truncation)
    ):
        problem = (
            f"{this.file} has {this.rows} rows, {before.rows} on {before.date.isoformat()} "
            f"({_change(this.rows, before.rows):+.0%}): looks truncated, not a real change"
        )
    cut = _last_line_cut(conn, spec, date)
    if problem is None and cut is not None:
        problem = f"the last line ({cut['line']}) of {this.file} is cut off: {cut['message']}"
    if cut is not None:
        metadata["last_line"] = cut
    if problem:
        return Finding(spec.table, "file_complete", False, ERROR, problem, max(this.rows, 1), metadata)
    return Finding(
        spec.table, "file_complete", True, ERROR, f"{this.file}: {this.rows} rows, complete", 0, metadata
    )


def _drift(
    spec: TableSpec, this: FileRow | None, before: FileRow | None, limits: QualityThresholds
) -> Finding:
    metadata: dict[str, Any] = {"threshold": limits.drift}
    if this is None or this.mode != "bulk" or this.status != "loaded":
        return Finding(spec.table, "row_count_drift", True, WARN, f"no bulk {spec.file} tonight", 0, metadata)
    metadata["rows"] = this.rows
    if before is None or not before.rows:
        return Finding(
            spec.table, "row_count_drift", True, WARN, f"{this.rows} rows; no earlier bulk night", 0, metadata
        )
    change = _change(this.rows, before.rows)
    metadata.update(
        {"previous_night": before.date.isoformat(), "previous_rows": before.rows, "change": round(change, 4)}
    )
    text = f"{this.file}: {this.rows} rows, {before.rows} on {before.date.isoformat()} ({change:+.1%})"
    passed = abs(change) <= limits.drift
    if not passed:
        text += f", more than the {limits.drift:.0%} drift threshold"
    return Finding(
        spec.table,
        "row_count_drift",
        passed,
        WARN,
        text,
        0 if passed else abs(this.rows - before.rows),
        metadata,
    )


def evaluate_night(
    conn: duckdb.DuckDBPyConnection, date: str, limits: QualityThresholds | None = None
) -> list[Finding]:
    """Every rule for every OneRoster table of the night ``date`` (YYYY-MM-DD)."""
    limits = limits or QualityThresholds()
    night = dt.date.fromisoformat(date)
    findings: list[Finding] = []
    for spec in SPECS:
        this = _file_row(conn, spec.table, "_date = ?", [night])
        before = _previous_bulk(conn, spec.table, night)
        for check in checks_for(spec):
            if check in REJECT_CODES:
                findings.append(_rule(conn, spec, night, check, this))
        findings.append(_file_complete(conn, spec, night, this, before, limits))
        findings.append(_drift(spec, this, before, limits))
    return findings


def checks_for(spec: TableSpec) -> list[str]:
    """The rules that apply to a table (references only where OneRoster requires some)."""
    names = ["required_fields", "valid_values", "unique_sourced_ids"]
    if spec.table in REQUIRED_REFS:
        names.append("references_resolve")
    return [*names, "file_complete", "row_count_drift"]
