"""Data-quality rules over the LMS after a night was applied (PostgreSQL or SQLite, one district).

* ``required_fields``: active rows whose fields mapped from *required* OneRoster columns are empty.
* ``references_resolve``: active rows whose parent (a section's course and school, an enrollment's section
  and user) is missing or deactivated in the LMS — what an LMS shows as an orphan.
* ``usernames_unique`` (users): active users of the district sharing a username, which an LMS login cannot
  tell apart (OneRoster does not forbid it, so the ingest lets it through).

The SQL is the same for both dialects (``%s`` placeholders; SQLite sessions translate them).
"""

from __future__ import annotations

from etl_project.checks.rules import ERROR, SAMPLE, WARN, Finding
from etl_project.lms.backend import LmsBackend, LmsSession
from etl_project.lms.schema import ENTITIES, Entity
from etl_project.oneroster.spec import BY_TABLE

RULE_DESCRIPTIONS = {
    "required_fields": "Active LMS rows have every field that comes from a required OneRoster column.",
    "references_resolve": "Every active row's parent exists and is active in the LMS (no orphaned sections "
    "or enrollments).",
    "usernames_unique": "No two active users of the district share a username (an LMS login could not "
    "tell them apart). WARN.",
}


def required_fields(entity: Entity) -> list[str]:
    """LMS fields whose every OneRoster source column is required (in every OneRoster version)."""
    out = []
    for f in entity.fields:
        cols = [s.split(".", 1) for s in f.sources]
        if all(
            (c := next((c for c in BY_TABLE[t].columns if c.name == name), None)) is not None
            and c.required
            and c.required_in is None
            for t, name in cols
        ):
            out.append(f.name)
    return out


def checks_for(entity: Entity) -> list[str]:
    names = []
    if required_fields(entity):
        names.append("required_fields")
    if entity.parents:
        names.append("references_resolve")
    if entity.name == "users":
        names.append("usernames_unique")
    return names


def _count_and_sample(s: LmsSession, sql: str, params: list) -> tuple[int, list[dict]]:
    n = s.query(f"SELECT count(*) FROM ({sql}) q", params)[0][0]
    rows = s.query(f"SELECT * FROM ({sql}) q ORDER BY 1 LIMIT {SAMPLE}", params) if n else []
    return n, [{"sourced_id": r[0], "detail": r[1]} for r in rows]


def _required(s: LmsSession, entity: Entity) -> Finding:
    fields = required_fields(entity)
    empty = " OR ".join(f"{f} IS NULL" for f in fields)
    which = " ".join(f"WHEN {f} IS NULL THEN '{f} is empty'" for f in fields)
    sql = (
        f"SELECT sourced_id, CASE {which} END AS detail FROM {s.table(entity.name)} "
        f"WHERE district = %s AND active AND ({empty})"
    )
    n, sample = _count_and_sample(s, sql, [s.district])
    text = f"{n} active {entity.name} with an empty required field" if n else "every required field filled"
    return Finding(entity.name, "required_fields", not n, ERROR, text, n, {"fields": fields}, sample)


def _references(s: LmsSession, entity: Entity) -> Finding:
    selects = []
    for column, parent in entity.parents:
        selects.append(
            f"SELECT c.sourced_id, '{column} ' || c.{column} || ' is not an active {parent} row' AS detail "
            f"FROM {s.table(entity.name)} c WHERE c.district = %s AND c.active AND c.{column} IS NOT NULL "
            f"AND NOT EXISTS (SELECT 1 FROM {s.table(parent)} p WHERE p.district = c.district "
            f"AND p.sourced_id = c.{column} AND p.active)"
        )
    sql = " UNION ALL ".join(selects)
    n, sample = _count_and_sample(s, sql, [s.district] * len(selects))
    parents = ", ".join(f"{c} -> {p}" for c, p in entity.parents)
    text = (
        f"{n} active {entity.name} point at a missing or inactive parent" if n else f"{parents}: all resolve"
    )
    return Finding(entity.name, "references_resolve", not n, ERROR, text, n, {"references": parents}, sample)


def _usernames(s: LmsSession) -> Finding:
    sql = (
        f"SELECT min(sourced_id) AS sourced_id, 'username shared by ' || count(*) || ' active users' "
        f"AS detail FROM {s.table('users')} WHERE district = %s AND active AND username IS NOT NULL "
        "GROUP BY username HAVING count(*) > 1"
    )
    n, sample = _count_and_sample(s, sql, [s.district])
    text = f"{n} username(s) shared by more than one active user" if n else "every active username is unique"
    return Finding("users", "usernames_unique", not n, WARN, text, n, {}, sample)


def evaluate_lms(backend: LmsBackend, district: str) -> list[Finding]:
    """Every LMS rule for ``district`` (read-only session)."""
    findings: list[Finding] = []
    with backend.session(district, write=False) as s:
        for entity in ENTITIES:
            for check in checks_for(entity):
                if check == "required_fields":
                    findings.append(_required(s, entity))
                elif check == "references_resolve":
                    findings.append(_references(s, entity))
                else:
                    findings.append(_usernames(s))
    return findings
