"""OneRoster -> LMS: one SELECT per entity over the night's ``oneroster`` tables, with provenance.

The field expressions live next to the schema (etl_project/lms/schema.py, ``Field.expr``); this module turns
them into SQL and exposes column-level lineage as data.
"""

from __future__ import annotations

from etl_project.lms.schema import DUCKDB_TYPES, ENTITIES, Entity
from etl_project.partitions import validate_night


def source_sql(entity: Entity, date: str, only: str | None = None) -> str:
    """The night's rows for ``entity``: sourced_id, desired active flag, mapped fields, provenance; with
    ``only`` (a query of sourcedIds), just those rows (filtered before they are mapped)."""
    validate_night(date)
    fields = ",\n       ".join(f"CAST({f.expr} AS {DUCKDB_TYPES[f.kind]}) AS {f.name}" for f in entity.fields)
    where = f"t._date = DATE '{date}'" + (f" AND {entity.where}" if entity.where else "")
    where += f' AND t."sourcedId" IN ({only})' if only else ""
    return f"""SELECT t."sourcedId" AS sourced_id,
       coalesce(t.status, 'active') <> 'tobedeleted' AS desired_active,
       {fields},
       f.uri AS file_uri, f.version_id AS file_version, t._line AS line, f.sha256 AS file_sha256
FROM oneroster.{entity.source} t
LEFT JOIN (SELECT * FROM oneroster.files WHERE _date = DATE '{date}' AND "table" = '{entity.source}'
           AND file IS NOT NULL LIMIT 1) f ON true
{entity.joins.format(date=date)}
WHERE {where}"""


def column_lineage() -> dict[str, dict[str, list[tuple[str, str]]]]:
    """entity -> LMS column -> [(OneRoster table, column)], for ``dagster/column_lineage``."""
    out: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for e in ENTITIES:
        cols: dict[str, list[tuple[str, str]]] = {"sourced_id": [(e.source, "sourcedId")]}
        cols["active"] = [(e.source, "status")]
        for f in e.fields:
            cols[f.name] = [tuple(s.split(".", 1)) for s in f.sources]  # type: ignore[misc]
        out[e.name] = cols
    return out
