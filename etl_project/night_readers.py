"""Open night readers kept between requests by a long-lived reader process (the portal).

Opening :func:`etl_project.night_tables.open_nights` costs tens of milliseconds whatever the query: a DuckDB
database, the schema, and a view per table whose Parquet footers DuckDB reads to bind it. A portal request
(trace search, a record's history, the dashboard) then spends more time opening than querying. This keeps
the reader of each (district, nights) open and hands every request its own cursor (DuckDB cursors of one
database are safe to use from concurrent threads). Each request still reads the archive's index: a reader
opened against another index (a night synced or rebuilt since) is replaced, so a request never sees
nights older than the archive's. At most ``limit`` readers stay open; the least recently used is closed
once no request uses it.
Runs do not use this: each step opens and closes its own reader.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator

import duckdb

from etl_project.archive.base import Archive
from etl_project.night_tables import NightsReader, open_nights, read_index
from etl_project.warehouse import WarehouseResource

Key = tuple[str, str, tuple[str, ...] | None]


class _Shared:
    """A reader and the requests using it: closed once it is retired and the last request is done
    (closing a DuckDB connection ends its cursors)."""

    def __init__(self, reader: NightsReader) -> None:
        self.reader = reader
        self.users = 0
        self.retired = False

    def close_if_unused(self) -> None:
        if self.retired and self.users == 0:
            self.reader.close()


class NightReaders:
    def __init__(self, limit: int = 4) -> None:
        self._limit = limit
        self._open: OrderedDict[Key, _Shared] = OrderedDict()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def read(
        self,
        warehouse: WarehouseResource,
        archive: Archive,
        district: str,
        nights: Iterable[str] | None = None,
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor over the district's archived nights, as :func:`etl_project.night_tables.read_nights`."""
        key: Key = (str(warehouse.root), district, tuple(sorted(nights)) if nights is not None else None)
        index = read_index(archive, district)
        with self._lock:
            shared = self._open.get(key)
            if shared is None or not _current(shared.reader, index):
                if shared is not None:
                    self._retire(key)
                shared = _Shared(open_nights(warehouse, archive, district, nights, index))
                self._open[key] = shared
            self._open.move_to_end(key)
            while len(self._open) > self._limit:
                self._retire(next(iter(self._open)))
            shared.users += 1
            cursor = shared.reader.conn.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            with self._lock:
                shared.users -= 1
                shared.close_if_unused()

    def close(self) -> None:
        with self._lock:
            for key in list(self._open):
                self._retire(key)

    def _retire(self, key: Key) -> None:
        shared = self._open.pop(key)
        shared.retired = True
        shared.close_if_unused()


def _current(reader: NightsReader, index: dict[str, str]) -> bool:
    """Whether ``reader`` was opened against ``index`` (it may also know nights the index missed)."""
    return all(reader.index.get(night) == sha for night, sha in index.items())


#: the readers of this process (the portal's request threads share them)
READERS = NightReaders()
