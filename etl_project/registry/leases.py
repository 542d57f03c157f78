"""Registry-wide locks with an expiry ("leases"): one holder per name across every process that shares the
registry database, on SQLite and PostgreSQL alike (one row per name; taking it is one upsert that only
overwrites an expired row).

A holder that crashes never blocks the others for longer than its ``ttl``: its row expires. Used by Sync
now and Release so that two portal processes deciding "is there a run already? if not, start one" for the
same district-night take turns, and the second finds the first one's run.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, select

from etl_project.registry.db import Database, upsert
from etl_project.registry.tables import leases

POLL_SECONDS = 0.1


class LeaseBusy(Exception):
    """Another process held the lease for longer than we were willing to wait (one sentence)."""


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


class Leases:
    def __init__(self, db: Database):
        self._db = db

    def acquire(self, name: str, ttl: dt.timedelta) -> str | None:
        """Take the lease ``name`` for ``ttl`` if it is free or expired: the holder token, else None."""
        now, holder = dt.datetime.now(dt.UTC), secrets.token_hex(16)
        with self._db.transaction() as conn:
            insert = upsert(conn, leases).values(name=name, holder=holder, expires_at=_iso(now + ttl))
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[leases.c.name],
                    set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
                    where=leases.c.expires_at <= _iso(now),
                )
            )
            current = conn.execute(select(leases.c.holder).where(leases.c.name == name)).scalar_one()
        return holder if current == holder else None

    def release(self, name: str, holder: str) -> None:
        """Give the lease back (only if ``holder`` still holds it)."""
        with self._db.transaction() as conn:
            conn.execute(delete(leases).where((leases.c.name == name) & (leases.c.holder == holder)))

    @contextmanager
    def held(
        self,
        name: str,
        ttl: dt.timedelta = dt.timedelta(minutes=2),
        wait: dt.timedelta = dt.timedelta(seconds=30),
    ) -> Iterator[None]:
        """Hold ``name`` for the block, waiting up to ``wait`` for another holder to give it back."""
        deadline = time.monotonic() + wait.total_seconds()
        while (holder := self.acquire(name, ttl)) is None:
            if time.monotonic() >= deadline:
                raise LeaseBusy(f"{name} is busy in another process: try again in a minute")
            time.sleep(POLL_SECONDS)  # another process holds it for the length of one decision
        try:
            yield
        finally:
            self.release(name, holder)
