"""The LMS database behind one interface: PostgreSQL (production) or an embedded SQLite file.

``LMS_URL`` chooses which (etl_project/lms/connect.py). A URL may hold a password: only :func:`mask_url`
forms are ever printed or put in metadata.

A :class:`LmsSession` is one transaction on one district. Writing sessions hold the district's lock for the
whole transaction (PostgreSQL: a transaction-scoped advisory lock, so two runs of one district serialize
while different districts run in parallel; SQLite: the database write lock). Leaving the ``with`` block
normally commits (or, for read-only sessions, rolls back); an exception rolls everything back.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from etl_project.lms.schema import Entity
from etl_project.urls import mask_url


class LmsConfigError(ValueError):
    pass


class LmsSession(ABC):
    dialect: str
    district: str

    def table(self, name: str) -> str:
        return f"lms.{name}" if self.dialect == "postgres" else name

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def dump_current(self, entity: Entity, path: Path) -> None:
        """Write the district's rows of ``entity`` as header-less CSV: id, sourced_id, active, row_hash."""

    def discard_staged(self) -> None:  # noqa: B027 (optional hook)
        """Drop what a failed load of the district staged outside its transaction (see load_beside)."""

    def holds_rows(self, entity: Entity) -> bool:
        """Whether the LMS holds any row of ``entity`` for the district (if not, tonight is its first)."""
        table = self.table(entity.name)
        return bool(
            self.query(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE district = %s)", [self.district])[0][0]
        )

    @abstractmethod
    def dump_values(self, entity: Entity, path: Path, ids_table: str) -> None:
        """Write the district's rows of ``entity`` whose id is in ``ids_table`` as header-less CSV: id,
        fields..."""

    def current_values(
        self, duck: duckdb.DuckDBPyConnection, entity: Entity, ids_select: str, scratch: Path
    ) -> Path:
        """The full current values (:meth:`dump_values`) of the rows whose ids a DuckDB query selects."""
        stage = self.staging(f"_lms_ids_{entity.name}", self.table(entity.name), ["id"])
        self.load(duck, ids_select, stage, ["id"])
        self.analyze(stage)
        path = scratch / f"{entity.name}-values.csv"
        self.dump_values(entity, path, stage)
        return path

    @contextlib.contextmanager
    def current_rows(self, entities: Sequence[Entity], scratch: Path) -> Iterator[Callable[[Entity], Path]]:
        """A function giving the CSV file (:meth:`dump_current`) of each of ``entities``, asked for in that
        order; a backend may dump them ahead while the caller works on the earlier ones."""

        def dumped(entity: Entity) -> Path:
            path = scratch / f"{entity.name}.csv"
            self.dump_current(entity, path)
            return path

        yield dumped

    def bulk_target(self, table: str) -> str:
        """The table to bulk-load the district's new rows of ``table`` into (a backend may stage a district's
        first load in a new table that it publishes at commit)."""
        return table

    def load_beside(
        self, duck: duckdb.DuckDBPyConnection, selects: Sequence[str], table: str, columns: Sequence[str]
    ) -> None:
        """Bulk-insert the rows of DuckDB queries into ``table(columns)``, visible from this session's commit
        on. Here, at once; a backend may load them on a second connection while the session goes on, to be
        published by :meth:`finish`."""
        target = self.bulk_target(table)
        for select in selects:
            self.load(duck, select, target, columns)

    def finish(self) -> None:  # noqa: B027 (optional hook)
        """Called once the session's writes are done, just before commit."""

    @abstractmethod
    def reserve(self, sequence: str, n: int) -> int:
        """Reserve ``n`` consecutive ids of ``sequence`` (lms_ids / ledger_ids); returns the first."""

    @abstractmethod
    def load(self, duck: duckdb.DuckDBPyConnection, select: str, table: str, columns: Sequence[str]) -> int:
        """Bulk-insert the rows of a DuckDB query into ``table(columns)``; returns the row count."""

    @abstractmethod
    def analyze(self, table: str) -> None:
        """Refresh the planner's statistics of a just-filled staging table."""

    @abstractmethod
    def staging(self, name: str, like: str, columns: Sequence[str]) -> str:
        """A fresh temp table with ``columns`` of ``like``, dropped at the end of the transaction."""


class LmsBackend(ABC):
    url: str

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    @abstractmethod
    def ensure_schema(self) -> None: ...

    @abstractmethod
    @contextlib.contextmanager
    def session(self, district: str, *, write: bool = True) -> Iterator[LmsSession]: ...
