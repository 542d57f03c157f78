"""The normalized ``oneroster`` schema and the typed SELECT that fills an entity table from a staged file."""

from __future__ import annotations

import duckdb

from etl_project.oneroster.spec import (
    BOOL,
    DATE,
    DATETIME,
    ENUM,
    LIST,
    REFLIST,
    SPECS,
    SQL_TYPES,
    STATUS,
    YEAR,
    TableSpec,
)
from etl_project.oneroster.validate import datetime_value, lit, split_list

SCHEMA = "oneroster"

FILES_DDL = f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.files (
    _date DATE, file VARCHAR, "table" VARCHAR, mode VARCHAR, status VARCHAR, rows BIGINT, accepted BIGINT,
    rejected BIGINT, size BIGINT, sha256 VARCHAR, uri VARCHAR, version_id VARCHAR, error VARCHAR)"""

REJECTS_DDL = f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.rejects (
    _date DATE, district VARCHAR, file VARCHAR, line BIGINT, "column" VARCHAR, code VARCHAR, message VARCHAR,
    "sourcedId" VARCHAR, raw VARCHAR)"""


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_ddl(spec: TableSpec) -> str:
    cols = ", ".join(f"{q(c.name)} {SQL_TYPES[c.kind]}" for c in spec.stored_columns)
    return (
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{spec.table} (_date DATE, _line BIGINT, {cols}, metadata JSON)"
    )


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    conn.execute(FILES_DDL)
    conn.execute(REJECTS_DDL)
    for spec in SPECS:
        conn.execute(table_ddl(spec))


def typed(kind: str, x: str, values: tuple[str, ...] = ()) -> str:
    """SQL turning a checked raw VARCHAR into the column's stored type and spelling."""
    if kind == STATUS:
        return (
            f"CASE lower({x}) WHEN 'active' THEN 'active' WHEN 'tobedeleted' THEN 'tobedeleted' "
            f"WHEN 'inactive' THEN 'tobedeleted' END"
        )
    if kind == DATETIME:
        return datetime_value(x)
    if kind == DATE:
        return f"CAST({x} AS DATE)"
    if kind == BOOL:
        return f"CASE lower({x}) WHEN 'true' THEN true WHEN 'false' THEN false END"
    if kind == YEAR:
        return f"CAST({x} AS INTEGER)"
    if kind == ENUM:
        whens = " ".join(f"WHEN {lit(v.lower())} THEN {lit(v)}" for v in values)
        return f"CASE lower({x}) {whens} ELSE {x} END"
    if kind in (LIST, REFLIST):
        return split_list(x)
    return x


def metadata_expr(metadata: list[tuple[str, str]]) -> str:
    """JSON object of the ``metadata.*`` (and unknown) columns; NULL when none or all empty."""
    if not metadata:
        return "NULL::JSON"
    pairs = ", ".join(f"{lit(key)}, {x}" for key, x in metadata)
    all_null = " AND ".join(f"{x} IS NULL" for _, x in metadata)
    return f"CASE WHEN {all_null} THEN NULL ELSE json_object({pairs}) END"


def insert_sql(
    spec: TableSpec,
    view: str,
    mapping: dict[str, str],
    metadata: list[tuple[str, str]],
    date: str,
    bad_lines: str | None,
) -> str:
    exprs = []
    for col in spec.stored_columns:
        x = mapping.get(col.name)
        exprs.append("NULL" if x is None else typed(col.kind, x, col.values))
    source = (
        view if bad_lines is None else f"(SELECT * FROM {view} s ANTI JOIN {bad_lines} b ON s._line = b.line)"
    )
    return (
        f"INSERT INTO {SCHEMA}.{spec.table} SELECT DATE {lit(date)}, _line, {', '.join(exprs)}, "
        f"{metadata_expr(metadata)} FROM {source}"
    )
