"""Embedded LMS backend: one SQLite file, same schema and semantics as PostgreSQL, no server.

A writing session is ``BEGIN IMMEDIATE``: it holds the database's write lock for the whole transaction, so
runs serialize (districts included; the embedded default is for one machine and the demo).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from etl_project.engines import sqlite_engine
from etl_project.files import private_file
from etl_project.lms.backend import LmsBackend, LmsSession
from etl_project.lms.schema import BOOL, Entity
from etl_project.lms.schema_version import upgrade
from etl_project.partitions import validate_district_id

sqlite3.register_adapter(dt.date, lambda d: d.isoformat())
sqlite3.register_adapter(dt.datetime, lambda d: d.isoformat(sep=" "))
_BATCH = 50_000
# What psycopg gives meaning to in a statement with parameters (``%s``, ``%%``), and the quoted literals,
# quoted identifiers and comments where a ``%s`` is text, not a placeholder.
_PIECES = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|%%|%s")


def _piece(match: re.Match[str]) -> str:
    text = match.group()
    if text == "%s":
        return "?"
    return text.replace("%%", "%")  # psycopg reads "%%" as "%" everywhere, quoted or not


def sqlite_statement(statement: str, params: Sequence[Any]) -> str:
    """``statement`` written for psycopg (``%s`` placeholders; ``%%`` a percent sign when there are
    parameters) as SQLite runs the same: its placeholders become ``?``; quoted text is kept as written."""
    return _PIECES.sub(_piece, statement) if params else statement


def _bool_text(column: str) -> str:
    return f"CASE {column} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END"


class SqliteSession(LmsSession):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, district: str):
        self.conn, self.district = conn, district
        self._temps: list[str] = []

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sqlite_statement(statement, params), tuple(params))

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sqlite_statement(statement, params), tuple(params)).fetchall()

    def dump_current(self, entity: Entity, path: Path) -> None:
        cols = f"id, sourced_id, {_bool_text('active')}, row_hash"
        self._dump(f"SELECT {cols} FROM {entity.name} WHERE district = ?", path)

    def dump_values(self, entity: Entity, path: Path, ids_table: str) -> None:
        cols = ", ".join(
            _bool_text(f"t.{f.name}") if f.kind == BOOL else f"t.{f.name}" for f in entity.fields
        )
        self._dump(
            f"SELECT t.id, {cols} FROM {entity.name} t JOIN temp.{ids_table} s ON s.id = t.id "
            "WHERE t.district = ?",
            path,
        )

    def _dump(self, query: str, path: Path) -> None:
        cursor = self.conn.execute(query, (self.district,))
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            while rows := cursor.fetchmany(_BATCH):
                writer.writerows(rows)

    def reserve(self, sequence: str, n: int) -> int:
        if n <= 0:
            return 0
        last = self.conn.execute(
            """INSERT INTO lms_sequences (name, last) VALUES (?, ?)
               ON CONFLICT (name) DO UPDATE SET last = last + excluded.last RETURNING last""",
            (sequence, n),
        ).fetchone()[0]
        return int(last) - n + 1

    def load(self, duck: duckdb.DuckDBPyConnection, select: str, table: str, columns: Sequence[str]) -> int:
        result = duck.execute(select)
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        total = 0
        while rows := result.fetchmany(_BATCH):
            self.conn.executemany(insert, rows)
            total += len(rows)
        return total

    def analyze(self, table: str) -> None:
        pass  # the UPDATE ... FROM goes through the entity table's id index whatever the stage's size

    def staging(self, name: str, like: str, columns: Sequence[str]) -> str:
        self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
        self.conn.execute(f"CREATE TEMP TABLE {name} AS SELECT {', '.join(columns)} FROM {like} LIMIT 0")
        self._temps.append(name)
        return name

    def drop_temps(self) -> None:
        for name in self._temps:
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
        self._temps.clear()


class SqliteBackend(LmsBackend):
    def __init__(self, url: str):
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///")).expanduser()
        if not url.startswith("sqlite:////"):  # sqlite:///relative/path
            self.path = Path(url.removeprefix("sqlite:///"))
        self._schema_ready = False

    def connect(self) -> sqlite3.Connection:
        private_file(self.path)  # 0600: SQLite gives its -wal and -shm files the same mode
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=600)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        upgrade(sqlite_engine(self.path, timeout=600))  # the file is created 0600, as by connect()
        self._schema_ready = True

    @contextlib.contextmanager
    def session(self, district: str, *, write: bool = True) -> Iterator[SqliteSession]:
        validate_district_id(district)
        self.ensure_schema()
        conn = self.connect()
        session = SqliteSession(conn, district)
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield session
                session.drop_temps()
                conn.execute("COMMIT" if write else "ROLLBACK")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
