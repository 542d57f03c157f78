"""Opening a drop (folder or zip) safely, and staging each CSV into DuckDB exactly once.

A zip is extracted into a private staging folder: entries with ``..``, absolute paths or symlinks are refused,
and the decompressed size is bounded (total and per-entry compression ratio), counting the bytes actually
written rather than trusting the sizes the zip declares.

Each CSV is read by DuckDB once, every field as VARCHAR, into a temp table whose ``rowid`` is the row's
position in the file. Rows DuckDB cannot split into the right number of fields land in its
``store_rejects`` table. Physical line numbers (header = 1) are then derived set-wise: DuckDB numbers
records counting blank lines but not newlines inside quoted fields, so the common case is ``rowid + 2``
and only files with rejected rows, blank lines or embedded newlines need a correction pass.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import duckdb

from etl_project.nofollow import unsafe_entries, unsafe_sentence
from etl_project.oneroster.header import HeaderProblem
from etl_project.oneroster.limits import CsvLimits, LongLine, LongLineFinder, size_text

_CHUNK = 8 << 20
_BOM = b"\xef\xbb\xbf"
_BLANK_LINE = re.compile(rb"\n(?=\r?\n)")


class DropRefused(Exception):
    """The drop as a whole cannot be used (not a folder/zip, unsafe or unreadable zip, no manifest...)."""


@dataclass(frozen=True)
class ZipLimits:
    max_total_bytes: int = 16 << 30  # decompressed size of the whole drop
    max_ratio: int = 200  # decompressed/compressed, checked for entries above ratio_min_bytes
    ratio_min_bytes: int = 1 << 20


@dataclass
class DropFiles:
    root: Path  # folder holding manifest.csv and the data files
    files: dict[str, Path]  # lower-cased file name -> path
    warnings: list[str] = field(default_factory=list)
    # links and special files beside manifest.csv (lower-cased name -> "orgs.csv is a symbolic link"): never
    # read; the drop is refused, and the other files are still checked so every problem is reported at once
    unsafe: dict[str, str] = field(default_factory=dict)


def open_drop(drop: Path, workdir: Path, limits: ZipLimits | None = None) -> DropFiles:
    """Locate the drop's CSVs; a zip is extracted safely into ``workdir`` first."""
    drop = Path(drop)
    warnings: list[str] = []
    if drop.is_dir():
        base = drop
    elif drop.is_file():
        if not zipfile.is_zipfile(drop):
            raise DropRefused(f"{drop.name} is neither a folder nor a zip archive")
        base = workdir / "unzipped"
        base.mkdir(parents=True, exist_ok=True)
        safe_extract(drop, base, limits or ZipLimits())
    else:
        raise DropRefused(f"{drop} does not exist")
    problems = unsafe_entries(base)  # links and special files anywhere: nothing behind them is read
    root = _find_root(base, warnings)
    unsafe = _unsafe_beside_manifest(base, root, problems)
    if len(unsafe) < len(problems) or "manifest.csv" in unsafe:
        raise DropRefused(unsafe_sentence("", problems))
    files: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        if path.name.lower() in unsafe or not path.is_file():
            continue
        key = path.name.lower()
        if key in files:
            raise DropRefused(f"the drop holds both {files[key].name} and {path.name}; keep only one")
        files[key] = path
    return DropFiles(root=root, files=files, warnings=warnings, unsafe=unsafe)


def _unsafe_beside_manifest(base: Path, root: Path, problems: list[str]) -> dict[str, str]:
    """The problems that name an entry of the drop's own folder, by lower-cased entry name."""
    prefix = root.relative_to(base).as_posix().removeprefix(".").strip("/")
    unsafe = {}
    for problem in problems:
        entry = problem.split(" is ", 1)[0]
        folder, _, name = entry.rpartition("/")
        if folder == prefix:
            unsafe[name.lower()] = problem
    return unsafe


def _find_root(base: Path, warnings: list[str]) -> Path:
    if any(p.is_file() and p.name.lower() == "manifest.csv" for p in base.iterdir()):
        return base
    candidates = [p.parent for p in base.rglob("*") if p.is_file() and p.name.lower() == "manifest.csv"]
    if len(candidates) == 1:
        folder = candidates[0].relative_to(base)
        warnings.append(
            f"the CSV files sit in the folder {folder.as_posix()!r} instead of the top of the drop; "
            "read from there"
        )
        return candidates[0]
    if len(candidates) > 1:
        listed = ", ".join(sorted(c.relative_to(base).as_posix() for c in candidates))
        raise DropRefused(f"the drop holds several manifest.csv files ({listed}); send one drop at a time")
    csvs = [p for p in base.rglob("*") if _plain_file(base, p) and p.suffix.lower() == ".csv"]
    if csvs:
        raise DropRefused(_no_manifest_sentence(csvs))
    raise DropRefused("the drop holds no manifest.csv and no CSV files")


def _plain_file(base: Path, path: Path) -> bool:
    """A regular file inside ``base`` reached without any link (only such files are ever read)."""
    return path.is_file() and not path.is_symlink() and path.resolve().is_relative_to(base.resolve())


# Header names that tell the OneRoster versions apart (spec: S12 §2.3 and the 1.0/1.1/1.2 column lists).
_SIGNS = {
    "1.0": {"userId", "agents", "termSourcedId", "grade", "schoolYearId", "birthdate"},
    "1.1": {"orgSourcedIds", "termSourcedIds", "schoolYear", "birthDate", "agentSourcedIds", "enabledUser"},
    "1.2": {"preferredGivenName", "primaryOrgSourcedId", "userMasterIdentifier", "pronouns", "roleType"},
}


def _no_manifest_sentence(csvs: list[Path]) -> str:
    """Say what a drop without manifest.csv looks like, and what to do about it."""
    names: set[str] = set()
    for path in csvs:
        try:
            names.update(read_header(path))
        except (HeaderProblem, NotUtf8, OSError):
            continue
    votes = {v: len(names & signs) for v, signs in _SIGNS.items()}
    files = sorted(p.name for p in csvs)
    if votes["1.1"] + votes["1.2"] > votes["1.0"]:
        version = "1.2" if votes["1.2"] else "1.1"
        rows = " / ".join(f"file.{n.removesuffix('.csv')},bulk" for n in files)
        return (
            f"no manifest.csv; the headers look like OneRoster {version}: add manifest.csv (example: "
            f"propertyName,value / manifest.version,1.0 / oneroster.version,{version} / {rows}; one "
            "file.<name> row per OneRoster file, bulk for a complete file, delta for changes only, absent "
            "for a file not sent)"
        )
    if votes["1.0"]:
        return (
            "no manifest.csv and the headers look like OneRoster 1.0 (for example "
            f"{sorted(names & _SIGNS['1.0'])[0]!r}); OneRoster 1.0 drops are not supported: export OneRoster "
            "1.1 or 1.2 instead, with its manifest.csv"
        )
    return (
        f"no manifest.csv, and no OneRoster header in {', '.join(files[:8])}"
        f"{', ...' if len(files) > 8 else ''}: export "
        "OneRoster 1.1 or 1.2 with its manifest.csv"
    )


def safe_extract(archive: Path, dest: Path, limits: ZipLimits) -> None:
    """Extract every regular file of ``archive`` under ``dest``, refusing anything that could escape it."""
    dest = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:  # check everything before writing anything
                _check_entry(info, limits)
            total = 0
            for info in infos:
                if info.is_dir():
                    continue
                target = dest.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                if not target.resolve().is_relative_to(dest):
                    raise DropRefused(
                        f"zip entry {info.filename!r} would be written outside the staging folder"
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        total += len(chunk)
                        if written > info.file_size:
                            raise DropRefused(
                                f"zip entry {info.filename!r} inflates beyond its declared size"
                            )
                        if total > limits.max_total_bytes:
                            raise DropRefused(
                                f"the zip inflates to more than {limits.max_total_bytes:,} bytes; refused"
                            )
                        out.write(chunk)
    except zipfile.BadZipFile as exc:
        raise DropRefused(f"{archive.name} is not a readable zip archive ({exc})") from None
    except (zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, OSError) as exc:
        if isinstance(exc, DropRefused):
            raise
        raise DropRefused(f"{archive.name} cannot be extracted ({exc})") from None


def _check_entry(info: zipfile.ZipInfo, limits: ZipLimits) -> None:
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise DropRefused(f"zip entry {info.filename!r} has an unsafe path (absolute or with '..'); refused")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DropRefused(f"zip entry {info.filename!r} is a symbolic link; refused")
    if info.file_size > limits.max_total_bytes:
        raise DropRefused(f"zip entry {info.filename!r} inflates to {info.file_size:,} bytes; refused")
    if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise DropRefused(
            f"zip entry {info.filename!r} has a compression ratio above {limits.max_ratio}:1 "
            "(zip bomb?); refused"
        )


# ----------------------------------------------------------------------------------------------------


class NotUtf8(Exception):
    def __init__(self, line: int, offset: int, cp1252: bool):
        self.line, self.offset, self.cp1252 = line, offset, cp1252
        hint = (
            "; the file looks like it was saved by Excel in Windows-1252: save it as 'CSV UTF-8'"
            if cp1252
            else ""
        )
        super().__init__(f"bytes that are not UTF-8 on line {line} (byte offset {offset}){hint}")


def read_header(path: Path, limits: CsvLimits | None = None, file: str | None = None) -> list[str]:
    """The header row's names (BOM stripped, surrounding spaces removed), within the header limits."""
    limits = limits or CsvLimits()
    with open(path, "rb") as f:
        head = f.read(limits.max_header_bytes + len(_BOM) + 2)
    first, newline, _ = head.partition(b"\n")
    if first.startswith(_BOM):
        first = first[3:]
    first = first.rstrip(b"\r")
    too_long = not newline and len(head) > limits.max_header_bytes + len(_BOM)
    if too_long or len(first) > limits.max_header_bytes:
        raise HeaderProblem(
            "header_too_long",
            f"{file or path.name}: the header row is longer than the limit of "
            f"{size_text(limits.max_header_bytes)}; the whole file was not loaded: the first line must be "
            "the OneRoster column names only",
        )
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotUtf8(1, exc.start + (3 if head.startswith(_BOM) else 0), _looks_cp1252(first)) from None
    names = [name.strip() for name in next(csv.reader(io.StringIO(text)), [])]
    if len(names) > limits.max_columns:
        raise HeaderProblem(
            "too_many_columns",
            f"{file or path.name}: the header has {len(names):,} columns, over the limit of "
            f"{limits.max_columns} (OneRoster's widest file has about 30 plus metadata.* extensions); the "
            "whole file was not loaded: remove the extra columns from the export",
        )
    return names


def _looks_cp1252(data: bytes) -> bool:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return any(b >= 0x80 for b in data)


def find_invalid_utf8(path: Path) -> NotUtf8 | None:
    """Locate the first byte that is not UTF-8 (only run once DuckDB has reported one)."""
    decoder_offset = 0
    line = 1
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                pos = exc.start
                bad = chunk[max(0, pos - 64) : pos + 64]
                # the decoder may have held back up to 3 bytes of the previous chunk
                line += chunk.count(b"\n", 0, max(pos, 0))
                return NotUtf8(line, decoder_offset + pos, _looks_cp1252(bad))
            line += chunk.count(b"\n")
            decoder_offset += len(chunk)
    return None


@dataclass
class FileScan:
    size: int
    newlines: int
    physical_lines: int
    blank_lines: list[int]  # physical line numbers of empty lines
    quotes: int = 0  # double quotes in the file: without any, no value can hold a newline
    ends_with_newline: bool = True
    long_lines: list[LongLine] = field(default_factory=list)  # physical lines over the line limit
    comma_ends: int = 0  # lines ending with a comma: only then can a row hold an extra empty field


def scan_file(
    path: Path, max_blank: int = 100_000, max_line_bytes: int = CsvLimits.max_line_bytes
) -> FileScan:
    """One memchr-speed pass: line count, blank-line positions (for exact line numbers), lines too long."""
    size = newlines = quotes = comma_ends = 0
    blanks: list[int] = []
    last = b""
    finder = LongLineFinder(max_line_bytes)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            window = last + chunk
            if (b"\n\n" in window or b"\n\r\n" in window) and len(blanks) < max_blank:
                base_lines = newlines - last.count(b"\n")
                for m in _BLANK_LINE.finditer(window):
                    if m.start() < len(last) - (1 if last.endswith(b"\r") else 0) - 1:
                        continue  # already seen in the previous window
                    blanks.append(base_lines + window.count(b"\n", 0, m.start() + 1) + 1)
            finder.feed(chunk, size, newlines)
            newlines += chunk.count(b"\n")
            quotes += chunk.count(b'"')
            comma_ends += (last[-1:] + chunk).count(b",\n") + (last + chunk).count(b",\r\n")
            size += len(chunk)
            last = chunk[-2:]
    ends_nl = last.endswith(b"\n")
    physical = newlines + (0 if ends_nl or size == 0 else 1)
    blanks = sorted(set(b for b in blanks if b <= physical))
    return FileScan(
        size=size,
        newlines=newlines,
        physical_lines=physical,
        blank_lines=blanks,
        quotes=quotes,
        ends_with_newline=ends_nl,
        long_lines=finder.finish(size, newlines),
        comma_ends=comma_ends,
    )


# ----------------------------------------------------------------------------------------------------


@dataclass
class Staged:
    table: str  # temp table c0..cN (raw VARCHAR), rowid = position in file
    view: str  # the same with ``_line`` (physical line number) in front
    rejects: str  # temp table: line, error_type, message, csv_line (one row per bad physical line)
    accepted: int
    rejected: int
    unaccounted: int = 0  # physical lines that are neither header, blank, read nor rejected (then not usable)


class CsvUnreadable(Exception):
    pass


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def stage_csv(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    ncols: int,
    name: str,
    scan: FileScan,
    max_line_bytes: int = CsvLimits.max_line_bytes,
) -> Staged:
    """Read the CSV once into ``<name>_raw`` and expose ``<name>`` (a view adding ``_line``).

    Every physical line must be accounted for: header, blank, inside a read or rejected record. When the
    count does not reconcile (the parser skipped something) ``unaccounted`` says by how many lines and no
    view is built.
    """
    raw, view = f"{name}_raw", name
    _read_raw(conn, path, ncols, name, max_line_bytes)
    accepted, base = conn.execute(f"SELECT count(*), coalesce(min(rowid), 0) FROM {raw}").fetchone()
    rejected = _bad_records(conn, name)
    nl_sum = " + ".join(
        f"coalesce(length(c{i}) - length(replace(c{i}, chr(10), '')), 0)" for i in range(ncols)
    )
    embedded = scan.physical_lines != 1 + accepted + rejected + len(scan.blank_lines)
    unaccounted = _unaccounted(conn, name, raw, scan, nl_sum, accepted + rejected)
    if unaccounted > 0:
        return Staged(raw, view, f"{name}_rejects", accepted, rejected, unaccounted)
    # Inside a transaction DuckDB numbers new rows from a large base; positions are rowid - base.
    pos = f"rowid - {int(base)}"
    if not rejected and not scan.blank_lines and not embedded:
        conn.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT ({pos}) + 2 AS _line, * FROM {raw}")
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {name}_rejects AS SELECT d AS line, error_type, message, csv_line "
            f"FROM {name}_rd"
        )
        return Staged(raw, view, f"{name}_rejects", accepted, rejected)
    _number_lines(conn, name, pos, scan, nl_sum if embedded else None)
    conn.execute(
        f"""CREATE OR REPLACE TEMP VIEW {view} AS
            SELECT m.line AS _line, s.* FROM {raw} s JOIN {name}_lm m ON m.rid = s.rowid"""
    )
    return Staged(raw, view, f"{name}_rejects", accepted, rejected)


def _read_raw(
    conn: duckdb.DuckDBPyConnection, path: Path, ncols: int, name: str, max_line_bytes: int
) -> None:
    """Every field as VARCHAR into ``<name>_raw``; records DuckDB cannot split go to ``<name>_rj``."""
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols)) + "}"
    try:
        conn.execute(
            f"""CREATE OR REPLACE TEMP TABLE {name}_raw AS SELECT * FROM read_csv({_lit(str(path))},
                columns={columns}, header=false, skip=1, auto_detect=false, delim=',', quote='"', escape='"',
                strict_mode=true, null_padding=false, encoding='utf-8', store_rejects=true,
                max_line_size={int(max_line_bytes) + 2},
                rejects_table='{name}_rj', rejects_scan='{name}_rs')"""
        )
    except duckdb.Error as exc:
        raise CsvUnreadable(str(exc).split("\n", 1)[0]) from None


def _bad_records(conn: duckdb.DuckDBPyConnection, name: str) -> int:
    """``<name>_rd``: one row per bad record, in DuckDB's numbering (``d``); how many there are."""
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name}_rd AS
            SELECT line::BIGINT AS d, arg_min(error_type::VARCHAR, coalesce(column_idx, -1)) AS error_type,
                   arg_min(error_message, coalesce(column_idx, -1)) AS message,
                   any_value(csv_line) AS csv_line
            FROM {name}_rj GROUP BY line"""
    )
    conn.execute(f"DROP TABLE IF EXISTS {name}_rj")
    conn.execute(f"DROP TABLE IF EXISTS {name}_rs")
    return conn.execute(f"SELECT count(*) FROM {name}_rd").fetchone()[0]


def _number_lines(
    conn: duckdb.DuckDBPyConnection, name: str, pos: str, scan: FileScan, nl_sum: str | None
) -> None:
    """``<name>_lm`` (rid -> physical line) and ``<name>_rejects`` when DuckDB's numbering has gaps:
    rejected records, blank lines and (``nl_sum`` given) newlines inside quoted fields."""
    blanks = "[" + ",".join(str(b) for b in scan.blank_lines) + "]::BIGINT[]"
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name}_gap AS
            SELECT d - 1 - i AS t, max(i) AS i FROM (
                SELECT d, row_number() OVER (ORDER BY d) AS i FROM (
                    SELECT d FROM {name}_rd UNION SELECT unnest({blanks})))
            GROUP BY ALL"""
    )
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name}_lm AS
            SELECT s.rowid AS rid, s.{pos} + 2 + coalesce(g.i, 0) AS d, {nl_sum or "0"} AS nl
            FROM {name}_raw s ASOF LEFT JOIN {name}_gap g ON s.{pos} >= g.t"""
    )
    if nl_sum is None:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {name}_lm AS SELECT rid, d AS line FROM {name}_lm")
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {name}_rejects AS SELECT d AS line, error_type, message, csv_line "
            f"FROM {name}_rd"
        )
        return
    # newlines inside quoted fields push every later record down by that many physical lines
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name}_seq AS
            SELECT rid, d, d + coalesce(sum(nl) OVER (ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING
                                                           AND 1 PRECEDING), 0) AS line
            FROM (SELECT rid, d, nl FROM {name}_lm
                  UNION ALL
                  SELECT NULL, d, length(trim(csv_line, chr(13) || chr(10)))
                                  - length(replace(trim(csv_line, chr(13) || chr(10)), chr(10), ''))
                  FROM {name}_rd)"""
    )
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {name}_lm AS SELECT rid, line FROM {name}_seq WHERE rid IS NOT NULL"
    )
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE {name}_rejects AS
            SELECT q.line, r.error_type, r.message, r.csv_line FROM {name}_rd r
            JOIN {name}_seq q ON q.rid IS NULL AND q.d = r.d"""
    )


def _unaccounted(
    conn: duckdb.DuckDBPyConnection, name: str, raw: str, scan: FileScan, nl_sum: str, records: int
) -> int:
    """Physical lines left over once header, blank lines and every record's lines are counted.

    Negative when an empty line inside a quoted value was also counted as a blank line: nothing is lost then.
    """
    left = scan.physical_lines - 1 - len(scan.blank_lines) - records
    if not scan.quotes:
        return left  # no quotes: no value holds a newline, one record per non-blank line
    inside = conn.execute(f"SELECT coalesce(sum({nl_sum}), 0) FROM {raw}").fetchone()[0]
    inside += conn.execute(
        f"""SELECT coalesce(sum(length(t) - length(replace(t, chr(10), ''))), 0)
            FROM (SELECT trim(csv_line, chr(13) || chr(10)) AS t FROM {name}_rd)"""
    ).fetchone()[0]
    return left - int(inside)


def extra_empty_field_lines(
    conn: duckdb.DuckDBPyConnection, path: Path, ncols: int, view: str, sid: str, limit: int = 10
) -> tuple[int, list[int]]:
    """(count, first lines) of rows holding one empty field more than the header.

    DuckDB's strict reader accepts such a row as if the extra field were not there, so they are found by a
    second read with one more column, matched to the staged rows by sourcedId. Only run for files where a
    line ends with a comma.
    """
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols + 1)) + "}"
    count, lines = conn.execute(
        f"""WITH extra AS (
                SELECT {sid} AS sid FROM read_csv({_lit(str(path))}, columns={columns}, header=false,
                    skip=1, auto_detect=false, delim=',', quote='"', escape='"', null_padding=false,
                    ignore_errors=true, nullstr={_lit(chr(1))}, encoding='utf-8')
                WHERE c{ncols} = '')
            SELECT count(*), list(_line ORDER BY _line)[:{int(limit)}]
            FROM {view} v SEMI JOIN extra e ON v.{sid} = e.sid"""
    ).fetchone()
    return int(count), list(lines or [])


def drop_staging(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    try:
        conn.execute(f"DROP VIEW IF EXISTS {name}")
        for suffix in ("_raw", "_rd", "_rejects", "_gap", "_lm", "_seq", "_err", "_badl"):
            conn.execute(f"DROP TABLE IF EXISTS {name}{suffix}")
    except duckdb.TransactionException:
        pass  # the transaction failed and is being rolled back: its temp tables go with it


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
