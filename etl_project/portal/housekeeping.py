"""Purging what the portal no longer needs from the registry: ended sessions, used or expired one-time
links, sign-in failures past their lockout and forget time, request counts of ended windows.

Run when the portal starts and then from sign-in and password-reset requests, at most once per
``interval`` in a process (``due``), so a portal nobody uses does no work and no timer thread is needed.
Every purge is one set-based DELETE per table; several processes purging at once is harmless.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

from sqlalchemy import delete

from etl_project.portal import times
from etl_project.portal.rate_limits import RateLimits
from etl_project.portal.sessions import Sessions
from etl_project.portal.throttle import Throttle
from etl_project.registry.db import Database
from etl_project.registry.tables import invitations, sign_in_attempts


@dataclass(frozen=True)
class Purged:
    sessions: int
    links: int
    sign_in_attempts: int
    request_counts: int


class Housekeeping:
    def __init__(
        self,
        db: Database,
        sessions: Sessions,
        throttle: Throttle,
        rate_limits: RateLimits,
        interval: dt.timedelta = dt.timedelta(minutes=10),
    ):
        self._db, self._sessions, self._throttle, self._rate_limits = db, sessions, throttle, rate_limits
        self.interval = interval
        self._last: float | None = None
        self._lock = threading.Lock()

    def due(self) -> Purged | None:
        """``run`` when it has not run in this process within ``interval`` (None: not due)."""
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last < self.interval.total_seconds():
                return None
            self._last = now
        return self.run()

    def run(self) -> Purged:
        now = times.now()
        dead_link = invitations.c.used_at.is_not(None) | (invitations.c.expires_at <= times.iso(now))
        forgotten = times.iso(now - self._throttle.policy.forget)
        old_failure = (sign_in_attempts.c.last_failure_at <= forgotten) & (
            sign_in_attempts.c.locked_until.is_(None) | (sign_in_attempts.c.locked_until <= times.iso(now))
        )
        with self._db.transaction() as conn:
            links = conn.execute(delete(invitations).where(dead_link)).rowcount
            failures = conn.execute(delete(sign_in_attempts).where(old_failure)).rowcount
        return Purged(self._sessions.purge_expired(), links, failures, self._rate_limits.purge_ended())
