"""One-time links: invitations, password resets and the first operator's setup link.

The link carries a random token; the table keeps its SHA-256, the purpose, who it is for and when it
expires. Using it (``consume``) marks it used in the same statement that checks it, so it works once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update

from etl_project.portal import times
from etl_project.portal.accounts import Role, normal_email
from etl_project.portal.tokens import new_token, token_hash
from etl_project.registry.db import Database
from etl_project.registry.tables import invitations


class Purpose(StrEnum):
    INVITE = "invite"
    RESET = "reset"
    SETUP = "setup"


LIFETIME = {
    Purpose.INVITE: dt.timedelta(days=7),
    Purpose.RESET: dt.timedelta(hours=1),
    Purpose.SETUP: dt.timedelta(hours=24),
}


@dataclass(frozen=True)
class Link:
    purpose: Purpose
    email: str
    role: Role
    district: str | None
    invited_by: str | None
    expires_at: str


_COLUMNS = (
    invitations.c.purpose,
    invitations.c.email,
    invitations.c.role,
    invitations.c.district,
    invitations.c.invited_by,
    invitations.c.expires_at,
)


def _link(row) -> Link:
    purpose, email, role, district, invited_by, expires_at = row
    return Link(Purpose(purpose), email, Role(role), district, invited_by, expires_at)


class Links:
    def __init__(self, db: Database):
        self._db = db

    def create(
        self,
        purpose: Purpose,
        email: str,
        role: Role,
        district: str | None,
        invited_by: str | None = None,
        lifetime: dt.timedelta | None = None,
    ) -> str:
        """A new link's token (shown or sent once, never stored). Earlier unused links of the same purpose
        for the same e-mail stop working."""
        now, token, email = times.now(), new_token(), normal_email(email)
        expires = now + (LIFETIME[purpose] if lifetime is None else lifetime)
        values = {"token_hash": token_hash(token), "purpose": str(purpose), "email": email, "role": str(role)}
        values |= {"district": district, "invited_by": invited_by}
        values |= {"created_at": times.iso(now), "expires_at": times.iso(expires)}
        with self._db.transaction() as conn:
            conn.execute(self._pending(purpose, email).values(used_at=times.iso(now)))
            conn.execute(invitations.insert().values(values))
        return token

    @staticmethod
    def _pending(purpose: Purpose, email: str):
        return update(invitations).where(
            (invitations.c.purpose == str(purpose))
            & (invitations.c.email == email)
            & invitations.c.used_at.is_(None)
        )

    @staticmethod
    def _valid(token: str):
        return (
            (invitations.c.token_hash == token_hash(token))
            & invitations.c.used_at.is_(None)
            & (invitations.c.expires_at > times.iso(times.now()))
        )

    def peek(self, token: str) -> Link | None:
        """The link if it is unused and unexpired (to show its form), without using it."""
        with self._db.transaction() as conn:
            row = conn.execute(select(*_COLUMNS).where(self._valid(token))).first()
        return _link(row) if row else None

    def consume(self, token: str) -> Link | None:
        """Use the link: it is returned once, and never again."""
        with self._db.transaction() as conn:
            used = conn.execute(
                update(invitations).where(self._valid(token)).values(used_at=times.iso(times.now()))
            )
            if used.rowcount != 1:
                return None
            row = conn.execute(select(*_COLUMNS).where(invitations.c.token_hash == token_hash(token))).one()
        return _link(row)
