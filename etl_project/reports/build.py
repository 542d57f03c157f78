"""The facts of a district's sync report, gathered with set-based SQL.

Sources: the district's DuckDB (``oneroster.files``, ``oneroster.rejects``, entity tables for a few counts),
the LMS ledger (``sync_runs`` through :func:`etl_project.lms.history.history`) and the archived snapshot
manifest (when the drop arrived). Only the capped sample of rejected rows is turned into Python objects;
the full list is written as CSV by DuckDB itself.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from etl_project.archive.base import Archive, ArchiveError
from etl_project.checks.rules import cut_off_lines
from etl_project.lms.backend import LmsBackend
from etl_project.lms.history import history as lms_history
from etl_project.oneroster.load import FileReport
from etl_project.oneroster.rejected import rejected_files, rejected_rows
from etl_project.oneroster.spec import MANIFEST
from etl_project.registry.nights import NightRecord
from etl_project.reports.hints import CODES, TRUNCATED, Hint, hint_for, is_cut_off
from etl_project.scratch import scratch_dir

REJECTS_CAP = 500
HISTORY_NIGHTS = 30


@dataclass(frozen=True)
class RejectRow:
    file: str
    line: int | None
    column: str | None
    code: str
    message: str
    sourced_id: str | None
    value: str | None
    hint: Hint


@dataclass
class NightReport:
    district: str
    district_name: str
    date: str
    received_at: str | None = None  # newest file's time at the source, in the district's time zone
    snapshot_uri: str | None = None
    files: list[FileReport] = field(default_factory=list)
    # The night's state (etl_project/registry/nights.py): applied | released | held | blocked | failed |
    # missing | running; from the LMS ledger when the registry has no record; None: never loaded.
    lms_state: str | None = None
    night: NightRecord | None = None  # the registry's record: reason, step, detail
    lms_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    released_by: str | None = None
    rejects: list[RejectRow] = field(default_factory=list)
    rejects_total: int = 0
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def loaded(self) -> bool:
        return bool(self.files)

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def accepted(self) -> int:
        return sum(f.accepted for f in self.files)

    @property
    def rejected(self) -> int:
        """Rejected rows: data rows of accepted files (etl_project/oneroster/rejected.py)."""
        return rejected_rows(self.files)

    @property
    def files_rejected(self) -> list[FileReport]:
        """Whole files refused (their rows are not rejected rows)."""
        return rejected_files(self.files)

    @property
    def file_problems(self) -> list[RejectRow]:
        return [r for r in self.rejects if r.line is None]

    @property
    def row_problems(self) -> list[RejectRow]:
        return [r for r in self.rejects if r.line is not None]

    @property
    def changes(self) -> int:
        return sum(n for ops in self.lms_counts.values() for op, n in ops.items() if op != "held")


@dataclass(frozen=True)
class NightPoint:
    """One night on the history chart; ``received`` is None when no drop was loaded that night."""

    date: str
    received: int | None
    rejected: int
    changes: int
    state: str | None


@dataclass
class History:
    district: str
    district_name: str
    until: str
    nights: list[NightPoint]


# -- the night ---------------------------------------------------------------------------------------------


def has_tables(conn: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'oneroster' "
            "AND table_name IN ('files', 'rejects')"
        ).fetchone()[0]
        == 2
    )


_VALUE = """coalesce(CASE WHEN "column" IS NOT NULL THEN json_extract_string(raw, '/' || "column") END,
                     json_extract_string(raw, '/csv_line'))"""


def build_night_report(
    conn: duckdb.DuckDBPyConnection,
    backend: LmsBackend | None,
    archive: Archive | None,
    district: str,
    date: str,
    *,
    district_name: str | None = None,
    timezone: str = "UTC",
    cap: int = REJECTS_CAP,
    night_state: NightRecord | None = None,
) -> NightReport:
    report = NightReport(district, district_name or district, date)
    if has_tables(conn):
        rows = conn.execute(
            """SELECT file, "table", mode, status, coalesce(rows, 0), coalesce(accepted, 0),
                      coalesce(rejected, 0), error
               FROM oneroster.files WHERE _date = ? AND file <> ? ORDER BY status <> 'rejected', file""",
            [date, MANIFEST],
        ).fetchall()
        report.files = [FileReport(*r[:7], error=r[7]) for r in rows]
        report.rejects_total = conn.execute(
            "SELECT count(*) FROM oneroster.rejects WHERE _date = ?", [date]
        ).fetchone()[0]
        report.rejected_by_code = dict(
            conn.execute(
                "SELECT code, count(*) FROM oneroster.rejects WHERE _date = ? GROUP BY 1 ORDER BY 2 DESC",
                [date],
            ).fetchall()
        )
        sample = conn.execute(
            f"""SELECT file, CASE WHEN line <= 1 THEN NULL ELSE line END, "column", code, message,
                       "sourcedId", {_VALUE}
                FROM oneroster.rejects WHERE _date = ?
                ORDER BY line IS NOT NULL AND line > 1, file, line, "column" LIMIT {int(cap)}""",
            [date],
        ).fetchall()
        cut = _cut_lines(conn, date)
        report.rejects = [
            RejectRow(f, line, col, code, msg or "", sid, val, _hint(code, col, msg, val, cut.get(f) == line))
            for f, line, col, code, msg, sid, val in sample
        ]
        report.notes = _notes(conn, date)
    if archive is not None:
        _snapshot_facts(report, archive, timezone)
    if backend is not None:
        _lms_facts(report, _lms_nights(backend, district), night_state)
    elif night_state is not None:
        report.lms_state, report.night = str(night_state.state), night_state
    return report


def _cut_lines(conn: duckdb.DuckDBPyConnection, date: str) -> dict[str, int]:
    """Files whose last line stops mid-row (file -> line): the truncation hint replaces the row's own."""
    out = {}
    for file, line in cut_off_lines(conn, date).items():
        rows = conn.execute(
            "SELECT code, message FROM oneroster.rejects WHERE _date = ? AND file = ? AND line = ?",
            [date, file, line],
        ).fetchall()
        if any(is_cut_off(code, message) for code, message in rows):
            out[file] = line
    return out


def _hint(code: str, column: str | None, message: str | None, value: str | None, cut_off: bool) -> Hint:
    return TRUNCATED if cut_off else hint_for(code, column, message, value)


def _lms_facts(report: NightReport, ledger: list[dict[str, Any]], night_state: NightRecord | None) -> None:
    """The night's state (the registry's record first) and, only for a night that reached the LMS load
    (applied, released or held), its own changes from the ledger: never another night's."""
    night = next((n for n in ledger if n["date"] == report.date), None)
    report.night = night_state
    report.lms_state = str(night_state.state) if night_state else (night["state"] if night else None)
    if night is None or report.lms_state not in ("applied", "released", "held"):
        return
    report.lms_counts = {e: {op: int(n) for op, n in ops.items()} for e, ops in night["counts"].items()}
    report.released_by = night.get("released_by")


def _snapshot_facts(report: NightReport, archive: Archive, timezone: str) -> None:
    try:
        snapshot = archive.get_snapshot(report.district, report.date)
    except ArchiveError:
        return
    report.snapshot_uri = snapshot.manifest_uri
    mtimes = [f.source_mtime for f in snapshot.files if f.source_mtime]
    if mtimes:
        try:
            tz: dt.tzinfo = zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = dt.UTC
        when = dt.datetime.fromtimestamp(max(mtimes), tz=tz)
        report.received_at = f"{when:%Y-%m-%d %H:%M} {when.tzname()}"


def _lms_nights(backend: LmsBackend, district: str) -> list[dict[str, Any]]:
    try:
        return lms_history(backend, district)
    except Exception:  # an LMS never loaded for this district has no ledger yet: the report says so
        return []


def _notes(conn: duckdb.DuckDBPyConnection, date: str) -> list[str]:
    """Accepted-but-suspicious patterns worth a line on the report (counts only)."""
    notes = []
    for table in ("users", "classes", "courses"):
        n = conn.execute(
            f"""SELECT count(*) FROM oneroster.{table} WHERE _date = ? AND grades IS NOT NULL
                AND len(list_filter(grades, lambda g: regexp_full_match(g, '[1-9]'))) > 0""",
            [date],
        ).fetchone()[0]
        if n:
            hint = hint_for("", "grades", None, "9")
            notes.append(
                f"{n} row(s) of {table} list a grade such as 9 instead of 09. {hint.reason} {hint.fix}"
            )
    return notes


def rejects_csv(conn: duckdb.DuckDBPyConnection, date: str) -> bytes:
    """Every rejected row of the night as CSV (DuckDB writes it; the plain reason and fix per code joined)."""
    hints = ", ".join(
        "(" + ", ".join(_lit(x) for x in (code, h.reason, h.fix)) + ")" for code, h in sorted(CODES.items())
    )
    with scratch_dir("rejects") as scratch:
        path = str(scratch / "rejects.csv")
        if has_tables(conn):
            cut = (
                " UNION ALL ".join(
                    f"SELECT {_lit(file)} AS file, {int(line)} AS line"
                    for file, line in _cut_lines(conn, date).items()
                )
                or "SELECT NULL AS file, NULL::BIGINT AS line WHERE false"
            )
            conn.execute(
                f"""COPY (
                    SELECT {_safe("r.file")} AS file, r.line, {_safe('r."column"')} AS "column", r.code,
                           {_safe("r.message")} AS details, {_safe('r."sourcedId"')} AS "sourcedId",
                           {_safe(_VALUE.replace("raw", "r.raw").replace('"column"', 'r."column"'))} AS value,
                           CASE WHEN c.line IS NULL THEN h.reason ELSE {_lit(TRUNCATED.reason)} END AS reason,
                           CASE WHEN c.line IS NULL THEN h.fix ELSE {_lit(TRUNCATED.fix)} END AS fix
                    FROM oneroster.rejects r LEFT JOIN (VALUES {hints}) h(code, reason, fix) USING (code)
                    LEFT JOIN ({cut}) c ON c.file = r.file AND c.line = r.line
                    WHERE r._date = DATE {_lit(date)}
                    ORDER BY r.line IS NOT NULL AND r.line > 1, r.file, r.line, r."column"
                ) TO {_lit(path)} (HEADER, DELIMITER ',')"""
            )
        else:
            Path(path).write_text("file,line,column,code,details,sourcedId,value,reason,fix\n")
        return Path(path).read_bytes()


def _safe(expr: str) -> str:
    """A cell a spreadsheet would run as a formula (starts with =, +, -, @, tab or CR) gets a leading '."""
    return f"CASE WHEN regexp_matches({expr}, '^[-=+@\\t\\r]') THEN '''' || {expr} ELSE {expr} END"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- the history -------------------------------------------------------------------------------------------


def build_history(
    conn: duckdb.DuckDBPyConnection,
    backend: LmsBackend | None,
    district: str,
    until: str,
    *,
    district_name: str | None = None,
    nights: int = HISTORY_NIGHTS,
    states: dict[str, NightRecord] | None = None,
) -> History:
    """The ``nights`` calendar nights ending at ``until`` (a night without a drop is a gap on the chart);
    ``states`` are the registry's records by night, which win over the ledger's state."""
    end = dt.date.fromisoformat(until)
    start = end - dt.timedelta(days=nights - 1)
    files: dict[str, list[FileReport]] = {}
    if has_tables(conn):
        for day, *row in conn.execute(
            """SELECT _date, file, "table", mode, status, coalesce(rows, 0), coalesce(accepted, 0),
                      coalesce(rejected, 0) FROM oneroster.files
               WHERE _date BETWEEN ? AND ? AND file <> ?""",
            [start, end, MANIFEST],
        ).fetchall():
            files.setdefault(day.isoformat(), []).append(FileReport(*row))
    lms = {n["date"]: n for n in _lms_nights(backend, district)} if backend is not None else {}
    points = []
    for i in range(nights):
        day = (start + dt.timedelta(days=i)).isoformat()
        night, record = lms.get(day), (states or {}).get(day)
        state = str(record.state) if record else (night["state"] if night else None)
        changes = (
            sum(n for ops in night["counts"].values() for op, n in ops.items() if op != "held")
            if night and state in ("applied", "released")
            else 0
        )
        loaded = files.get(day)
        received = sum(f.rows for f in loaded) if loaded else None
        points.append(NightPoint(day, received, rejected_rows(loaded or []), changes, state))
    return History(district, district_name or district, until, points)
