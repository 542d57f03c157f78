"""The reference LMS schema: what an LMS needs from a roster, for PostgreSQL and (the same shape) SQLite.

Entity tables — ``schools``, ``terms``, ``courses``, ``sections``, ``users``, ``enrollments`` — each hold::

    id             the LMS's own id (never reused; allocated from the ``lms_ids`` sequence)
    district       the district id (PostgreSQL: the LIST partition key, one partition per district)
    sourced_id     the OneRoster sourcedId, unique within the district: with ``id`` this IS the id map
    <mapped fields> (see etl_project/lms/mapping.py for where each comes from)
    active         false once deactivated: users disabled, enrollments ended, sections/courses/schools/terms
                   deactivated. Rows are never deleted, so a student's history survives.
    row_hash       hash of the mapped fields as the sync last wrote them (NULL after an edit made in the LMS)
    deactivated_at, created_at, updated_at

``id_map`` is a view (district, entity, sourced_id, lms_id) over the entity tables. ``sync_runs`` holds one
row per district-night attempt (state applied | held | released | failed, counts, who released it and why,
the run's ledger id range). The ``change_ledger`` view has one row per created / updated / deactivated /
reactivated record with the changed fields (before/after; for a created record, its after-values as one
object) and provenance (archived file URI + version, line, SHA-256); it is stored as ``change_entries`` (one
narrow row per record) + ``change_sources`` (one row per night and file) + ``sync_runs``. The schema is
made by the migrations in ``lms/migrations`` (docs/migrations.md); :func:`ddl` states it as the code uses it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

TEXT, DATE, BOOL, INT = "text", "date", "bool", "int"

_PG = {TEXT: "TEXT", DATE: "DATE", BOOL: "BOOLEAN", INT: "INTEGER"}
_SQLITE = {TEXT: "TEXT", DATE: "TEXT", BOOL: "INTEGER", INT: "INTEGER"}
DUCKDB_TYPES = {TEXT: "VARCHAR", DATE: "DATE", BOOL: "BOOLEAN", INT: "INTEGER"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    expr: str  # DuckDB SQL over the OneRoster table aliased ``t`` (see mapping.py)
    sources: tuple[str, ...]  # OneRoster "table.column" this field is derived from (column lineage)


@dataclass(frozen=True)
class Entity:
    name: str  # LMS table
    source: str  # OneRoster table
    fields: tuple[Field, ...]
    parents: tuple[tuple[str, str], ...] = ()  # (field holding a parent's sourced id, parent entity)
    where: str = ""  # extra filter on the OneRoster table
    joins: str = ""  # extra joins (``{date}`` is the night)
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


def _t(kind: str, column: str, table: str) -> Field:
    """A field copied from one OneRoster column (empty strings read as NULL)."""
    return Field(_snake(column), kind, _norm(kind, f't."{column}"'), (f"{table}.{column}",))


def _list(name: str, column: str, table: str) -> Field:
    expr = f"nullif(array_to_string(t.\"{column}\", ','), '')"
    return Field(name, TEXT, expr, (f"{table}.{column}",))


def _norm(kind: str, x: str) -> str:
    return f"nullif(trim({x}), '')" if kind == TEXT else x


def _snake(name: str) -> str:
    """A OneRoster column name in snake case: ``parentSourcedId`` -> ``parent_sourced_id``."""
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


_ROLES = """LEFT JOIN (
    SELECT "userSourcedId" AS user_sid,
           arg_min("role", CASE WHEN "roleType" = 'primary' THEN 0 ELSE 1 END) AS role,
           list_sort(list_distinct(list("orgSourcedId"))) AS orgs
    FROM oneroster.roles WHERE _date = DATE '{date}' AND coalesce(status, 'active') = 'active'
    GROUP BY 1) r ON r.user_sid = t."sourcedId\""""

ENTITIES: tuple[Entity, ...] = (
    Entity(
        "schools",
        "orgs",
        (
            _t(TEXT, "name", "orgs"),
            _t(TEXT, "identifier", "orgs"),
            Field("district_sourced_id", TEXT, _norm(TEXT, 't."parentSourcedId"'), ("orgs.parentSourcedId",)),
        ),
        where="t.type = 'school'",
        description="Schools (orgs.csv rows of type school).",
    ),
    Entity(
        "terms",
        "academic_sessions",
        (
            _t(TEXT, "title", "academic_sessions"),
            _t(TEXT, "type", "academic_sessions"),
            _t(DATE, "startDate", "academic_sessions"),
            _t(DATE, "endDate", "academic_sessions"),
            _t(TEXT, "parentSourcedId", "academic_sessions"),
            _t(INT, "schoolYear", "academic_sessions"),
        ),
        description="School years, terms and grading periods (academicSessions.csv).",
    ),
    Entity(
        "courses",
        "courses",
        (
            _t(TEXT, "title", "courses"),
            _t(TEXT, "courseCode", "courses"),
            _list("grades", "grades", "courses"),
            _t(TEXT, "orgSourcedId", "courses"),
            _t(TEXT, "schoolYearSourcedId", "courses"),
            _list("subjects", "subjects", "courses"),
        ),
        description="Courses (courses.csv).",
    ),
    Entity(
        "sections",
        "classes",
        (
            _t(TEXT, "title", "classes"),
            _t(TEXT, "classCode", "classes"),
            _t(TEXT, "classType", "classes"),
            _t(TEXT, "location", "classes"),
            _t(TEXT, "courseSourcedId", "classes"),
            _t(TEXT, "schoolSourcedId", "classes"),
            _list("term_sourced_ids", "termSourcedIds", "classes"),
            _list("periods", "periods", "classes"),
            _list("grades", "grades", "classes"),
        ),
        parents=(("course_sourced_id", "courses"), ("school_sourced_id", "schools")),
        description="Class sections (classes.csv).",
    ),
    Entity(
        "users",
        "users",
        (
            _t(TEXT, "username", "users"),
            _t(TEXT, "givenName", "users"),
            _t(TEXT, "familyName", "users"),
            _t(TEXT, "middleName", "users"),
            _t(TEXT, "preferredGivenName", "users"),
            _t(TEXT, "preferredFamilyName", "users"),
            _t(TEXT, "email", "users"),
            Field("role", TEXT, "coalesce(t.role, r.role)", ("users.role", "roles.role")),
            _t(TEXT, "identifier", "users"),
            _list("grades", "grades", "users"),
            Field(
                "org_sourced_ids",
                TEXT,
                "nullif(array_to_string(coalesce(t.\"orgSourcedIds\", r.orgs), ','), '')",
                ("users.orgSourcedIds", "roles.orgSourcedId"),
            ),
            _t(TEXT, "primaryOrgSourcedId", "users"),
            Field("enabled", BOOL, 'coalesce(t."enabledUser", true)', ("users.enabledUser",)),
        ),
        joins=_ROLES,
        description="Students, teachers, staff and guardians (users.csv; OneRoster 1.2 roles.csv for role "
        "and orgs). A deactivated user is disabled.",
    ),
    Entity(
        "enrollments",
        "enrollments",
        (
            Field("section_sourced_id", TEXT, 't."classSourcedId"', ("enrollments.classSourcedId",)),
            _t(TEXT, "userSourcedId", "enrollments"),
            _t(TEXT, "schoolSourcedId", "enrollments"),
            _t(TEXT, "role", "enrollments"),
            Field("is_primary", BOOL, 't."primary"', ("enrollments.primary",)),
            _t(DATE, "beginDate", "enrollments"),
            _t(DATE, "endDate", "enrollments"),
        ),
        parents=(("section_sourced_id", "sections"), ("user_sourced_id", "users")),
        description="Who is in which section, in which role (enrollments.csv). A deactivated enrollment "
        "is ended.",
    ),
)
BY_NAME = {e.name: e for e in ENTITIES}
PARENTS = frozenset(parent for e in ENTITIES for _, parent in e.parents)  # entities some other one points at
OPERATIONS = ("created", "updated", "deactivated", "reactivated")
STATES = ("applied", "held", "released", "failed")


def entity(name: str) -> Entity:
    if name not in BY_NAME:
        raise KeyError(f"unknown LMS entity {name!r} (expected one of {', '.join(BY_NAME)})")
    return BY_NAME[name]


# PostgreSQL: these tables are LIST-partitioned by district (one partition per district, created by the
# district's first write: see PostgresSession.bulk_target). A district's first load then COPYs into a new,
# unindexed table whose indexes are built once, when it is attached (its first ledger's beside it, see
# PostgresSession.load_beside); its rows and index pages are its own (no interleaving with other
# districts), and VACUUM/ANALYZE work per district.
PARTITIONED = (*BY_NAME, "change_entries")
# An entity partition's keys (added by PostgresSession.finish before it is attached): the LMS id, unique
# across districts (one sequence), and the sourcedId, unique within the district. Partition-local, so they
# need no leading district column: smaller, and built faster, than the (district, ...) keys a partitioned
# table's own constraints would have to be. The SQLite twin declares (id) and (district, sourced_id).
ENTITY_KEYS = ("PRIMARY KEY (id)", "UNIQUE (sourced_id)")


# change_entries' indexes (one record's history through its LMS id; a night's rows through the BRIN on the
# id, see ddl), also built by a first load's side connection on the partition it stages (postgres.py).
LEDGER_INDEXES = {"change_entries_lms_id": "(lms_id)", "change_entries_id": "USING brin (id)"}
# PostgreSQL: where a district's first ledger is built and committed by a second connection before the
# night's transaction moves it into ``lms`` and attaches it; what is left here is from a failed first load.
STAGING = "lms_staging"


def partition_name(table: str, district: str) -> str:
    """The table holding ``district``'s rows of ``table`` (readable; hashed when too long for PostgreSQL)."""
    name = f"{table}_{district}"
    if len(name) <= 63:
        return name
    return f"{name[:46]}_{hashlib.sha256(district.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class _Dialect:
    """The words that differ between PostgreSQL (schema ``lms``, partitioned tables) and SQLite."""

    pg: bool
    p: str  # table prefix
    ts: str
    now: str
    json: str
    serial: str
    ident: str  # ids are opaque: compared byte by byte (COLLATE "C", as DuckDB does), so keys index cheaply
    by_district: str  # PostgreSQL: one partition per district (see PARTITIONED), each with its ENTITY_KEYS


_DIALECTS = {
    "postgres": _Dialect(
        pg=True, p="lms.", ts="TIMESTAMPTZ", now="now()", json="JSON", serial="BIGSERIAL PRIMARY KEY",
        ident='TEXT COLLATE "C"', by_district=" PARTITION BY LIST (district)",
    ),
    "sqlite": _Dialect(
        pg=False, p="", ts="TEXT", now="CURRENT_TIMESTAMP", json="TEXT",
        serial="INTEGER PRIMARY KEY AUTOINCREMENT", ident="TEXT", by_district="",
    ),
}  # fmt: skip


def ddl(dialect: str) -> list[str]:
    """CREATE statements (idempotent) for ``postgres`` (schema ``lms``) or ``sqlite``."""
    d = _DIALECTS["postgres" if dialect == "postgres" else "sqlite"]
    return [*_prelude(d), *_entity_tables(d), *_sync_runs(d), *_ledger_tables(d)]


def _prelude(d: _Dialect) -> list[str]:
    """Schemas, the row-hash trigger function and the id sequences."""
    if not d.pg:
        return ["CREATE TABLE IF NOT EXISTS lms_sequences (name TEXT PRIMARY KEY, last BIGINT NOT NULL)"]
    return [
        "CREATE SCHEMA IF NOT EXISTS lms",
        f"CREATE SCHEMA IF NOT EXISTS {STAGING}",
        """CREATE OR REPLACE FUNCTION lms.clear_row_hash() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN NEW.row_hash := NULL; RETURN NEW; END $$""",
        "CREATE SEQUENCE IF NOT EXISTS lms.lms_ids",
        "CREATE SEQUENCE IF NOT EXISTS lms.ledger_ids",
    ]


def _entity_tables(d: _Dialect) -> list[str]:
    """One table per entity (with its edited-row trigger) and the ``id_map`` view over all of them."""
    types = _PG if d.pg else _SQLITE
    boolean = "BOOLEAN" if d.pg else "INTEGER"
    keys = "" if d.pg else ",\n    PRIMARY KEY (id), UNIQUE (district, sourced_id)"
    statements = []
    for e in ENTITIES:
        cols = ",\n    ".join(f"{f.name} {types[f.kind]}" for f in e.fields)
        statements.append(
            f"""CREATE TABLE IF NOT EXISTS {d.p}{e.name} (
    id BIGINT NOT NULL,
    district {d.ident} NOT NULL,
    sourced_id {d.ident} NOT NULL,
    {cols},
    active {boolean} NOT NULL,
    row_hash BIGINT,
    deactivated_at {d.ts},
    created_at {d.ts} NOT NULL DEFAULT {d.now},
    updated_at {d.ts} NOT NULL DEFAULT {d.now}{keys}){d.by_district}"""
        )
        statements.append(_edited_trigger(e, d.pg))
    union = "\n    UNION ALL ".join(
        f"SELECT district, '{e.name}' AS entity, sourced_id, id AS lms_id FROM {d.p}{e.name}"
        for e in ENTITIES
    )
    create = "CREATE OR REPLACE VIEW" if d.pg else "CREATE VIEW IF NOT EXISTS"
    statements.append(f"{create} {d.p}id_map AS\n    {union}")
    return statements


def _sync_runs(d: _Dialect) -> list[str]:
    """One row per district-night load: its state, counts, hold and ledger id range."""
    return [
        f"""CREATE TABLE IF NOT EXISTS {d.p}sync_runs (
    id {d.serial},
    district TEXT NOT NULL,
    partition_date DATE NOT NULL,
    run_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('applied', 'held', 'released', 'failed')),
    counts {d.json},
    held {d.json},
    released_by TEXT,
    release_reason TEXT,
    ledger_first BIGINT,
    ledger_last BIGINT,
    started_at {d.ts} NOT NULL DEFAULT {d.now},
    finished_at {d.ts})""",
        f"CREATE INDEX IF NOT EXISTS sync_runs_night ON {d.p}sync_runs (district, partition_date)",
    ]


def _ledger_tables(d: _Dialect) -> list[str]:
    """The change ledger, normalized so a first load of millions of rows writes each fact once: what is per
    night (district, date, run, release) is in sync_runs, what is per file in change_sources, and each
    written record is one narrow row of change_entries. The change_ledger view joins them back into one row
    per change with every documented column. change_entries.changes is the JSON text the sync wrote, stored
    as TEXT: a first load COPYs millions, and PostgreSQL's JSON type would parse each once more on the way
    in (about a fifth of the ledger COPY's CPU); the view turns it into JSON."""
    statements = [
        f"""CREATE TABLE IF NOT EXISTS {d.p}change_sources (
    id {d.serial},
    sync_run_id BIGINT NOT NULL,
    entity TEXT NOT NULL,
    file_uri TEXT,
    file_version TEXT,
    file_sha256 TEXT,
    fields {d.json} NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS change_sources_run ON {d.p}change_sources (sync_run_id)",
        f"""CREATE TABLE IF NOT EXISTS {d.p}change_entries (
    id BIGINT NOT NULL,
    district {d.ident} NOT NULL,
    source_id BIGINT NOT NULL,
    sourced_id {d.ident} NOT NULL,
    lms_id BIGINT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('created', 'updated', 'deactivated', 'reactivated')),
    line BIGINT,
    changes TEXT{"" if d.pg else ", PRIMARY KEY (id)"}){d.by_district}""",
    ]
    # One record's history is found through its LMS id (unique across entities: one ``lms_ids`` sequence).
    # Ledger ids come from one sequence, handed out in blocks, so they are unique without a unique index; an
    # append-only table's rows are in id order, so a night's rows (sync_runs.ledger_first .. ledger_last) are
    # found through a BRIN index, a few pages that cost almost nothing to build for a first load.
    for name, how in LEDGER_INDEXES.items():
        if d.pg or "brin" not in how:
            statements.append(f"CREATE INDEX IF NOT EXISTS {name} ON {d.p}change_entries {how}")
    statements.append(_ledger_view(d.pg))
    return statements


def _edited_trigger(e: Entity, pg: bool) -> str:
    """``row_hash`` is the hash of the mapped fields as the sync last wrote them, so a night reads back only
    (id, sourced_id, active, row_hash) and fetches full rows just for those whose hash differs. An UPDATE
    that changes fields but not ``row_hash`` (an edit made in the LMS, not by the sync) clears it, so the
    next night compares that row field by field (PostgreSQL: also when triggers are bypassed: _pg_trigger)."""
    fields = e.field_names
    if pg:
        new, old = ", ".join(f"NEW.{f}" for f in fields), ", ".join(f"OLD.{f}" for f in fields)
        return _pg_trigger(
            e.name,
            f"{e.name}_edited",
            f"""BEFORE UPDATE ON lms.{e.name} FOR EACH ROW
        WHEN (NEW.row_hash IS NOT DISTINCT FROM OLD.row_hash AND ({new}) IS DISTINCT FROM ({old}))
        EXECUTE FUNCTION lms.clear_row_hash()""",
        )
    same = " AND ".join(f"NEW.{f} IS OLD.{f}" for f in fields)
    return f"""CREATE TRIGGER IF NOT EXISTS {e.name}_edited AFTER UPDATE ON {e.name} FOR EACH ROW
    WHEN NEW.row_hash IS OLD.row_hash AND NOT ({same})
    BEGIN UPDATE {e.name} SET row_hash = NULL WHERE id = NEW.id; END"""


def _pg_trigger(table: str, trigger: str, definition: str) -> str:
    """Create ``trigger`` on ``lms.<table>`` (``CREATE TRIGGER <trigger> <definition>``) unless it exists,
    firing ALWAYS, also under ``session_replication_role = replica`` (an edit made that way must still be
    seen)."""
    return f"""DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{trigger}'
                   AND tgrelid = 'lms.{table}'::regclass) THEN
        CREATE TRIGGER {trigger} {definition};
        ALTER TABLE lms.{table} ENABLE ALWAYS TRIGGER {trigger};
    END IF;
END $$"""


def _ledger_view(pg: bool) -> str:
    """``change_ledger``: one row per change with district, night, run, release and file provenance.

    A created record's entry stores its after-values as a JSON array in the order of
    ``change_sources.fields`` (the field names once per file, not once per row); the view shows them as
    ``{field: value}`` (non-NULL fields), like the history tools do.
    """
    p = "lms." if pg else ""
    changes = "e.changes::json" if pg else "e.changes"
    if pg:
        created = """(SELECT json_object_agg(f.name, v.value)
              FROM json_array_elements_text(s.fields) WITH ORDINALITY AS f(name, n)
              JOIN json_array_elements(e.changes::json) WITH ORDINALITY AS v(value, n) USING (n)
              WHERE json_typeof(v.value) <> 'null')"""
    else:
        created = """(SELECT json_group_object(f.value, json(e.changes -> ('$[' || f.key || ']')))
              FROM json_each(s.fields) f WHERE json_type(e.changes, '$[' || f.key || ']') <> 'null')"""
    return f"""CREATE {"OR REPLACE " if pg else ""}VIEW {"" if pg else "IF NOT EXISTS "}{p}change_ledger AS
    SELECT e.id, s.sync_run_id, e.district, r.partition_date, r.run_id, s.entity, e.sourced_id, e.lms_id,
           e.operation,
           CASE WHEN e.operation = 'created' THEN {created} ELSE {changes} END AS changes,
           s.file_uri, s.file_version, e.line, s.file_sha256, r.released_by, r.release_reason,
           r.finished_at AS recorded_at
    FROM {p}change_entries e
    JOIN {p}change_sources s ON s.id = e.source_id
    JOIN {p}sync_runs r ON r.id = s.sync_run_id AND r.district = e.district"""
