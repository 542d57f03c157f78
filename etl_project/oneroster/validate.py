"""Validation rules as SQL over a staged file (raw VARCHAR columns ``c0..cN`` plus ``_line``).

All per-row checks of a file run in one scan: the WHERE clause ORs the failure conditions (cheap,
evaluated for every row) and only the failing rows build their list of error structs. Duplicate
sourcedIds and references are separate set operations (group-by and hash anti-joins).
Nothing is checked per row in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from etl_project.oneroster.spec import (
    BOOL,
    DATE,
    DATETIME,
    ENUM,
    REF,
    REFLIST,
    STATUS,
    STATUSES,
    YEAR,
    Column,
)

DATETIME_RE = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?))?"
)


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def shown(x: str) -> str:
    """SQL for the value as the message shows it: JSON-quoted, so spaces and quotes are visible."""
    return f"to_json({x})::VARCHAR"


@dataclass(frozen=True)
class Check:
    column: str
    code: str
    condition: str  # SQL, true when the row fails
    message: str  # SQL expression (VARCHAR)


def is_date(x: str) -> str:
    return f"(length({x}) = 10 AND {x}[5] = '-' AND {x}[8] = '-' AND try_cast({x} AS DATE) IS NOT NULL)"


def datetime_value(x: str) -> str:
    """Typed TIMESTAMPTZ for a checked value; a date-only value means midnight UTC."""
    return (
        f"CASE WHEN {x} IS NULL THEN NULL "
        f"WHEN length({x}) = 10 THEN CAST({x} || 'T00:00:00Z' AS TIMESTAMPTZ) "
        f"ELSE CAST({x} AS TIMESTAMPTZ) END"
    )


def is_datetime(x: str) -> str:
    return (
        f"(regexp_full_match({x}, {lit(DATETIME_RE)}) AND "
        f"try_cast(CASE WHEN length({x}) = 10 THEN {x} || 'T00:00:00Z' ELSE {x} END AS TIMESTAMPTZ) "
        "IS NOT NULL)"
    )


_SLASHED = r"^\s*([0-9]{1,2})/([0-9]{1,2})/([0-9]{2,4})\b"


def slash_hint(x: str, datetime: bool = False) -> str:
    """SQL for what a slashed date certainly is: a first part above 12 is a day (day/month/year), a second
    part above 12 is a day (month/day/year); otherwise it is ambiguous and no rewrite is proposed."""
    a, b, y = (f"regexp_extract({x}, {lit(_SLASHED)}, {i})" for i in (1, 2, 3))
    first, second = f"try_cast({a} AS INTEGER)", f"try_cast({b} AS INTEGER)"
    iso_dm = f"try_cast({y} || '-' || lpad({b}, 2, '0') || '-' || lpad({a}, 2, '0') AS DATE)"
    iso_md = f"try_cast({y} || '-' || lpad({a}, 2, '0') || '-' || lpad({b}, 2, '0') AS DATE)"
    verb = "the date is" if datetime else "write"
    return f"""CASE
        WHEN NOT regexp_matches({x}, {lit(_SLASHED)}) THEN ''
        WHEN {first} > 12 AND {second} > 12
            THEN ' (neither day/month/year nor month/day/year: check the value)'
        WHEN {first} > 12 AND length({y}) = 4 AND {iso_dm} IS NOT NULL
            THEN ' (day/month/year: {verb} ' || strftime({iso_dm}, '%Y-%m-%d') || ')'
        WHEN {second} > 12 AND length({y}) = 4 AND {iso_md} IS NOT NULL
            THEN ' (month/day/year: {verb} ' || strftime({iso_md}, '%Y-%m-%d') || ')'
        WHEN {first} > 12 OR {second} > 12 THEN ' (no such date: check the value in the SIS)'
        ELSE ' (ambiguous: it could be month/day/year or day/month/year; write YYYY-MM-DD from the SIS, '
             || 'do not guess)' END"""


def allowed_values(col: Column) -> tuple[str, ...]:
    return STATUSES if col.kind == STATUS else col.values


def value_check(col: Column, x: str, file: str) -> Check | None:
    """The type/vocabulary check of one column (NULL values pass; ``required`` is checked separately)."""
    name = col.name
    if col.kind in (ENUM, STATUS):
        values = allowed_values(col)
        cond = f"({x} IS NOT NULL AND lower({x}) NOT IN ({', '.join(lit(v.lower()) for v in values)})"
        if col.extensible:
            cond += f" AND NOT starts_with({x}, 'ext:')"
        cond += ")"
        expected = ", ".join(values)
        return Check(
            name,
            "invalid_enum",
            cond,
            f"{shown(x)} || ' is not a valid {name} (expected one of: {expected})'",
        )
    if col.kind == BOOL:
        return Check(
            name,
            "bad_boolean",
            f"({x} IS NOT NULL AND lower({x}) NOT IN ('true', 'false'))",
            f"{shown(x)} || ' is not a valid {name}: use true or false'",
        )
    if col.kind == DATE:
        return Check(
            name,
            "bad_date",
            f"({x} IS NOT NULL AND NOT {is_date(x)})",
            f"{shown(x)} || ' is not a valid {name}: dates must be written YYYY-MM-DD' || {slash_hint(x)}",
        )
    if col.kind == DATETIME:
        return Check(
            name,
            "bad_datetime",
            f"({x} IS NOT NULL AND NOT {is_datetime(x)})",
            f"{shown(x)} || ' is not a valid {name}: use ISO 8601 such as 2023-05-01T18:25:43.511Z'"
            f" || {slash_hint(x, datetime=True)}",
        )
    if col.kind == YEAR:
        return Check(
            name,
            "bad_year",
            f"({x} IS NOT NULL AND NOT (length({x}) = 4 AND try_cast({x} AS INTEGER) IS NOT NULL))",
            f"{shown(x)} || ' is not a valid {name}: write a four-digit year such as 2024'",
        )
    return None


def required_check(col: Column, x: str) -> Check:
    return Check(col.name, "required_missing", f"({x} IS NULL)", f"'{col.name} is required but empty'")


def field_size_check(name: str, x: str, limit: int, limit_text: str) -> Check:
    """A value longer than the field limit (bytes); the message gives its size, never the value."""
    return Check(
        name,
        "field_too_long",
        f"(strlen({x}) > {int(limit)})",
        f"'the value is ' || format('{{:,}}', strlen({x})) || ' bytes long, over the limit of {limit_text} "
        "per value; the row was not loaded'",
    )


def row_errors_sql(view: str, target: str, checks: list[Check], sid: str, raw: str) -> str:
    """One scan of the staged file: every failing row, with one error per failed check, into ``target``."""
    structs = ", ".join(
        f"CASE WHEN {c.condition} THEN {{'column': {lit(c.column)}, 'code': {lit(c.code)}, "
        f"'message': {c.message}}} END"
        for c in checks
    )
    where = " OR ".join(c.condition for c in checks)
    return f"""INSERT INTO {target}
        SELECT _line AS line, e['column'] AS "column", e['code'] AS code, e['message'] AS message,
               sid AS "sourcedId", raw
        FROM (SELECT _line, sid, raw, unnest(errs) AS e FROM (
                SELECT _line, {sid} AS sid, {raw} AS raw,
                       list_filter([{structs}], lambda x: x IS NOT NULL) AS errs
                FROM {view} WHERE {where}))"""


def empty_errors_sql(target: str) -> str:
    return f"""CREATE OR REPLACE TEMP TABLE {target} (line BIGINT, "column" VARCHAR, code VARCHAR,
        message VARCHAR, "sourcedId" VARCHAR, raw VARCHAR)"""


def duplicates_sql(view: str, target: str, sid: str, raw: str) -> str:
    """Every occurrence of a repeated sourcedId is rejected; the message names the other lines."""
    return f"""INSERT INTO {target}
        WITH dup AS (SELECT {sid} AS sid FROM {view} WHERE {sid} IS NOT NULL GROUP BY 1 HAVING count(*) > 1),
             occ AS (SELECT _line, {sid} AS sid, {raw} AS raw FROM {view} SEMI JOIN dup ON {sid} = dup.sid),
             lines AS (SELECT sid, list(_line ORDER BY _line) AS ls FROM occ GROUP BY sid)
        SELECT o._line, 'sourcedId', 'duplicate_sourced_id',
               'sourcedId ' || {shown("o.sid")} || ' appears more than once; also on line(s) '
                 || array_to_string(list_filter(l.ls[:21], lambda x: x <> o._line), ', ')
                 || CASE WHEN len(l.ls) > 21 THEN ' and others' ELSE '' END,
               o.sid, o.raw
        FROM occ o JOIN lines l USING (sid)"""


def grade_zero_check(col: Column, x: str) -> Check:
    """Grades such as 7 that lost their leading zero (CEDS codes are 07): kept, reported as a warning."""
    items = split_list(x)
    fixed = (
        f"list_transform({items}, lambda g: CASE WHEN regexp_full_match(g, '[1-9]') THEN '0' || g ELSE g END)"
    )
    return Check(
        col.name,
        "grade_without_zero",
        f"({x} IS NOT NULL AND len(list_filter({items}, lambda g: regexp_full_match(g, '[1-9]'))) > 0)",
        f"{shown(x)} || ' should be written ' || to_json(array_to_string({fixed}, ','))::VARCHAR"
        " || ' (grade codes are two characters: 01 ... 12); kept as sent'",
    )


def user_ids_check(col: Column, x: str) -> Check:
    """userIds items not written {type:id}: kept, reported as a warning."""
    items = split_list(x)
    ok = r"\{[^{}:]+:[^{}]*\}"
    inner = "trim(s, '{}')"
    braced = (
        f"CASE WHEN contains(s, ':') THEN '{{' || {inner} || '}}' ELSE '{{<type>:' || {inner} || '}}' END"
    )
    keep = f"regexp_full_match(s, {lit(ok)})"
    fixed = f"list_transform({items}, lambda s: CASE WHEN {keep} THEN s ELSE {braced} END)"
    return Check(
        col.name,
        "user_ids_form",
        f"({x} IS NOT NULL AND len(list_filter({items}, lambda s: NOT regexp_full_match(s, {lit(ok)}))) > 0)",
        f"{shown(x)} || ' is not in the {{type:id}} form; write ' || array_to_string({fixed}, ',')"
        " || ' (kept as sent)'",
    )


def held_reference_sql(view: str, target: str, col: Column, x: str, sid: str, raw: str, why: str) -> str:
    """Every row with a value in ``col`` is held: the file it refers to was rejected or is missing."""
    held = lit(f" cannot be checked: {why}; the row is held until that file loads")
    return f"""INSERT INTO {target}
        SELECT _line, {lit(col.name)}, 'parent_rejected', {lit(col.name)} || ' ' || {shown(x)} || {held},
               {sid}, {raw}
        FROM {view} WHERE {x} IS NOT NULL"""


def split_list(x: str) -> str:
    return (
        f"CASE WHEN {x} IS NULL THEN NULL ELSE "
        f"list_filter(list_transform(string_split({x}, ','), lambda s: trim(s)), lambda s: s <> '') END"
    )


def reference_sql(
    view: str, target: str, col: Column, x: str, sid: str, raw: str, ok: str, bad: str, ref_file: str
) -> str:
    """Rows whose required reference is not an accepted row of the referenced file (hash anti-join).

    The anti-join runs on (line, reference) alone; the row's id and raw JSON are built only for the few
    lines that miss, never for the millions that match.
    """
    if col.kind == REFLIST:
        refs = f"(SELECT _line, unnest({split_list(x)}) AS ref FROM {view})"
    else:
        assert col.kind in (REF, "id")
        refs = f"(SELECT _line, {x} AS ref FROM {view} WHERE {x} IS NOT NULL)"
    return f"""INSERT INTO {target}
        WITH miss AS MATERIALIZED (
            SELECT s._line, s.ref FROM {refs} s ANTI JOIN {ok} o ON s.ref = o.sourcedId)
        SELECT m._line, {lit(col.name)},
               CASE WHEN b.sourcedId IS NULL THEN 'unknown_reference' ELSE 'parent_rejected' END,
               CASE WHEN b.sourcedId IS NULL
                    THEN {lit(col.name)} || ' ' || {shown("m.ref")} || ' does not exist in {ref_file}'
                    ELSE {lit(col.name)} || ' ' || {shown("m.ref")}
                         || ' refers to a row of {ref_file} that was itself rejected'
                         || ' (line ' || b.line || ')' END,
               v.sid, v.raw
        FROM miss m
        JOIN (SELECT _line, {sid} AS sid, {raw} AS raw FROM {view}
              WHERE _line IN (SELECT _line FROM miss)) v ON v._line = m._line
        LEFT JOIN {bad} b ON b.sourcedId = m.ref"""
