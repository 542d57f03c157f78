"""The portal's audit log: who did what, when, from where, for which district; never a secret.

``detail`` holds short facts (counts, names, e-mail addresses, outcomes). Keys that name a secret are refused
outright, so a caller cannot put a password or token there by mistake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select

from etl_project.portal import times
from etl_project.portal.accounts import Account
from etl_project.registry.db import Database
from etl_project.registry.tables import audit_log

_SECRET_WORDS = ("password", "secret", "token", "totp", "code", "key", "cookie")


@dataclass(frozen=True)
class AuditEntry:
    at: str
    email: str | None
    district: str | None
    action: str
    ip: str | None
    detail: Mapping[str, Any]


def _check(detail: Mapping[str, Any]) -> None:
    bad = [k for k in detail if any(word in k.lower() for word in _SECRET_WORDS)]
    if bad:
        raise ValueError(f"audit detail keys {bad} name secrets; record facts about them instead")


class AuditLog:
    def __init__(self, db: Database):
        self._db = db

    def record(
        self,
        action: str,
        *,
        account: Account | None = None,
        email: str | None = None,
        district: str | None = None,
        ip: str | None = None,
        **detail: Any,
    ) -> None:
        _check(detail)
        values = {"at": times.iso(times.now()), "action": action, "ip": ip, "district": district}
        values |= {"account": account.id if account else None, "email": account.email if account else email}
        values["detail"] = json.dumps(detail, sort_keys=True, default=str)
        with self._db.transaction() as conn:
            conn.execute(insert(audit_log).values(values))

    def entries(
        self, district: str | None = None, limit: int = 200, action: str | None = None
    ) -> list[AuditEntry]:
        """Newest first; only ``district``'s entries when given (a district admin's view), only ``action``'s
        when given."""
        columns = (audit_log.c[n] for n in ("at", "email", "district", "action", "ip", "detail"))
        query = select(*columns).order_by(audit_log.c.id.desc()).limit(limit)
        if district is not None:
            query = query.where(audit_log.c.district == district)
        if action is not None:
            query = query.where(audit_log.c.action == action)
        with self._db.transaction() as conn:
            rows = conn.execute(query).all()
        return [AuditEntry(*r[:5], json.loads(r[5])) for r in rows]
