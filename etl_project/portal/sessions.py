"""Server-side sessions: the cookie holds a random token, the registry its SHA-256, the account, the stage
(``mfa`` until an operator's TOTP code, then ``full``) and the idle and absolute expiry.

A new token is made at every sign-in step (no fixation: a token set before sign-in is never promoted);
signing out deletes the row; signing out everywhere deletes every row of the account.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from etl_project.portal import times
from etl_project.portal.tokens import derived, new_token, token_hash
from etl_project.registry.db import Database
from etl_project.registry.tables import sessions

MFA = "mfa"
FULL = "full"


@dataclass(frozen=True)
class SessionPolicy:
    idle: dt.timedelta = dt.timedelta(minutes=30)
    absolute: dt.timedelta = dt.timedelta(hours=12)
    mfa: dt.timedelta = dt.timedelta(minutes=10)  # between the password and the TOTP code


@dataclass(frozen=True)
class Session:
    token: str
    account: str
    stage: str

    @property
    def csrf(self) -> str:
        """The session's synchronizer token, put in every form (not the session token itself)."""
        return derived(self.token, "csrf")


class Sessions:
    def __init__(self, db: Database, policy: SessionPolicy = SessionPolicy()):
        self._db, self.policy = db, policy

    def start(self, account: str, stage: str, ip: str | None) -> Session:
        now, token = times.now(), new_token()
        lifetime = self.policy.mfa if stage == MFA else self.policy.absolute
        values = {"token_hash": token_hash(token), "account": account, "stage": stage, "ip": ip}
        values |= {"created_at": times.iso(now), "last_seen_at": times.iso(now)}
        values["expires_at"] = times.iso(now + lifetime)
        with self._db.transaction() as conn:
            conn.execute(sessions.insert().values(values))
        return Session(token, account, stage)

    def find(self, token: str) -> Session | None:
        """The live session of ``token`` (its idle clock restarted), or None when unknown or expired."""
        now = times.now()
        idle_since = times.iso(now - self.policy.idle)
        live = (
            (sessions.c.token_hash == token_hash(token))
            & (sessions.c.expires_at > times.iso(now))
            & (sessions.c.last_seen_at > idle_since)
        )
        with self._db.transaction() as conn:
            row = conn.execute(select(sessions.c.account, sessions.c.stage).where(live)).first()
            if row is None:
                return None
            conn.execute(update(sessions).where(live).values(last_seen_at=times.iso(now)))
        return Session(token, row[0], row[1])

    def end(self, token: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash(token)))

    def end_all(self, account: str) -> int:
        """Sign the account out everywhere; the number of sessions ended."""
        with self._db.transaction() as conn:
            return conn.execute(delete(sessions).where(sessions.c.account == account)).rowcount

    def purge_expired(self) -> int:
        """Delete ended sessions (absolute or idle expiry); the number deleted."""
        now = times.now()
        stale = (sessions.c.expires_at <= times.iso(now)) | (
            sessions.c.last_seen_at <= times.iso(now - self.policy.idle)
        )
        with self._db.transaction() as conn:
            return conn.execute(delete(sessions).where(stale)).rowcount
