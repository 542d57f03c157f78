"""Sign-in throttling, counted in the registry so every portal process sees the same numbers.

Failures are counted per account (``account:<email>``) and per address (``address:<ip>``). After a few free
failures each further one locks the key for an exponentially longer time, capped (``ThrottlePolicy.cap``):
a lockout always ends by itself, and a password reset by e-mail clears the account's count, so an attacker
guessing a real admin's password can slow them down but never lock them out for good. Counts older than
``forget`` start again from zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select

from etl_project.portal import times
from etl_project.registry.db import Database, upsert
from etl_project.registry.tables import sign_in_attempts


@dataclass(frozen=True)
class ThrottlePolicy:
    free_per_account: int = 5
    free_per_address: int = 20
    base: dt.timedelta = dt.timedelta(seconds=30)
    cap: dt.timedelta = dt.timedelta(minutes=15)
    forget: dt.timedelta = dt.timedelta(hours=24)

    def lock_for(self, failures: int, free: int) -> dt.timedelta:
        if failures < free:
            return dt.timedelta(0)
        return min(self.base * 2 ** min(failures - free, 20), self.cap)


def account_key(email: str) -> str:
    return f"account:{email.strip().lower()}"


def address_key(ip: str) -> str:
    return f"address:{ip}"


class Throttle:
    def __init__(self, db: Database, policy: ThrottlePolicy = ThrottlePolicy()):
        self._db, self.policy = db, policy

    def wait(self, keys: list[str]) -> dt.timedelta:
        """How long until a sign-in for these keys is considered again (zero: now)."""
        now = times.now()
        query = select(sign_in_attempts.c.locked_until).where(sign_in_attempts.c.key.in_(keys))
        with self._db.transaction() as conn:
            until = [r[0] for r in conn.execute(query) if r[0]]
        longest = max((times.parse(u) - now for u in until), default=dt.timedelta(0))
        return max(longest, dt.timedelta(0))

    def failed(self, key: str, free: int) -> None:
        now = times.now()
        with self._db.transaction() as conn:
            row = conn.execute(
                select(sign_in_attempts.c.failures, sign_in_attempts.c.last_failure_at).where(
                    sign_in_attempts.c.key == key
                )
            ).first()
            recent = row is not None and times.parse(row[1]) > now - self.policy.forget
            failures = (row[0] if recent else 0) + 1
            lock = self.policy.lock_for(failures, free)
            values = {"key": key, "failures": failures, "last_failure_at": times.iso(now)}
            values["locked_until"] = times.iso(now + lock) if lock else None
            insert = upsert(conn, sign_in_attempts).values(values)
            changed = {c: insert.excluded[c] for c in values if c != "key"}
            conn.execute(insert.on_conflict_do_update(index_elements=[sign_in_attempts.c.key], set_=changed))

    def failed_sign_in(self, email: str, ip: str) -> None:
        self.failed(account_key(email), self.policy.free_per_account)
        self.failed(address_key(ip), self.policy.free_per_address)

    def clear(self, key: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(delete(sign_in_attempts).where(sign_in_attempts.c.key == key))
