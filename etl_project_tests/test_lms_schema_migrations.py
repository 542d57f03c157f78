"""The LMS schema's Alembic migrations on real SQLite and PostgreSQL: a fresh LMS is migrated to the newest
revision, and the migrated schema is the one ``lms.schema.ddl`` (what the code reads and writes) describes."""

from __future__ import annotations

import sqlite3
import uuid

import psycopg
from alembic.script import ScriptDirectory

from etl_project.lms import open_backend
from etl_project.lms.schema import ddl
from etl_project.lms.schema_version import VERSION_TABLE, migrations_config

_PG_CATALOGUE = {
    "columns": """SELECT table_schema, table_name, column_name, data_type, collation_name, is_nullable,
                         column_default
                  FROM information_schema.columns WHERE table_schema IN ('lms', 'lms_staging')""",
    "tables": """SELECT n.nspname, c.relname, c.relkind, pg_get_partkeydef(c.oid)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname IN ('lms', 'lms_staging')""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
                      WHERE connamespace = 'lms'::regnamespace""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'lms'",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'lms'",
    "triggers": """SELECT tgrelid::regclass::text, tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger
                   WHERE NOT tgisinternal""",
    "functions": """SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'lms'::regnamespace""",
}


def _pg_catalogue(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {what: sorted(conn.execute(sql).fetchall(), key=repr) for what, sql in _PG_CATALOGUE.items()}


def _sqlite_catalogue(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        return [
            r
            for r in rows
            if r[1] != VERSION_TABLE and not r[1].startswith(f"sqlite_autoindex_{VERSION_TABLE}")
        ]


def _revision(conn) -> list[tuple]:
    return list(conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall())


HEAD = ScriptDirectory.from_config(migrations_config()).get_current_head()


def test_a_fresh_sqlite_lms_is_migrated_to_head_with_the_schema_the_code_uses(tmp_path):
    backend = open_backend(f"sqlite:///{tmp_path / 'lms.sqlite'}")
    with backend.session("adams", write=False) as s:  # the first session migrates
        assert s.query("SELECT count(*) FROM users") == [(0,)]
    with sqlite3.connect(tmp_path / "lms.sqlite") as conn:
        assert _revision(conn) == [(HEAD,)]
    with sqlite3.connect(tmp_path / "by-ddl.sqlite") as conn:
        for statement in ddl("sqlite"):
            conn.execute(statement)
    migrated = _sqlite_catalogue(tmp_path / "lms.sqlite")
    assert migrated == _sqlite_catalogue(tmp_path / "by-ddl.sqlite")
    assert {"users", "sync_runs", "change_entries", "change_ledger", "users_edited"} <= {
        r[1] for r in migrated
    }


def test_a_fresh_postgresql_lms_is_migrated_to_head_with_the_schema_the_code_uses(pg_server):
    migrated_url = pg_server.create_database(f"lms_migrated_{uuid.uuid4().hex[:8]}")
    by_ddl_url = pg_server.create_database(f"lms_by_ddl_{uuid.uuid4().hex[:8]}")
    open_backend(migrated_url).ensure_schema()
    with psycopg.connect(migrated_url) as conn:
        assert _revision(conn) == [(HEAD,)]
    with psycopg.connect(by_ddl_url) as conn:
        for statement in ddl("postgres"):
            conn.execute(statement)
    migrated = _pg_catalogue(migrated_url)
    assert migrated == _pg_catalogue(by_ddl_url)
    assert ("lms", "users", "p", "LIST (district)") in migrated["tables"]
    assert any(t[1] == "users_edited" and t[2] == "A" for t in migrated["triggers"])


def test_lms_workers_starting_together_on_an_empty_postgresql_database(pg_url):
    """Each backend migrates before its first session; many at the same moment must not collide."""
    import threading

    workers = 6
    barrier, errors = threading.Barrier(workers), []

    def first_use() -> None:
        backend = open_backend(pg_url)
        barrier.wait()
        try:
            backend.ensure_schema()
        except Exception as exc:  # collected: asserted below in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        assert _revision(conn) == [(HEAD,)]
