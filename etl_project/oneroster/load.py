"""Load one night's drop into the ``oneroster`` schema: validate, normalize, report.

``load_drop`` replaces the night's rows of every table in one transaction. ``check_drop`` runs the very
same code against an in-memory DuckDB and only returns the report.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from etl_project.nofollow import unsafe_sentence
from etl_project.oneroster.header import HeaderMap, HeaderProblem, map_header
from etl_project.oneroster.limits import CsvLimits, LongLine, blank_out, long_value, size_text
from etl_project.oneroster.manifest import Manifest, ManifestError, parse_manifest
from etl_project.oneroster.normalize import SCHEMA, ensure_schema, insert_sql
from etl_project.oneroster.read import (
    CsvUnreadable,
    DropFiles,
    DropRefused,
    FileScan,
    NotUtf8,
    Staged,
    ZipLimits,
    drop_staging,
    extra_empty_field_lines,
    find_invalid_utf8,
    open_drop,
    read_header,
    scan_file,
    stage_csv,
)
from etl_project.oneroster.spec import (
    BULK_IGNORED,
    BY_FILE,
    BY_TABLE,
    KNOWN_FILES,
    LIST,
    MANIFEST,
    OPTIONAL_REFS,
    REQUIRED_REFS,
    SPECS,
    TABLES,
    TableSpec,
)
from etl_project.oneroster.validate import (
    Check,
    duplicates_sql,
    empty_errors_sql,
    field_size_check,
    grade_zero_check,
    held_reference_sql,
    lit,
    reference_sql,
    required_check,
    row_errors_sql,
    user_ids_check,
    value_check,
)
from etl_project.partitions import validate_district_id
from etl_project.scratch import scratch_dir

__all__ = ["TABLES", "DropReport", "FileProvenance", "FileReport", "check_drop", "load_drop"]

ERROR_CAP = 1000
WARNED_LINES = 10  # per file and kind of warning, the lines named one by one
_REFERENCED = {t for refs in (*REQUIRED_REFS.values(), *OPTIONAL_REFS.values()) for _, t in refs}


@dataclass(frozen=True)
class FileProvenance:
    """Where an archived file came from; carried into ``oneroster.files``."""

    size: int
    sha256: str
    uri: str | None = None
    version_id: str | None = None


@dataclass
class FileReport:
    file: str
    table: str | None
    mode: str | None  # bulk | delta | absent | None (no manifest row)
    status: str  # loaded | rejected | absent | skipped
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_omitted: int = 0
    error: str | None = None  # the one message of a file-level reject

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "table": self.table,
            "mode": self.mode,
            "status": self.status,
            "rows": self.rows,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "error": self.error,
            "errors": self.errors,
            "errors_omitted": self.errors_omitted,
        }


@dataclass
class DropReport:
    oneroster_version: str | None = None
    refused: bool = False
    drop_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: dict[str, FileReport] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "oneroster_version": self.oneroster_version,
            "refused": self.refused,
            "drop_errors": self.drop_errors,
            "warnings": self.warnings,
            "files": {name: report.to_json() for name, report in self.files.items()},
        }

    def exit_code(self) -> int:
        if self.refused:
            return 2
        if any(f.status == "rejected" or f.rejected for f in self.files.values()):
            return 1
        return 0


def check_drop(
    path: Path, zip_limits: ZipLimits | None = None, csv_limits: CsvLimits | None = None
) -> DropReport:
    """Validate a drop without keeping anything: the load path on a throw-away in-memory DuckDB."""
    from etl_project.warehouse import DUCKDB_CONFIG

    conn = duckdb.connect(":memory:", config=dict(DUCKDB_CONFIG))
    try:
        return load_drop(
            conn,
            Path(path),
            district="check",
            date=dt.date.today().isoformat(),
            zip_limits=zip_limits,
            csv_limits=csv_limits,
        )
    finally:
        conn.close()


def load_drop(
    conn: duckdb.DuckDBPyConnection,
    drop: Path,
    *,
    district: str,
    date: str,
    provenance: Mapping[str, FileProvenance] | None = None,
    staging_dir: Path | None = None,
    zip_limits: ZipLimits | None = None,
    csv_limits: CsvLimits | None = None,
) -> DropReport:
    """Validate and normalize ``drop`` (folder or zip) as the night ``date`` of ``district``."""
    validate_district_id(district)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ValueError(f"date must be YYYY-MM-DD, got {date!r}")
    dt.date.fromisoformat(date)
    with scratch_dir("oneroster", root=staging_dir) as workdir:
        report = DropReport()
        try:
            files = open_drop(Path(drop), workdir, zip_limits)
            report.warnings.extend(files.warnings)
            manifest = parse_manifest(files.files[MANIFEST])
        except (DropRefused, ManifestError) as exc:
            report.refused = True
            report.drop_errors.append(str(exc))
            _write_refusal(conn, district, date, str(exc))
            return report
        report.oneroster_version = manifest.version
        report.warnings.extend(manifest.warnings)
        loader = _Loader(conn, district, date, files, manifest, provenance or {}, report)
        loader.workdir, loader.limits = workdir, csv_limits or CsvLimits()
        loader.run()
        if files.unsafe:  # every other file was checked so that each problem is reported; none of it loads
            report.refused = True
            report.drop_errors.insert(0, unsafe_sentence("", files.unsafe.values()))
            _write_refusal(conn, district, date, report.drop_errors[0])
        return report


def delete_nights(conn: duckdb.DuckDBPyConnection, dates: list[str]) -> None:
    """Delete the nights from every table of the district's DuckDB file."""
    listed = ", ".join(f"DATE {lit(d)}" for d in dates)
    for table in ("files", "rejects", *TABLES):
        conn.execute(f"DELETE FROM {SCHEMA}.{table} WHERE _date IN ({listed})")


def _write_refusal(conn: duckdb.DuckDBPyConnection, district: str, date: str, message: str) -> None:
    ensure_schema(conn)
    conn.execute("BEGIN TRANSACTION")
    try:
        delete_nights(conn, [date])
        conn.execute(
            f"INSERT INTO {SCHEMA}.rejects VALUES (DATE {lit(date)}, ?, NULL, NULL, NULL, 'drop_refused', ?, "
            "NULL, NULL)",
            [district, message],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@dataclass
class _Plan:
    file: str
    spec: TableSpec | None
    mode: str | None
    path: Path | None
    problem: str | None = None


@dataclass
class _Structural:
    """What the parser could not split, and the over-long lines it was never given."""

    rejects: str  # staged table of parser rejects (line, error_type, message, csv_line)
    rejected: int
    ends_with_newline: bool
    long_lines: list[tuple[LongLine, tuple[int, int] | None]]  # with (column, size) of its long value

    @property
    def count(self) -> int:
        return self.rejected + len(self.long_lines)


@dataclass
class _Staging:
    """One staged entity file on its way through the checks (errors collect in ``err``)."""

    spec: TableSpec
    report: FileReport
    header: HeaderMap
    view: str  # the staged rows: raw VARCHAR columns c0.. and _line
    accepted: int  # rows the parser read
    name: str  # prefix of the file's temp tables
    structural: _Structural
    path: Path  # the CSV DuckDB read
    comma_ends: int  # its lines ending with a comma (see FileScan)

    @property
    def err(self) -> str:
        return f"{self.name}_err"

    @property
    def mode(self) -> str:
        return self.report.mode or "bulk"

    @property
    def sid(self) -> str:
        return self.header.mapping["sourcedId"]

    @property
    def raw(self) -> str:
        return "json_object(" + ", ".join(f"{lit(k)}, {x}" for k, x in self.header.raw) + ")::VARCHAR"


def _long_line_error(
    long: LongLine, value: tuple[int, int] | None, header: HeaderMap, limits: CsvLimits
) -> tuple[int, str | None, str, str, str]:
    """The row error of a line over the line limit: its size, the limit, and the long value's column."""
    column = None
    message = f"the line is {long.size:,} bytes long, over the limit of {size_text(limits.max_line_bytes)}"
    if value is not None:
        index, size = value
        column = header.names[index] if index < len(header.names) else f"field {index + 1}"
        message += (
            f"; its value in {column} is {size:,} bytes, over the limit of "
            f"{size_text(limits.max_field_bytes)} per value"
        )
    message += "; the row was not loaded"
    return long.line, column, "line_too_long", message, json.dumps({"size": long.size})


def _unaccounted_text(file: str, scan: FileScan, staged: Staged) -> str:
    data = scan.physical_lines - 1
    return (
        f"{file}: {staged.unaccounted:,} of its {data:,} data line(s) were neither read nor rejected "
        f"({staged.accepted:,} row(s) read, {staged.rejected:,} rejected, {len(scan.blank_lines):,} blank); "
        "the whole file was not loaded so that no row is lost: look for an unbalanced double quote or a "
        "damaged line and export the file again"
    )


class _Loader:
    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        district: str,
        date: str,
        files: DropFiles,
        manifest: Manifest,
        provenance: Mapping[str, FileProvenance],
        report: DropReport,
    ):
        self.conn, self.district, self.date = conn, district, date
        self.files, self.manifest, self.provenance, self.report = files, manifest, provenance, report
        self.bulk_loaded: set[str] = set()  # tables whose bulk file loaded: required references checked
        # tables whose bulk file was rejected as a whole or is missing -> why: their references are held
        self.bulk_rejected: dict[str, str] = {}
        self.loaded: dict[str, str] = {}  # table -> mode, for every file that loaded
        self.workdir: Path | None = None  # the night's scratch: a copy without over-long lines goes here
        self.limits = CsvLimits()

    # -- planning: the manifest against the files actually present ------------------------------------------
    def plan(self) -> list[_Plan]:
        plans: list[_Plan] = []
        modes = self.manifest.modes
        present = dict(self.files.files)
        present.pop(MANIFEST, None)
        for name in KNOWN_FILES:
            path = present.pop(name.lower(), None)
            if name.lower() in self.files.unsafe:
                problem = f"{self.files.unsafe[name.lower()]}: it was not read (links are never followed)"
                plans.append(_Plan(name, BY_FILE.get(name), modes.get(name), None, problem))
                continue
            if path is not None and path.name != name:
                self.report.warnings.append(f"{path.name} should be spelled {name}; read it as {name}")
            has_row = name in modes
            mode = modes.get(name)
            spec = BY_FILE.get(name)
            key = f"file.{name.removesuffix('.csv')}"
            if path is None:
                if mode in ("bulk", "delta"):
                    plans.append(
                        _Plan(
                            name,
                            spec,
                            mode,
                            None,
                            f"manifest.csv lists {name} as {mode} but the file is not in the drop",
                        )
                    )
                elif has_row:
                    plans.append(_Plan(name, spec, mode or "absent", None))
                continue
            if mode in ("bulk", "delta"):
                plans.append(_Plan(name, spec, mode, path))
                continue
            if not has_row:
                why = f"manifest.csv has no {key} row"
            elif mode is None:
                why = f"manifest.csv gives {key} no valid mode (expected bulk, delta or absent)"
            else:
                why = f"manifest.csv says {key} is absent"
            plans.append(
                _Plan(
                    name,
                    spec,
                    mode,
                    path,
                    f"{path.name} is in the drop but {why}; the file was not loaded. "
                    f"Fix manifest.csv (bulk or delta) or leave the file out",
                )
            )
        for path in present.values():
            if path.name.startswith("raw__") and path.suffix == ".json":
                continue  # raw OneRoster REST pages archived with the CSVs they became (sources.rest)
            self.report.warnings.append(f"{path.name} is not a OneRoster file; ignored")
        return plans

    def run(self) -> None:
        conn = self.conn
        ensure_schema(conn)
        plans = self.plan()
        conn.execute("BEGIN TRANSACTION")
        try:
            delete_nights(conn, [self.date])
            by_file = {p.file: p for p in plans}
            for spec in SPECS:
                plan = by_file.pop(spec.file, None)
                if plan is not None:
                    self.report.files[spec.file] = self.handle(plan)
            for plan in by_file.values():  # gradebook / resources files
                self.report.files[plan.file] = self.handle(plan)
            self.optional_reference_warnings()
            manifest = FileReport(MANIFEST, None, None, "loaded", rows=len(self.manifest.properties))
            manifest.accepted = manifest.rows
            self.write_file_row(manifest)
            for report in self.report.files.values():
                self.write_file_row(report)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            for table in TABLES:
                for prefix in ("_or_ok_", "_or_bad_"):
                    conn.execute(f"DROP TABLE IF EXISTS {prefix}{table}")

    def handle(self, plan: _Plan) -> FileReport:
        report = self.handle_file(plan)
        # a link refuses the whole drop: holding each row that refers into it would only bury that sentence
        unsafe = plan.file.lower() in self.files.unsafe
        if plan.spec is not None and plan.mode == "bulk" and report.status == "rejected" and not unsafe:
            self.bulk_rejected[plan.spec.table] = (
                f"{plan.file} was rejected as a whole"
                if plan.path is not None
                else f"{plan.file} is listed as bulk in manifest.csv but is not in the drop"
            )
        return report

    def handle_file(self, plan: _Plan) -> FileReport:
        table = plan.spec.table if plan.spec else None
        if plan.problem:
            return self.file_reject(
                FileReport(plan.file, table, plan.mode, "rejected"), "manifest_mismatch", plan.problem
            )
        if plan.path is None:
            return FileReport(plan.file, table, plan.mode, "absent")
        if plan.spec is None:
            self.report.warnings.append(
                f"{plan.file}: gradebook/resources files are not part of the roster tables; not loaded"
            )
            return FileReport(plan.file, None, plan.mode, "skipped")
        return self.load_file(plan.spec, plan.path, plan.mode or "bulk")

    def file_reject(
        self,
        report: FileReport,
        code: str,
        message: str,
        rows: int = 0,
        problems: list[tuple[str, str]] | None = None,
    ) -> FileReport:
        """The whole file is refused: one message, and one error per problem found (a header's all)."""
        problems = problems or [(code, message)]
        report.status, report.error = "rejected", message
        report.rows, report.accepted, report.rejected = rows, 0, rows
        report.errors = [{"line": None, "column": None, "code": c, "message": m} for c, m in problems]
        self.conn.executemany(
            f"INSERT INTO {SCHEMA}.rejects VALUES (DATE {lit(self.date)}, ?, ?, NULL, NULL, ?, ?, NULL, "
            "NULL)",
            [[self.district, report.file, c, m] for c, m in problems],
        )
        return report

    # -- one entity file ---------------------------------------------------------------------------------
    def load_file(self, spec: TableSpec, path: Path, mode: str) -> FileReport:
        conn, file, limits = self.conn, spec.file, self.limits
        report = FileReport(file, spec.table, mode, "loaded")
        scan = scan_file(path, max_line_bytes=limits.max_line_bytes)
        data_lines = max(scan.physical_lines - 1 - len(scan.blank_lines), 0)
        if scan.size == 0:
            return self.file_reject(report, "empty_file", f"{file} is empty (not even a header row)")
        try:
            header = map_header(spec, read_header(path, limits, file), self.manifest.version)
        except NotUtf8 as exc:
            return self.file_reject(report, "not_utf8", f"{file}: {exc}", data_lines)
        except HeaderProblem as exc:
            return self.file_reject(report, exc.code, str(exc), data_lines, exc.problems)
        self.report.warnings.extend(header.warnings)
        path, scan, long_lines = self.without_long_lines(spec, path, scan)
        excised = {long.line for long, _ in long_lines}
        blank = [b for b in scan.blank_lines if b not in excised]
        if blank:
            shown = ", ".join(map(str, blank[:10])) + (", ..." if len(blank) > 10 else "")
            self.report.warnings.append(f"{file}: {len(blank)} blank line(s) skipped (line {shown})")
        name = f"_or_{spec.table}"
        try:
            staged = stage_csv(conn, path, header.ncols, name, scan, limits.max_line_bytes)
        except CsvUnreadable as exc:
            drop_staging(conn, name)
            return self.file_reject(
                report, "unreadable_csv", f"{file} cannot be read as CSV: {exc}", data_lines
            )
        try:
            if staged.unaccounted:
                return self.file_reject(
                    report, "rows_unaccounted", _unaccounted_text(file, scan, staged), data_lines
                )
            encoding = conn.execute(
                f"SELECT min(line) FROM {staged.rejects} WHERE error_type = 'INVALID ENCODING'"
            ).fetchone()[0]
            if encoding is not None:
                bad = find_invalid_utf8(path) or NotUtf8(int(encoding), -1, False)
                return self.file_reject(report, "not_utf8", f"{file}: {bad}", data_lines)
            structural = _Structural(staged.rejects, staged.rejected, scan.ends_with_newline, long_lines)
            return self.validate_and_insert(
                _Staging(
                    spec,
                    report,
                    header,
                    staged.view,
                    staged.accepted,
                    name,
                    structural,
                    path,
                    scan.comma_ends,
                )
            )
        finally:
            drop_staging(conn, name)

    def without_long_lines(
        self, spec: TableSpec, path: Path, scan: FileScan
    ) -> tuple[Path, FileScan, list[tuple[LongLine, tuple[int, int] | None]]]:
        """The parser never sees an over-long line: it reads a copy where that line is blank."""
        if not scan.long_lines:
            return path, scan, []
        assert self.workdir is not None, "load_drop sets the loader's scratch folder"
        limits = self.limits
        copy = self.workdir / f"{spec.table}.blanked.csv"
        blank_out(path, copy, scan.long_lines)
        long_lines = [(long, long_value(path, long, limits)) for long in scan.long_lines]
        return copy, scan_file(copy, max_line_bytes=limits.max_line_bytes), long_lines

    def validate_and_insert(self, s: _Staging) -> FileReport:
        conn = self.conn
        conn.execute(empty_errors_sql(s.err))
        insert_map = self.row_checks(s)
        self.structural_errors(s.err, s.header, s.view, s.structural)
        if s.accepted:
            conn.execute(duplicates_sql(s.view, s.err, s.sid, s.raw))
            self.reference_checks(s)
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {s.name}_badl AS SELECT DISTINCT line FROM {s.err}")
        rejected_lines = conn.execute(f"SELECT count(*) FROM {s.name}_badl").fetchone()[0]
        report = s.report
        report.rows = s.accepted + s.structural.count
        report.rejected = rejected_lines
        report.accepted = report.rows - rejected_lines
        if s.accepted:
            bad = f"{s.name}_badl" if rejected_lines > s.structural.count else None
            conn.execute(insert_sql(s.spec, s.view, insert_map, s.header.metadata, self.date, bad))
        if s.spec.table in _REFERENCED:
            self.remember_ids(s.spec.table, s.view, s.sid, s.err, s.name if s.accepted else None)
        self.record_rejects(s)
        self.loaded[s.spec.table] = s.mode
        if s.mode == "bulk":
            self.bulk_loaded.add(s.spec.table)
        self.mode_warnings(s)
        self.accepted_defect_warnings(s)
        conn.execute(f"DROP TABLE IF EXISTS {s.err}")
        conn.execute(f"DROP TABLE IF EXISTS {s.name}_badl")
        return report

    def row_checks(self, s: _Staging) -> dict[str, str]:
        """Every per-row check in one scan. Returns the column mapping for the insert, in which a malformed
        value of a column the bulk load ignores (dropped with a warning, the row kept) is NULL."""
        m, version, file = s.header.mapping, self.manifest.version, s.spec.file
        insert_map = dict(m)
        checks: list[Check] = []
        for col in s.spec.columns:
            x = m.get(col.name)
            if x is None:
                continue
            if col.is_required(version):
                checks.append(required_check(col, x))
            check = value_check(col, x, file)
            if check is None:
                continue
            if s.mode == "bulk" and col.name in BULK_IGNORED:
                self.report.warnings += self.row_warnings(
                    s,
                    check,
                    "; the value was dropped and the row kept (a bulk file leaves it empty and the "
                    "load does not use it)",
                )
                insert_map[col.name] = f"(CASE WHEN {check.condition} THEN NULL ELSE {x} END)"
            else:
                checks.append(check)
        limit = self.limits.max_field_bytes
        names = s.header.names
        checks += [field_size_check(n, f"c{i}", limit, size_text(limit)) for i, n in enumerate(names)]
        if s.accepted and checks:
            self.conn.execute(row_errors_sql(s.view, s.err, checks, s.sid, s.raw))
        return insert_map

    def reference_checks(self, s: _Staging) -> None:
        """Required references: checked against a loaded bulk file, held when that file was rejected or is
        missing, unchecked into delta and absent files (the LMS may hold the record)."""
        for column, target in REQUIRED_REFS.get(s.spec.table, ()):
            x = s.header.mapping.get(column)
            if x is None:
                continue
            col, ref_file = s.spec.column(column), BY_TABLE[target].file
            if target in self.bulk_loaded:
                sql = reference_sql(
                    s.view, s.err, col, x, s.sid, s.raw, f"_or_ok_{target}", f"_or_bad_{target}", ref_file
                )
            elif target in self.bulk_rejected:
                sql = held_reference_sql(s.view, s.err, col, x, s.sid, s.raw, self.bulk_rejected[target])
            else:
                continue
            self.conn.execute(sql)

    def record_rejects(self, s: _Staging) -> None:
        conn = self.conn
        conn.execute(
            f"""INSERT INTO {SCHEMA}.rejects
                SELECT DATE {lit(self.date)}, {lit(self.district)}, {lit(s.spec.file)},
                line, "column", code, message, "sourcedId", raw FROM {s.err}"""
        )
        total = conn.execute(f"SELECT count(*) FROM {s.err}").fetchone()[0]
        rows = conn.execute(
            f'SELECT line, "column", code, message FROM {s.err} ORDER BY line, code, "column" '
            f"LIMIT {ERROR_CAP}"
        ).fetchall()
        s.report.errors = [{"line": r[0], "column": r[1], "code": r[2], "message": r[3]} for r in rows]
        s.report.errors_omitted = max(total - len(rows), 0)

    def mode_warnings(self, s: _Staging) -> None:
        m, view = s.header.mapping, s.view
        if s.mode == "bulk":
            self.bulk_status_warning(s.spec, view, m, s.accepted)
        elif s.mode == "delta" and s.accepted and "status" in m:
            missing = self.conn.execute(
                f"SELECT count(*) FROM {view} WHERE {m['status']} IS NULL"
            ).fetchone()[0]
            if missing:
                self.report.warnings.append(
                    f"{s.spec.file}: {missing} row(s) of this delta file have no status (delta rows should "
                    "say active or tobedeleted)"
                )

    def accepted_defect_warnings(self, s: _Staging) -> None:
        """Defects that lose nothing, so the row is kept: grades without their leading zero, userIds not in
        {type:id} form, an extra empty field at the end of a row."""
        if not s.accepted:
            return
        for col in s.spec.columns:
            x = s.header.mapping.get(col.name)
            if x is None or col.kind != LIST:
                continue
            if col.name == "grades":
                self.report.warnings += self.row_warnings(s, grade_zero_check(col, x))
            elif col.name == "userIds":
                self.report.warnings += self.row_warnings(s, user_ids_check(col, x))
        if not s.comma_ends or s.header.trailing:
            return
        count, lines = extra_empty_field_lines(self.conn, s.path, s.header.ncols, s.view, s.sid, WARNED_LINES)
        file = s.spec.file
        self.report.warnings += [
            f"{file} line {line}: the row has one field more than the header, and it is empty; ignored (a "
            "trailing comma: check the export)"
            for line in lines
        ]
        if count > len(lines):
            self.report.warnings.append(
                f"{file}: {count - len(lines)} more row(s) with one empty field too many"
            )

    def row_warnings(self, s: _Staging, check: Check, suffix: str = "") -> list[str]:
        """One warning per row failing ``check`` (file, line, column, message), the first few by line."""
        rows = self.conn.execute(
            f"""SELECT count(*) OVER (), _line, {check.message} FROM {s.view} WHERE {check.condition}
                ORDER BY _line LIMIT {WARNED_LINES}"""
        ).fetchall()
        file = s.spec.file
        out = [f"{file} line {line}, column {check.column}: {message}{suffix}" for _, line, message in rows]
        if rows and rows[0][0] > len(rows):
            out.append(f"{file}: {rows[0][0] - len(rows)} more row(s) with the same {check.column} problem")
        return out

    def structural_errors(self, err: str, header: HeaderMap, view: str, structural: _Structural) -> None:
        """Rows the parser could not split (and over-long lines it never saw) as row errors.

        A rejected last record is ``cut_off`` only when it is shorter than the header or the file ends
        without a line break; anything else is an ordinary row rejection.
        """
        conn, sid = self.conn, header.mapping["sourcedId"]
        if structural.rejected:
            first_field = "trim(split_part(trim(csv_line, chr(13) || chr(10)), ',', 1), '\"')"
            last = conn.execute(
                f"SELECT greatest((SELECT max(_line) FROM {view}), "
                f"(SELECT max(line) FROM {structural.rejects}))"
            ).fetchone()[0]
            no_break = "FALSE" if structural.ends_with_newline else "TRUE"
            cut = (
                f"line = {int(last)} AND ({no_break} OR error_type = 'MISSING COLUMNS' "
                "OR message ILIKE '%unterminated quote%')"
            )
            conn.execute(
                f"""INSERT INTO {err} SELECT line, NULL, CASE
                    WHEN {cut} THEN 'cut_off'
                    WHEN error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS') THEN 'wrong_field_count'
                    WHEN error_type = 'LINE SIZE OVER MAXIMUM' THEN 'line_too_long'
                    ELSE 'csv_syntax' END,
                    CASE WHEN error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS')
                         THEN 'the row has ' || coalesce(regexp_extract(message, 'Found: ([0-9]+)', 1), '?')
                              || ' fields but the header has {header.ncols}'
                         WHEN error_type = 'LINE SIZE OVER MAXIMUM'
                         THEN 'the row is longer than the limit of {size_text(self.limits.max_line_bytes)}'
                         ELSE 'the row cannot be read as CSV: '
                              || coalesce(message, error_type, 'unknown parser error') END
                    || CASE WHEN line = {int(last)} AND {no_break}
                            THEN ' and the file ends without a line break' ELSE '' END,
                    {first_field if sid == "c0" else "NULL"},
                    json_object('csv_line', trim(csv_line, chr(13) || chr(10)))::VARCHAR
                    FROM {structural.rejects}"""
            )
        rows = [_long_line_error(long, value, header, self.limits) for long, value in structural.long_lines]
        if rows:
            conn.executemany(f"INSERT INTO {err} VALUES (?, ?, ?, ?, NULL, ?)", rows)

    def remember_ids(self, table: str, view: str, sid: str, err: str, name: str | None) -> None:
        conn = self.conn
        if name is None:
            conn.execute(f'CREATE OR REPLACE TEMP TABLE _or_ok_{table} ("sourcedId" VARCHAR)')
        else:
            conn.execute(
                f"""CREATE OR REPLACE TEMP TABLE _or_ok_{table} AS SELECT DISTINCT {sid} AS "sourcedId"
                    FROM {view} s ANTI JOIN {name}_badl b ON s._line = b.line WHERE {sid} IS NOT NULL"""
            )
        conn.execute(
            f"""CREATE OR REPLACE TEMP TABLE _or_bad_{table} AS
                SELECT "sourcedId", min(line) AS line FROM {err} e
                WHERE "sourcedId" IS NOT NULL AND "sourcedId" NOT IN (SELECT "sourcedId" FROM _or_ok_{table})
                GROUP BY 1"""
        )

    def bulk_status_warning(self, spec: TableSpec, view: str, m: dict[str, str], accepted: int) -> None:
        if not accepted or "status" not in m:
            return
        filled = self.conn.execute(f"SELECT count({m['status']}) FROM {view}").fetchone()[0]
        if filled:
            self.report.warnings.append(
                f"{spec.file}: {filled} row(s) fill status although the file is bulk (bulk rows should leave "
                f"status and dateLastModified empty); kept, with inactive read as tobedeleted"
            )

    def optional_reference_warnings(self) -> None:
        for table, refs in OPTIONAL_REFS.items():
            if table not in self.loaded:
                continue
            spec = next(s for s in SPECS if s.table == table)
            for column, target in refs:
                if target not in self.bulk_loaded:
                    continue
                col = spec.column(column)
                values = f'unnest("{column}")' if col.kind == "reflist" else f'"{column}"'
                count, example = self.conn.execute(
                    f"""SELECT count(*), min(ref) FROM (
                        SELECT {values} AS ref FROM {SCHEMA}.{table} WHERE _date = DATE {lit(self.date)}) r
                        WHERE ref IS NOT NULL AND ref NOT IN (SELECT "sourcedId" FROM _or_ok_{target})"""
                ).fetchone()
                if count:
                    target_file = next(s.file for s in SPECS if s.table == target)
                    self.report.warnings.append(
                        f"{spec.file}: {count} {column} value(s) refer to rows not in {target_file} "
                        f"(e.g. {example!r}); kept, as {column} is optional"
                    )

    def write_file_row(self, report: FileReport) -> None:
        path = self.files.files.get(report.file.lower())
        prov = self.provenance.get(report.file) or (self.provenance.get(path.name) if path else None)
        size = prov.size if prov else (path.stat().st_size if path is not None else None)
        self.conn.execute(
            f"INSERT INTO {SCHEMA}.files VALUES (DATE {lit(self.date)}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                report.file,
                report.table,
                report.mode,
                report.status,
                report.rows,
                report.accepted,
                report.rejected,
                size,
                prov.sha256 if prov else None,
                prov.uri if prov else None,
                prov.version_id if prov else None,
                report.error,
            ],
        )
