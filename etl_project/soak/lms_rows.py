"""A district's LMS rows as one fingerprint per entity, comparable between an SQLite and a PostgreSQL LMS.

Rows are read by OneRoster id with every mapped field and ``active`` (not the LMS's own ids or timestamps,
which differ between two LMSs by construction), normalized to text, sorted and hashed.
"""

from __future__ import annotations

import hashlib

from etl_project.lms import LmsBackend
from etl_project.lms.schema import ENTITIES


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def fingerprint(backend: LmsBackend, district: str) -> dict[str, str]:
    """``{entity: "<rows>:<sha256>"}`` of the district's rows in the LMS."""
    out = {}
    with backend.session(district, write=False) as session:
        for entity in ENTITIES:
            columns = ", ".join(["sourced_id", "active", *entity.field_names])
            rows = session.query(
                f"SELECT {columns} FROM {session.table(entity.name)} WHERE district = %s", [district]
            )
            lines = sorted("\x1f".join(_text(v) for v in row) for row in rows)
            digest = hashlib.sha256("\x1e".join(lines).encode()).hexdigest()[:16]
            out[entity.name] = f"{len(lines)}:{digest}"
    return out
