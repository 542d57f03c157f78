"""Why a record was kept out of the LMS: its rejects in the warehouse, each with its reason and fix."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from etl_project.lms.schema import entity as entity_def
from etl_project.oneroster.spec import SPECS
from etl_project.reports.hints import hint_for


def kept_out(conn: duckdb.DuckDBPyConnection, entity: str, sourced_id: str) -> list[dict[str, Any]]:
    """Why the record was kept out of the LMS: its rejects (file, line, column, code, reason, fix) in the
    newest night that rejected it, or the whole-file reject of its file on a newer night."""
    files = [s.file for s in SPECS if s.table == entity_def(entity).source]
    marks = ", ".join("?" for _ in files)
    rows = conn.execute(
        f"""WITH mine AS (
                SELECT _date, file, line, "column", code, message FROM oneroster.rejects
                WHERE file IN ({marks}) AND ("sourcedId" = ? OR line IS NULL))
            SELECT _date, file, line, "column", code, message FROM mine
            WHERE _date = (SELECT max(_date) FROM mine)
            ORDER BY line NULLS FIRST, "column\"""",
        [*files, sourced_id],
    ).fetchall()
    out = []
    for date, file, line, column, code, message in rows:
        hint = hint_for(code, column, message)
        night = date.isoformat() if isinstance(date, dt.date) else date
        out.append({"date": night, "file": file, "line": line, "column": column, "code": code,
                    "message": message, "reason": hint.reason, "fix": hint.fix})  # fmt: skip
    return out
