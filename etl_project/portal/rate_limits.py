"""Requests counted per key in a fixed window, in the registry so every portal process sees the same
numbers: password-reset e-mails per address and per client address.

``hit`` counts the request and says whether it is within the limit; a window older than its length starts
again from one. Rows of ended windows are purged by ``etl_project.portal.housekeeping``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, delete, select

from etl_project.portal import times
from etl_project.registry.db import Database, upsert
from etl_project.registry.tables import request_counts


@dataclass(frozen=True)
class RateLimit:
    prefix: str
    limit: int
    window: dt.timedelta = dt.timedelta(hours=1)

    def key(self, value: str) -> str:
        return f"{self.prefix}:{value}"


RESET_PER_EMAIL = RateLimit("reset-email", 3)
RESET_PER_ADDRESS = RateLimit("reset-address", 10)
LONGEST_WINDOW = max(RESET_PER_EMAIL.window, RESET_PER_ADDRESS.window)


class RateLimits:
    def __init__(self, db: Database):
        self._db = db

    def hit(self, rule: RateLimit, value: str) -> bool:
        """Count one request for ``value``; True while the window's count is within ``rule.limit``."""
        now = times.now()
        key, expired = rule.key(value), times.iso(now - rule.window)
        old = request_counts.c.window_started_at <= expired
        restart = {
            "hits": case((old, 1), else_=request_counts.c.hits + 1),
            "window_started_at": case((old, times.iso(now)), else_=request_counts.c.window_started_at),
        }
        with self._db.transaction() as conn:
            insert = upsert(conn, request_counts).values(key=key, window_started_at=times.iso(now), hits=1)
            conn.execute(insert.on_conflict_do_update(index_elements=[request_counts.c.key], set_=restart))
            hits = conn.execute(select(request_counts.c.hits).where(request_counts.c.key == key)).scalar_one()
        return hits <= rule.limit

    def purge_ended(self) -> int:
        """Forget counts whose window ended; the number of rows deleted."""
        ended = times.iso(times.now() - LONGEST_WINDOW)
        with self._db.transaction() as conn:
            stale = request_counts.c.window_started_at <= ended
            return conn.execute(delete(request_counts).where(stale)).rowcount
