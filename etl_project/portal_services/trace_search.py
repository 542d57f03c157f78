"""Trace search: a sourcedId or a name -> the matching records -> one record's full history.

Matches come from the district's archived nights (etl_project/night_tables.py; DuckDB, set-based,
bounded): users by sourcedId or a given/family name prefix, classes by sourcedId or title prefix, in the
newest night that has the table, plus rejected rows with that sourcedId (a record kept out of the LMS is
found too). A record's history is the LMS ledger (``lms.history.trace``: file, line, night of every change)
and, when it was held or rejected, why (``lms.history.kept_out``)."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb

from etl_project.archive.base import Archive
from etl_project.lms.backend import LmsBackend
from etl_project.lms.history import trace
from etl_project.night_readers import READERS
from etl_project.registry.nights import NightStates
from etl_project.reports.build import has_tables
from etl_project.reports.kept_out import kept_out
from etl_project.warehouse import WarehouseResource

SEARCH_LIMIT = 25
MIN_NAME_CHARS = 2
# LMS entity -> (warehouse table, the label, the columns a name matches)
SEARCHED = {
    "users": ("users", """concat_ws(' ', "givenName", "familyName")""", ('"givenName"', '"familyName"')),
    "sections": ("classes", "title", ("title",)),
}
_REJECT_FILES = {"users": "users.csv", "sections": "classes.csv"}
_KEYS = ("entity", "sourced_id", "label", "night", "found")
# ILIKE wildcards: a name query holding one is not a name (and a pattern with ESCAPE loses the prefix range)
_WILDCARDS = frozenset("%_\\")


def _newest(table: str) -> str:
    return f"_date = (SELECT max(_date) FROM oneroster.{table})"


def _by_id_sql(limit: int) -> str:
    """Exact sourcedId in each entity's newest night, and in the rejected rows of any night."""
    loaded = [
        f"""SELECT '{entity}' AS entity, "sourcedId", {label} AS label, _date, 'loaded' AS found
            FROM oneroster.{table} WHERE {_newest(table)} AND "sourcedId" = $id"""
        for entity, (table, label, _) in SEARCHED.items()
    ]
    files = ", ".join(f"('{f}', '{e}')" for e, f in _REJECT_FILES.items())
    rejected = f"""SELECT m.entity, r."sourcedId", NULL AS label, r._date, 'rejected' AS found
                   FROM oneroster.rejects r JOIN (VALUES {files}) m(file, entity) USING (file)
                   WHERE r."sourcedId" = $id"""
    return f"""SELECT entity, "sourcedId", any_value(label), max(_date)::VARCHAR,
                      list(DISTINCT found ORDER BY found)
               FROM ({" UNION ALL ".join([*loaded, rejected])}) GROUP BY entity, "sourcedId"
               ORDER BY entity DESC, "sourcedId" LIMIT {int(limit)}"""


def _name_branches(text: str, limit: int) -> tuple[list[str], dict[str, str]]:
    """One bounded query per name column (``column ILIKE 'prefix%'``, which DuckDB turns into a range
    filter inside the scan), plus given + family name when the query has two words."""
    params = {"prefix": f"{text}%"}
    branches = [
        (entity, table, label, f"{column} ILIKE $prefix")
        for entity, (table, label, columns) in SEARCHED.items()
        for column in columns
    ]
    first, _, rest = text.partition(" ")
    if rest.strip():
        params |= {"first": f"{first}%", "rest": f"{rest.strip()}%"}
        branches.append(("users", "users", SEARCHED["users"][1],
                         '"givenName" ILIKE $first AND "familyName" ILIKE $rest'))  # fmt: skip
    sql = [
        f"""(SELECT '{entity}' AS entity, "sourcedId", {label} AS label, _date FROM oneroster.{table}
             WHERE {_newest(table)} AND {match} LIMIT {int(limit)})"""
        for entity, table, label, match in branches
    ]
    return sql, params


def find_records(
    conn: duckdb.DuckDBPyConnection, query: str, limit: int = SEARCH_LIMIT
) -> list[dict[str, Any]]:
    """Records matching ``query``: an exact sourcedId (loaded or rejected); else names starting with it
    (given or family name, both as "given family", a class title; case-insensitive, at least two
    characters). Every branch is one set-based query with its own LIMIT, so a common name costs as much as
    a rare one; no per-row Python."""
    text = query.strip()
    if not text or not has_tables(conn):
        return []
    rows = conn.execute(_by_id_sql(limit), {"id": text}).fetchall()
    if not rows and len(text) >= MIN_NAME_CHARS and not _WILDCARDS & set(text):
        branches, params = _name_branches(text, limit)
        sql = f"""SELECT entity, "sourcedId", label, _date::VARCHAR, ['loaded']
                  FROM ({" UNION ".join(branches)}) ORDER BY label, "sourcedId" LIMIT {int(limit)}"""
        rows = conn.execute(sql, params).fetchall()
    return [dict(zip(_KEYS, row, strict=True)) for row in rows]


def search(warehouse: WarehouseResource, archive: Archive, district: str, query: str) -> list[dict[str, Any]]:
    with READERS.read(warehouse, archive, district) as conn:
        return find_records(conn, query)


def record_history(
    warehouse: WarehouseResource,
    archive: Archive,
    backend: LmsBackend | None,
    states: NightStates,
    district: str,
    entity: str,
    sourced_id: str,
) -> dict[str, Any]:
    """One record's changes (newest first) and, when it is held or rejected, why it is kept out."""
    if entity not in SEARCHED:
        raise KeyError(f"unknown entity {entity!r}: one of {', '.join(SEARCHED)}")
    changes = trace(backend, district, entity, sourced_id) if backend is not None else []
    for change in changes:
        change["file"] = file_name(change.pop("file_uri"))
        change["changes"] = change_lines(change["changes"])
    newest = states.latest(district)
    kept: list[dict[str, Any]] = []
    if not changes or (newest and not newest.state.lms_changed):
        with READERS.read(warehouse, archive, district) as conn:
            kept = kept_out(conn, entity, sourced_id)
    return {
        "entity": entity,
        "sourced_id": sourced_id,
        "changes": changes,
        "kept_out": kept,
        "night": newest.as_dict() if newest else None,
    }


def file_name(uri: str | None) -> str:
    """The file's name only (``users.csv``): the archive's path on our server or its bucket is never shown."""
    if not uri:
        return ""
    return PurePosixPath(unquote(urlsplit(uri).path)).name


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    return value if isinstance(value, str) else json.dumps(value)


def change_lines(changes: Any) -> list[str]:
    """A ledger row's changes as ``field: before → after`` lines (a created row's before is empty)."""
    if not isinstance(changes, dict):
        return [] if changes in (None, "") else [_shown(changes)]
    return [
        f"{field}: {_shown(v.get('before'))} → {_shown(v.get('after'))}"
        if isinstance(v, dict)
        else f"{field}: {_shown(v)}"
        for field, v in changes.items()
    ]
