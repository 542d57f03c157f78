"""The district registry: SQLite store, credentials encrypted at rest, key rotation, TOML import, resource."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from etl_project.archive import ArchiveResource
from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project.districts import District, DistrictConfigError, LocalSource, SftpSource
from etl_project.districts.resource import DistrictsResource
from etl_project.generate import generate_drop
from etl_project.partitions import DISTRICTS_PARTITION
from etl_project.registry import (
    CredentialDecryptError,
    DistrictExists,
    DistrictNotFound,
    MissingSecretKey,
    Registry,
    RegistryDatabaseError,
    SecretKeyError,
    mask_url,
    new_key,
)
from etl_project.registry.nights import NightState, NightStates
from etl_project.registry.toml_import import import_districts
from etl_project.sources import SftpCredentials
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD, SFTP_USER

PASSWORD = "Tr0ub4dor&3-registry-7f1c"


def _sftp_district(did="lincoln", host="sftp.lincoln.example", port=22, host_key="") -> District:
    source = SftpSource(host=host, port=port, username="etl", remote_dir="/outbox", host_key=host_key)
    return District(id=did, name="Lincoln Public Schools", source=source, timezone="America/Chicago")


@pytest.fixture
def keys(monkeypatch):
    key = new_key()
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", key)
    monkeypatch.delenv("ETL_PROJECT_SECRET_KEY_PREVIOUS", raising=False)
    return key


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.delenv("ETL_PROJECT_REGISTRY_URL", raising=False)
    monkeypatch.setenv("ETL_PROJECT_HOME", str(tmp_path / "home"))
    return Registry()


def test_default_registry_is_sqlite_under_home(registry, tmp_path):
    assert registry.url == f"sqlite:///{tmp_path / 'home' / 'registry.sqlite'}"
    assert registry.all() == {}


def test_round_trip_and_password_is_encrypted_at_rest(registry, keys, tmp_path):
    registry.add(_sftp_district(), {"password": PASSWORD})
    district = registry.get("lincoln")
    assert district.source.host == "sftp.lincoln.example" and district.timezone == "America/Chicago"
    assert district.source.password_env is None and district.source.host_key == ""
    creds = registry.credentials("lincoln")
    assert creds == SftpCredentials(password=PASSWORD)
    assert PASSWORD not in repr(creds)
    raw = (tmp_path / "home" / "registry.sqlite").read_bytes()
    assert PASSWORD.encode() not in raw
    assert b"sftp.lincoln.example" in raw  # settings are in clear; only secrets are encrypted
    assert oct((tmp_path / "home" / "registry.sqlite").stat().st_mode & 0o777) == "0o600"


def test_local_district_needs_no_secret_key(registry, monkeypatch):
    monkeypatch.delenv("ETL_PROJECT_SECRET_KEY", raising=False)
    registry.add(District(id="demo", name="Demo", source=LocalSource(path="/srv/demo")))
    assert registry.get("demo").source == LocalSource(path="/srv/demo")
    assert registry.credentials("demo") is None


def test_missing_key_is_a_clear_error_naming_the_variable(registry, monkeypatch, keys):
    registry.add(_sftp_district(), {"password": PASSWORD})
    monkeypatch.delenv("ETL_PROJECT_SECRET_KEY")
    with pytest.raises(MissingSecretKey, match="ETL_PROJECT_SECRET_KEY is not set") as info:
        registry.credentials("lincoln")
    assert "etl-project districts new-key" in str(info.value)
    with pytest.raises(MissingSecretKey):
        registry.add(_sftp_district("other"), {"password": PASSWORD})
    assert registry.get("lincoln").source.username == "etl"  # reading settings needs no key


def test_malformed_key_is_refused_without_echoing_it(registry, monkeypatch):
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", "not-a-key-0123456789")
    with pytest.raises(SecretKeyError, match="not a valid key") as info:
        registry.add(_sftp_district(), {"password": PASSWORD})
    assert "not-a-key-0123456789" not in str(info.value)


def test_rotation_previous_key_reads_rotate_reencrypts_old_key_then_fails(registry, monkeypatch, keys):
    old = keys
    registry.add(_sftp_district(), {"password": PASSWORD})
    registry.add(_sftp_district("second"), {"private_key": "KEY-TEXT-abc", "passphrase": "pp-9"})
    registry.add(District(id="demo", name="Demo", source=LocalSource(path="/x")))

    new = new_key()
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", new)
    with pytest.raises(CredentialDecryptError, match="ETL_PROJECT_SECRET_KEY_PREVIOUS"):
        registry.credentials("lincoln")  # the new key alone does not open the old tokens
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY_PREVIOUS", f"{new_key()}, {old}")
    assert registry.credentials("lincoln").password == PASSWORD  # still read during the rotation
    assert registry.rotate_key() == 2

    monkeypatch.delenv("ETL_PROJECT_SECRET_KEY_PREVIOUS")
    assert registry.credentials("lincoln").password == PASSWORD  # new key alone now works
    assert registry.credentials("second") == SftpCredentials(private_key="KEY-TEXT-abc", passphrase="pp-9")
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", old)
    with pytest.raises(CredentialDecryptError) as info:
        registry.credentials("lincoln")  # the old key alone fails after rotation
    assert PASSWORD not in str(info.value)


def test_rotate_is_all_or_nothing(registry, monkeypatch, keys):
    registry.add(_sftp_district("a"), {"password": "pw-a"})
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", new_key())
    registry.add(_sftp_district("b"), {"password": "pw-b"})  # under a key we then "lose"
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", new_key())
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY_PREVIOUS", keys)
    with pytest.raises(CredentialDecryptError, match="district 'b'"):
        registry.rotate_key()
    assert registry.credentials("a").password == "pw-a"  # still under the previous key: nothing changed


def test_a_token_copied_to_another_district_is_refused(registry, keys, tmp_path):
    registry.add(_sftp_district("a"), {"password": "pw-a"})
    registry.add(_sftp_district("b"), {"password": "pw-b"})
    with sqlite3.connect(tmp_path / "home" / "registry.sqlite") as conn:
        conn.execute(
            "UPDATE districts SET credentials = (SELECT credentials FROM districts WHERE id='a') WHERE id='b'"
        )
    with pytest.raises(CredentialDecryptError, match="belong to another district"):
        registry.credentials("b")


def test_add_update_enable_pin_remove(registry, keys):
    registry.add(_sftp_district(), {"password": PASSWORD})
    with pytest.raises(DistrictExists):
        registry.add(_sftp_district(), {"password": PASSWORD})
    entry = registry.update("lincoln", {"password": "next-password"}, port=2222, name="LPS")
    assert entry.district.source.port == 2222 and entry.district.name == "LPS"
    assert registry.credentials("lincoln").password == "next-password"
    registry.set_enabled("lincoln", False)
    assert registry.get("lincoln").enabled is False
    registry.pin_host_key("lincoln", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGs")
    entry = registry.entry("lincoln")
    assert entry.district.source.host_key.startswith("ssh-ed25519") and entry.host_key_pinned_at
    registry.forget_host_key("lincoln")
    assert registry.get("lincoln").source.host_key == ""
    registry.remove("lincoln")
    with pytest.raises(DistrictNotFound, match="not registered"):
        registry.get("lincoln")


def test_bad_settings_are_refused(registry, keys):
    with pytest.raises(DistrictConfigError, match="invalid district id"):
        registry.add(District(id="Bad|Id", name="x", source=LocalSource(path="/x")))
    with pytest.raises(DistrictConfigError, match="unknown time zone"):
        registry.add(District(id="ok", name="x", source=LocalSource(path="/x"), timezone="Mars/Olympus"))
    with pytest.raises(DistrictConfigError, match="no secret named"):
        registry.add(_sftp_district(), {"client_secret": "x"})


def test_toml_import_reads_env_secrets_and_encrypts_them(registry, keys, tmp_path, monkeypatch):
    toml = tmp_path / "districts.toml"
    toml.write_text(
        '[districts.lincoln]\nname = "Lincoln"\ntimezone = "America/Chicago"\n'
        "[districts.lincoln.thresholds]\nmax_deactivate_pct = 5\n"
        '[districts.lincoln.source]\nkind = "sftp"\nhost = "h.example"\nusername = "etl"\n'
        'password_env = "LINCOLN_PW"\nremote_dir = "/o"\n'
        'host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGs"\n'
        '[districts.demo.source]\nkind = "local"\npath = "/srv/demo"\n'
    )
    monkeypatch.delenv("LINCOLN_PW", raising=False)
    with pytest.raises(DistrictConfigError, match="LINCOLN_PW is not set"):
        import_districts(registry, toml)
    assert registry.all() == {}  # nothing half-imported
    monkeypatch.setenv("LINCOLN_PW", PASSWORD)
    done = import_districts(registry, toml)
    assert [(d.district_id, d.secret_fields) for d in done] == [("lincoln", ("password",)), ("demo", ())]
    lincoln = registry.get("lincoln")
    assert lincoln.source.password_env is None and lincoln.source.host_key.startswith("ssh-ed25519")
    assert lincoln.thresholds == {"max_deactivate_pct": 5}
    monkeypatch.delenv("LINCOLN_PW")
    assert registry.credentials("lincoln").password == PASSWORD  # the env var is no longer needed
    with pytest.raises(DistrictConfigError, match="already registered: demo, lincoln"):
        import_districts(registry, toml)


def test_mask_url_hides_the_password():
    assert mask_url("postgresql://etl:s3cret@db:5432/reg") == "postgresql://etl:***@db:5432/reg"
    assert mask_url("sqlite:///x/registry.sqlite") == "sqlite:///x/registry.sqlite"


def test_resource_and_ingest_use_the_registry_credentials(registry, keys, sftp_server, tmp_path, caplog):
    """The nightly fetch reads the district and its decrypted password from the registry."""
    generate_drop(Path(sftp_server.root) / "outbox" / "2026-11-28", 20, seed=3)
    district = District(id="lincoln", name="Lincoln", source=_registry_source(sftp_server.district().source))
    registry.add(district, {"password": SFTP_PASSWORD})
    resource = DistrictsResource(url=registry.url)
    assert set(resource.all()) == {"lincoln"}
    assert resource.credentials("lincoln") == SftpCredentials(password=SFTP_PASSWORD)

    caplog.set_level(logging.DEBUG)
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["lincoln"])
        result = materialize(
            [fetch_and_archive_drop],
            partition_key="2026-11-28|lincoln",
            instance=instance,
            resources={"districts": resource, "archive": ArchiveResource(url=str(tmp_path / "archive"))},
            run_config={"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}},
        )
        assert result.success
        logs = [str(e) for e in instance.all_logs(result.run_id)]
    assert (tmp_path / "archive" / "district=lincoln" / "date=2026-11-28").is_dir()
    assert SFTP_PASSWORD not in "\n".join(logs) + caplog.text


def _registry_source(source: SftpSource) -> SftpSource:
    return SftpSource(
        host=source.host,
        port=source.port,
        username=SFTP_USER,
        remote_dir=source.remote_dir,
        host_key=source.host_key,
    )


def test_registry_on_postgresql_stores_encrypts_rotates_and_removes(pg_url, keys, monkeypatch):
    """Production keeps the registry in PostgreSQL, shared by every worker: same behaviour as SQLite."""
    import psycopg

    registry = Registry(url=pg_url)
    registry.add(_sftp_district(), {"password": PASSWORD})
    registry.add(District(id="demo", name="Demo", source=LocalSource(path="/srv/demo")))
    assert sorted(registry.all()) == ["demo", "lincoln"]
    assert Registry(url=pg_url).credentials("lincoln") == SftpCredentials(password=PASSWORD)
    with psycopg.connect(pg_url) as conn:
        dump = "\n".join(str(row) for row in conn.execute("select * from districts"))
    assert "sftp.lincoln.example" in dump and PASSWORD not in dump

    old = keys
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", new_key())
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY_PREVIOUS", old)
    assert registry.rotate_key() == 1
    monkeypatch.delenv("ETL_PROJECT_SECRET_KEY_PREVIOUS")
    assert registry.credentials("lincoln").password == PASSWORD

    registry.remove("lincoln")
    assert sorted(Registry(url=pg_url).all()) == ["demo"]


def test_workers_starting_together_on_an_empty_postgresql_registry(pg_url):
    """Every worker creates the registry table on first use; many at the same moment must not collide."""
    import threading

    barrier, errors = threading.Barrier(8), []

    def first_use() -> None:
        registry = Registry(url=pg_url)
        barrier.wait()
        try:
            registry.all()
        except Exception as exc:  # collected: asserted below in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.fixture(params=["sqlite", "postgresql"])
def any_registry_url(request, tmp_path) -> str:
    """A fresh, empty registry on each database the registry supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite'}"
    return request.getfixturevalue("pg_url")


def test_names_with_question_marks_and_percent_signs_round_trip(any_registry_url, keys):
    """Values go to the database as bound parameters, never spliced or rewritten into the SQL."""
    name = "What? 100%s of 'Lincoln' %(x)s ?1 :name"
    registry = Registry(url=any_registry_url)
    registry.add(District(id="what", name=name, source=LocalSource(path="/srv/what?%s")))
    registry.update("what", timezone="America/Denver")
    district = Registry(url=any_registry_url).get("what")
    assert (district.name, district.source.path, district.timezone) == (
        name,
        "/srv/what?%s",
        "America/Denver",
    )


def test_sql_literals_with_question_marks_and_percent_signs_are_sent_as_written(any_registry_url):
    """The helper rewrites no SQL: a literal holding ``?`` and ``%s`` comes back as written."""
    from sqlalchemy import literal_column, select

    from etl_project.registry.db import Database

    with Database(any_registry_url).transaction() as conn:
        assert conn.execute(select(literal_column("'What? 100%s'"))).scalar_one() == "What? 100%s"


def test_a_fresh_registry_is_migrated_to_head_on_first_use(any_registry_url):
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, inspect, text

    from etl_project.registry.db import engine_url, migrations_config

    Registry(url=any_registry_url).all()
    head = ScriptDirectory.from_config(migrations_config()).get_current_head()
    engine = create_engine(engine_url(any_registry_url))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(head,)]
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert {"districts", "night_states", "source_polls", "alembic_version"} <= tables


def test_the_migrated_schema_is_the_one_the_code_uses(any_registry_url):
    """Alembic compares the migrated database with the code's table definitions: no difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from etl_project.registry.db import engine_url
    from etl_project.registry.tables import metadata

    Registry(url=any_registry_url).all()
    engine = create_engine(engine_url(any_registry_url))
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_an_unreachable_postgresql_registry_is_one_sentence_without_the_password(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://etl:{PASSWORD}@127.0.0.1:{port}/registry"
    with pytest.raises(RegistryDatabaseError) as raised:
        Registry(url=url).all()
    message = str(raised.value)
    assert message.startswith(
        f"cannot reach the registry at postgresql://etl:***@127.0.0.1:{port}/registry: "
    )
    assert PASSWORD not in message and "\n" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_registry_made_before_the_migrations_is_adopted_with_its_districts(tmp_path, keys):
    path = tmp_path / "registry.sqlite"
    with sqlite3.connect(path) as conn:  # the districts table as the registry created it before migrations
        conn.execute(PRE_MIGRATIONS_DISTRICTS)
        conn.execute(
            "INSERT INTO districts VALUES ('lincoln', 'Lincoln', 'UTC', 1, 6, '{}', 'local', "
            "'{\"path\": \"/srv/dropbox/lincoln\"}', NULL, NULL, '[]', NULL, '2026-11-01', '2026-11-01')"
        )
    registry = Registry(f"sqlite:///{path}")
    assert registry.get("lincoln").name == "Lincoln"
    NightStates(registry.url).record("lincoln", "2026-11-28", NightState.APPLIED)
    assert NightStates(registry.url).latest("lincoln").state is NightState.APPLIED


PRE_MIGRATIONS_DISTRICTS = """
CREATE TABLE districts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, timezone TEXT NOT NULL, enabled INTEGER NOT NULL,
    expected_by_hour INTEGER NOT NULL, thresholds TEXT NOT NULL, source_kind TEXT NOT NULL,
    source_settings TEXT NOT NULL, host_key TEXT, host_key_pinned_at TEXT, secret_fields TEXT NOT NULL,
    credentials TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
)"""
