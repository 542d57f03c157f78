"""Accounts in the registry: who may sign in, as what, for which district.

An account is an ``operator`` (every district) or a ``district_admin`` (one district). It signs in with a
password (argon2id hash) and, for operators, a TOTP code; ``identities`` is where single sign-on subjects
will be linked, so an account may later have no password at all. The TOTP secret is stored as a token of
the registry's SecretBox (``ETL_PROJECT_SECRET_KEY``), bound to the account id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from etl_project.portal import times
from etl_project.portal.passwords import hash_password, verify_password
from etl_project.portal.tokens import new_id
from etl_project.registry.crypto import CredentialDecryptError, SecretBox
from etl_project.registry.db import Database
from etl_project.registry.tables import accounts


class Role(StrEnum):
    OPERATOR = "operator"
    DISTRICT_ADMIN = "district_admin"


class AccountExists(Exception):
    pass


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    role: Role
    district: str | None
    has_password: bool
    totp_enrolled: bool
    disabled: bool

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


_COLUMNS = (
    accounts.c.id,
    accounts.c.email,
    accounts.c.role,
    accounts.c.district,
    accounts.c.password_hash.is_not(None),
    accounts.c.totp_last_step.is_not(None),
    accounts.c.disabled,
)


def _account(row) -> Account:
    aid, email, role, district, has_password, enrolled, disabled = row
    return Account(aid, email, Role(role), district, bool(has_password), bool(enrolled), bool(disabled))


def normal_email(email: str) -> str:
    return email.strip().lower()


class Accounts:
    def __init__(self, db: Database, box: SecretBox):
        self._db, self._box = db, box

    def create(self, email: str, role: Role, district: str | None) -> Account:
        if (role is Role.DISTRICT_ADMIN) != bool(district):
            raise ValueError("a district admin has exactly one district; an operator has none")
        stamp = times.iso(times.now())
        values = {"id": new_id(), "email": normal_email(email), "role": str(role), "district": district}
        values |= {"disabled": 0, "created_at": stamp, "updated_at": stamp}
        try:
            with self._db.transaction() as conn:
                conn.execute(accounts.insert().values(values))
        except IntegrityError:
            raise AccountExists(f"an account for {values['email']} exists already") from None
        return self.by_id(values["id"])  # type: ignore[return-value]

    def _one(self, where) -> Account | None:
        with self._db.transaction() as conn:
            row = conn.execute(select(*_COLUMNS).where(where)).first()
        return _account(row) if row else None

    def by_id(self, account_id: str) -> Account | None:
        return self._one(accounts.c.id == account_id)

    def by_email(self, email: str) -> Account | None:
        return self._one(accounts.c.email == normal_email(email))

    def operators(self) -> list[Account]:
        with self._db.transaction() as conn:
            rows = conn.execute(select(*_COLUMNS).where(accounts.c.role == str(Role.OPERATOR))).all()
        return [_account(r) for r in rows]

    def check_password(self, email: str, password: str) -> Account | None:
        """The enabled account with this e-mail and password, else None (same work whichever is wrong)."""
        with self._db.transaction() as conn:
            where = accounts.c.email == normal_email(email)
            row = conn.execute(select(*_COLUMNS, accounts.c.password_hash).where(where)).first()
        ok = verify_password(row[-1] if row else None, password)
        return _account(row[:-1]) if ok and row and not row[6] else None

    def _update(self, account_id: str, **values) -> None:
        values["updated_at"] = times.iso(times.now())
        with self._db.transaction() as conn:
            conn.execute(update(accounts).where(accounts.c.id == account_id).values(values))

    def set_password(self, account_id: str, password: str) -> None:
        self._update(
            account_id, password_hash=hash_password(password), password_changed_at=times.iso(times.now())
        )

    def set_disabled(self, account_id: str, disabled: bool) -> None:
        self._update(account_id, disabled=int(disabled))

    def start_totp_enrolment(self, account_id: str, secret: str) -> None:
        """Store a new TOTP secret, not yet confirmed (``totp_enrolled`` stays False until a code matches)."""
        sealed = self._box.encrypt(json.dumps({"account": account_id, "totp": secret}).encode())
        self._update(account_id, totp_secret=sealed, totp_last_step=None)

    def totp_state(self, account_id: str) -> tuple[str | None, int | None]:
        """(the decrypted TOTP secret or None, the newest accepted step)."""
        query = select(accounts.c.totp_secret, accounts.c.totp_last_step).where(accounts.c.id == account_id)
        with self._db.transaction() as conn:
            sealed, step = conn.execute(query).one()
        if sealed is None:
            return None, step
        payload = json.loads(self._box.decrypt(sealed, "the account's TOTP secret"))
        if payload.get("account") != account_id:
            raise CredentialDecryptError("the stored TOTP secret belongs to another account")
        return payload["totp"], step

    def accept_totp_step(self, account_id: str, step: int) -> bool:
        """Record ``step`` as used; False when it (or a newer one) was used already (a replayed code)."""
        newer = accounts.c.totp_last_step.is_(None) | (accounts.c.totp_last_step < step)
        with self._db.transaction() as conn:
            query = update(accounts).where((accounts.c.id == account_id) & newer).values(totp_last_step=step)
            return conn.execute(query).rowcount == 1
