"""Stateless runs: any worker can run any district's night, because every night's tables live in the archive
(etl_project/night_tables.py), not only in one worker's DuckDB file.

The archive is a real S3 endpoint (moto server over HTTP). Each "worker" is its own warehouse folder; the LMS
(SQLite) and the archive are shared, as in a multi-worker deployment.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from etl_project.archive import ArchiveResource
from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project.assets.lms import lms_change_plan, lms_entities
from etl_project.assets.oneroster import oneroster_tables
from etl_project.checks.definitions import oneroster_quality
from etl_project.cli.main import main
from etl_project.districts.resource import DistrictsResource
from etl_project.generate import generate_drop
from etl_project.lms import open_backend, plan_night
from etl_project.lms.resource import LmsResource
from etl_project.lms.thresholds import Thresholds
from etl_project.night_tables import ALL_TABLES, INDEX_NAME, MANIFEST_NAME, parquet_name, read_nights
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight
from etl_project.reports import publish_night
from etl_project.warehouse import WarehouseResource
from etl_project_tests.lms_helpers import NIGHT1, NIGHT2, NIGHT3, query

NIGHTS = (NIGHT1, NIGHT2, NIGHT3)
ASSETS = [fetch_and_archive_drop, oneroster_tables, oneroster_quality, lms_change_plan, lms_entities]
RUN_CONFIG = {"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}}
DISTRICT = "t1"
ENROLLMENTS_OF_NIGHT2 = f"SELECT count(*) FROM oneroster.enrollments WHERE _date = '{NIGHT2}'"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """The registry (night states) and scratch of these runs stay in the test's folder."""
    monkeypatch.setenv("ETL_PROJECT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def dropbox(tmp_path) -> Path:
    """Three nights of one district: day 2 and 3 move, add and withdraw students."""
    box = tmp_path / "dropbox"
    for day, night in enumerate(NIGHTS, start=1):
        generate_drop(box / night, 150, day=day, seed=7)
    return box


class Deployment:
    """Shared archive (S3 prefix) and LMS; a run names the worker (warehouse folder) it lands on."""

    def __init__(self, tmp: Path, dropbox: Path, s3_bucket, name: str):
        self.tmp = tmp / name
        self.tmp.mkdir()
        districts = self.tmp / "districts.toml"
        districts.write_text(
            f'[districts.{DISTRICT}]\nname = "T1"\n[districts.{DISTRICT}.source]\nkind = "local"\n'
            f'path = "{dropbox}"\n[districts.{DISTRICT}.thresholds]\ndeactivate = 100\nupdate = 100\n'
        )
        self.archive = ArchiveResource(
            url=f"s3://{s3_bucket.name}/{name}/", s3_endpoint_url=s3_bucket.endpoint_url
        )
        self.lms_url = f"sqlite:///{self.tmp}/lms.sqlite"
        self.districts = DistrictsResource(path=str(districts))

    def worker(self, name: str) -> WarehouseResource:
        return WarehouseResource(root=str(self.tmp / "workers" / name))

    def run(self, instance: DagsterInstance, night: str, worker: WarehouseResource):
        resources = {
            "districts": self.districts,
            "archive": self.archive,
            "warehouse": worker,
            "lms": LmsResource(url=self.lms_url),
        }
        result = materialize(
            ASSETS,
            partition_key=DistrictNight(night, DISTRICT).key,
            resources=resources,
            instance=instance,
            run_config=RUN_CONFIG,
            raise_on_error=False,
        )
        assert result.success, night
        checks = {
            (e.asset_key.to_user_string(), e.check_name): dict(e.metadata)
            for e in result.get_asset_check_evaluations()
        }
        return checks

    def lms_state(self) -> dict[str, list[tuple]]:
        """The LMS rows and ledger, without the clock (ids, values, active, operations in order)."""
        backend = open_backend(self.lms_url)
        out = {}
        for table, cols in (
            ("users", "id, sourced_id, active, given_name, family_name, email, role"),
            ("sections", "id, sourced_id, active, title"),
            ("enrollments", "id, sourced_id, active"),
        ):
            sql = f"SELECT {cols} FROM {{p}}{table} WHERE district = %s ORDER BY id"
            out[table] = query(backend, DISTRICT, sql, [DISTRICT])
        out["ledger"] = query(
            backend, DISTRICT,
            "SELECT id, entity, sourced_id, operation, changes, file_uri FROM {p}change_ledger "
            "WHERE district = %s ORDER BY id", [DISTRICT],
        )  # fmt: skip
        return out


def _drift(checks: dict) -> dict:
    """What the row-count check compared against (it needs the previous night's files table)."""
    return {
        k: {m: str(v.value) for m, v in meta.items()}
        for k, meta in checks.items()
        if k[1] == "row_count_drift"
    }


def _same_lms(one: Deployment, other: Deployment) -> None:
    """The two LMSs hold the same rows and ledger; archive URIs differ only by the deployment's prefix."""
    mine = json.dumps(one.lms_state(), default=str)
    theirs = json.dumps(other.lms_state(), default=str).replace(f"/{other.tmp.name}/", f"/{one.tmp.name}/")
    assert json.loads(mine)["users"], "the LMS was loaded"
    assert json.loads(theirs) == json.loads(mine)


def test_nights_on_three_workers_equal_one_worker(tmp_path, dropbox, s3_bucket):
    single = Deployment(tmp_path, dropbox, s3_bucket, "single")
    spread = Deployment(tmp_path, dropbox, s3_bucket, "spread")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, [DISTRICT])
        one = single.worker("only")
        single_checks = [single.run(instance, night, one) for night in NIGHTS]
        spread_checks = [
            spread.run(instance, night, spread.worker(w)) for night, w in zip(NIGHTS, "ABC", strict=True)
        ]
    _same_lms(single, spread)
    # worker B never saw night 1, yet its row-count check compared night 2 with night 1 as one worker did
    assert _drift(spread_checks[1]) == _drift(single_checks[1])
    assert any("before" in str(meta) or "previous" in str(meta) for meta in _drift(spread_checks[1]).values())
    # worker B's disk holds no night 1: it read only what its own runs needed
    cache_b = Path(spread.worker("B").root) / ".nights" / DISTRICT
    assert not (cache_b / f"date={NIGHT1}" / parquet_name("users")).exists()
    assert (cache_b / f"date={NIGHT2}" / parquet_name("users")).exists()


def test_archive_holds_each_nights_tables_with_manifest(tmp_path, dropbox, s3_bucket):
    deployment = Deployment(tmp_path, dropbox, s3_bucket, "layout")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, [DISTRICT])
        deployment.run(instance, NIGHT1, deployment.worker("A"))
    client = s3_bucket.client()
    prefix = f"layout/district={DISTRICT}/"
    keys = {
        o["Key"][len(prefix) :]
        for o in client.list_objects_v2(Bucket=s3_bucket.name, Prefix=prefix)["Contents"]
    }
    assert {f"date={NIGHT1}/{parquet_name(t)}" for t in ALL_TABLES} <= keys
    assert {f"date={NIGHT1}/{MANIFEST_NAME}", INDEX_NAME} <= keys
    manifest = json.loads(
        client.get_object(Bucket=s3_bucket.name, Key=f"{prefix}date={NIGHT1}/{MANIFEST_NAME}")["Body"].read()
    )
    users = manifest["tables"]["users"]
    head = client.head_object(Bucket=s3_bucket.name, Key=f"{prefix}date={NIGHT1}/{parquet_name('users')}")
    assert head["ContentLength"] == users["size"] and users["rows"] > 150


def test_deleting_the_warehouse_between_nights_changes_nothing(tmp_path, dropbox, s3_bucket):
    kept = Deployment(tmp_path, dropbox, s3_bucket, "kept")
    wiped = Deployment(tmp_path, dropbox, s3_bucket, "wiped")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, [DISTRICT])
        for night in NIGHTS:
            kept.run(instance, night, kept.worker("A"))
            worker = wiped.worker("A")
            shutil.rmtree(worker.root, ignore_errors=True)
            wiped.run(instance, night, worker)
    _same_lms(kept, wiped)


def test_stale_cache_is_refreshed_when_a_night_is_rebuilt(tmp_path, dropbox, s3_bucket):
    """Worker A caches night 2; night 2 is rebuilt on worker B from a changed drop; A reads B's version."""
    deployment = Deployment(tmp_path, dropbox, s3_bucket, "rebuilt")
    a, b = deployment.worker("A"), deployment.worker("B")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, [DISTRICT])
        deployment.run(instance, NIGHT1, a)
        deployment.run(instance, NIGHT2, a)
        users = dropbox / NIGHT2 / "users.csv"
        lines = users.read_text().splitlines(keepends=True)
        users.write_text("".join(lines[:-10]))  # ten users fewer in the re-sent drop
        deployment.run(instance, NIGHT2, b)
    archive = deployment.archive.open()
    with read_nights(a, archive, DISTRICT, [NIGHT2]) as conn:
        seen_by_a = conn.execute(f"SELECT count(*) FROM oneroster.users WHERE _date = '{NIGHT2}'").fetchone()[
            0
        ]
    with read_nights(b, archive, DISTRICT, [NIGHT2]) as conn:
        seen_by_b = conn.execute(f"SELECT count(*) FROM oneroster.users WHERE _date = '{NIGHT2}'").fetchone()[
            0
        ]
    assert seen_by_a == seen_by_b == len(lines) - 1 - 10


def test_a_builders_duckdb_file_keeps_only_the_night_it_built(tmp_path, dropbox, s3_bucket):
    """Readers read nights from the archive, so the builder's file forgets the older ones it archived."""
    deployment = Deployment(tmp_path, dropbox, s3_bucket, "forget")
    worker = deployment.worker("A")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, [DISTRICT])
        for night in NIGHTS:
            deployment.run(instance, night, worker)
    held: set[str] = set()
    with worker.connect(DISTRICT) as conn:
        for t in ALL_TABLES:
            held |= {
                d for (d,) in conn.execute(f"SELECT DISTINCT _date::VARCHAR FROM oneroster.{t}").fetchall()
            }
    assert held == {NIGHT3}
    with read_nights(worker, deployment.archive.open(), DISTRICT, list(NIGHTS)) as conn:
        nights = conn.execute("SELECT DISTINCT _date::VARCHAR FROM oneroster.users ORDER BY 1").fetchall()
    assert nights == [(n,) for n in NIGHTS]


def test_a_night_the_archive_lacks_is_never_forgotten(tmp_path, dropbox):
    from etl_project.archive import LocalArchive
    from etl_project.night_tables import forget_archived_nights, publish_night
    from etl_project.oneroster.load import load_drop

    archive, builder = LocalArchive(tmp_path / "archive"), WarehouseResource(root=str(tmp_path / "builder"))
    users = "SELECT DISTINCT _date::VARCHAR FROM oneroster.users ORDER BY 1"
    with builder.connect(DISTRICT) as conn:
        for night in (NIGHT1, NIGHT2):
            load_drop(conn, dropbox / night, district=DISTRICT, date=night)
        publish_night(conn, archive, builder, DISTRICT, NIGHT2)
        assert forget_archived_nights(conn, archive, DISTRICT, keep=NIGHT2) == []  # night 1 is only here
        assert conn.execute(users).fetchall() == [(NIGHT1,), (NIGHT2,)]
        publish_night(conn, archive, builder, DISTRICT, NIGHT1)
        assert forget_archived_nights(conn, archive, DISTRICT, keep=NIGHT2) == [NIGHT1]
        assert conn.execute(users).fetchall() == [(NIGHT2,)]


def test_report_trace_plan_from_a_fresh_worker(tmp_path, dropbox, s3_bucket, monkeypatch, capsys):
    deployment = Deployment(tmp_path, dropbox, s3_bucket, "readers")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, [DISTRICT])
        for night in NIGHTS[:2]:
            deployment.run(instance, night, deployment.worker("A"))
    shutil.rmtree(deployment.worker("A").root)
    fresh = deployment.worker("fresh")
    archive = deployment.archive.open()
    backend = open_backend(deployment.lms_url)

    published = publish_night(fresh, backend, archive, DISTRICT, NIGHT2)
    assert published.report.rows > 150 and published.report.lms_state == "applied"
    with read_nights(fresh, archive, DISTRICT, [NIGHT2]) as duck:
        plan = plan_night(duck, backend, DISTRICT, NIGHT2, Thresholds())
    assert plan.changes.writes == 0  # night 2 is applied: nothing left to change

    for name, value in {
        "ETL_PROJECT_WAREHOUSE": str(tmp_path / "cli-worker"),
        "ETL_PROJECT_ARCHIVE": f"s3://{deployment.archive.url.removeprefix('s3://')}",
        "ETL_PROJECT_S3_ENDPOINT": deployment.archive.s3_endpoint_url,
        "ETL_PROJECT_DISTRICTS": deployment.districts.path,
        "LMS_URL": deployment.lms_url,
    }.items():
        monkeypatch.setenv(name, value)
    user = query(backend, DISTRICT, "SELECT sourced_id FROM {p}users WHERE district = %s LIMIT 1", [DISTRICT])
    assert main(["plan", "--district", DISTRICT, "--date", NIGHT2, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["writes"] == 0
    assert main(["trace", "--district", DISTRICT, "--entity", "users", "--id", user[0][0]]) == 0
    assert user[0][0] in capsys.readouterr().out
    assert main(["report", "--district", DISTRICT]) == 0
    out = capsys.readouterr().out
    assert f"{DISTRICT} {NIGHT2}:" in out  # the newest archived night, found without any warehouse file


def test_offboarding_keeps_archived_tables_unless_asked(tmp_path, dropbox, s3_bucket, monkeypatch):
    from etl_project.cli.offboard import offboard_district
    from etl_project.night_tables import read_index
    from etl_project.settings import Settings

    deployment = Deployment(tmp_path, dropbox, s3_bucket, "offboard")
    worker = deployment.worker("A")
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, [DISTRICT])
        deployment.run(instance, NIGHT1, worker)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster-home"))
    monkeypatch.setenv("ETL_PROJECT_WAREHOUSE", worker.root)
    monkeypatch.setenv("ETL_PROJECT_ARCHIVE", deployment.archive.url)
    monkeypatch.setenv("ETL_PROJECT_S3_ENDPOINT", deployment.archive.s3_endpoint_url)
    archive = deployment.archive.open()
    cache = Path(worker.root) / ".nights" / DISTRICT

    done = offboard_district(Settings.from_env(), DISTRICT, archive=False)
    assert not cache.exists() and not worker.database_path(DISTRICT).exists()
    assert any("cached nights" in line for line in done)
    assert read_index(archive, DISTRICT) and archive.get_bytes(DISTRICT, NIGHT1, MANIFEST_NAME)

    offboard_district(Settings.from_env(), DISTRICT, archive=True)
    assert read_index(archive, DISTRICT) == {}
    assert archive.get_bytes(DISTRICT, NIGHT1, MANIFEST_NAME) is None


def test_local_archive_night_found_when_the_index_missed_it(tmp_path, dropbox):
    """The embedded default (a local archive folder) keeps the same layout; a night whose index entry was
    lost (two publishes racing) is still read when asked for by name."""
    from etl_project.archive import LocalArchive
    from etl_project.night_tables import _write_index, publish_night, read_index
    from etl_project.oneroster.load import load_drop

    archive, builder = LocalArchive(tmp_path / "archive"), WarehouseResource(root=str(tmp_path / "builder"))
    with builder.connect(DISTRICT) as conn:
        for night in NIGHTS[:2]:
            load_drop(conn, dropbox / night, district=DISTRICT, date=night)
            publish_night(conn, archive, builder, DISTRICT, night)
        want = conn.execute(
            f"SELECT count(*) FROM oneroster.enrollments WHERE _date = '{NIGHT2}'"
        ).fetchone()[0]
    assert (
        tmp_path / "archive" / f"district={DISTRICT}" / f"date={NIGHT2}" / parquet_name("users")
    ).is_file()
    _write_index(archive, DISTRICT, {NIGHT1: read_index(archive, DISTRICT)[NIGHT1]})
    reader = WarehouseResource(root=str(tmp_path / "reader"))
    with read_nights(reader, archive, DISTRICT, [NIGHT2]) as conn:
        got = conn.execute(f"SELECT count(*) FROM oneroster.enrollments WHERE _date = '{NIGHT2}'").fetchone()[
            0
        ]
        nights = conn.execute("SELECT DISTINCT _date::VARCHAR FROM oneroster.files ORDER BY 1").fetchall()
    assert got == want > 0 and nights == [(NIGHT1,), (NIGHT2,)]


def test_nights_built_before_tables_were_archived_are_published_once(tmp_path, dropbox):
    """An upgraded worker's DuckDB file holds nights whose tables were never archived: the next build
    archives them too (and never overwrites a night some worker already archived)."""
    from etl_project.archive import LocalArchive
    from etl_project.night_tables import publish_night, publish_unarchived, read_index
    from etl_project.oneroster.load import load_drop

    archive, builder = LocalArchive(tmp_path / "archive"), WarehouseResource(root=str(tmp_path / "builder"))
    with builder.connect(DISTRICT) as conn:
        for night in NIGHTS:
            load_drop(conn, dropbox / night, district=DISTRICT, date=night)
        publish_night(conn, archive, builder, DISTRICT, NIGHT3)
        before = read_index(archive, DISTRICT)
        assert publish_unarchived(conn, archive, builder, DISTRICT) == [NIGHT1, NIGHT2]
        assert publish_unarchived(conn, archive, builder, DISTRICT) == []
    after = read_index(archive, DISTRICT)
    assert sorted(after) == list(NIGHTS) and after[NIGHT3] == before[NIGHT3]


def test_shared_readers_follow_the_archive_and_outlive_a_replaced_reader(tmp_path, dropbox):
    """The portal's readers stay open between requests: a night published since is seen by the next
    request, and a request still using the replaced reader finishes on it."""
    from etl_project.archive import LocalArchive
    from etl_project.night_readers import NightReaders
    from etl_project.night_tables import publish_night
    from etl_project.oneroster.load import load_drop

    archive, builder = LocalArchive(tmp_path / "archive"), WarehouseResource(root=str(tmp_path / "builder"))
    reader, readers = WarehouseResource(root=str(tmp_path / "reader")), NightReaders(limit=1)
    newest = "SELECT max(_date)::VARCHAR FROM oneroster.users"
    with builder.connect(DISTRICT) as conn:
        load_drop(conn, dropbox / NIGHT1, district=DISTRICT, date=NIGHT1)
        publish_night(conn, archive, builder, DISTRICT, NIGHT1)
        with readers.read(reader, archive, DISTRICT) as first:
            assert first.execute(newest).fetchone() == (NIGHT1,)
            load_drop(conn, dropbox / NIGHT2, district=DISTRICT, date=NIGHT2)
            publish_night(conn, archive, builder, DISTRICT, NIGHT2)
            with readers.read(reader, archive, DISTRICT) as second:  # the index changed: a new reader
                assert second.execute(newest).fetchone() == (NIGHT2,)
                with readers.read(reader, archive, DISTRICT, [NIGHT1]) as other:  # evicts (limit 1)
                    assert other.execute(newest).fetchone() == (NIGHT1,)
                assert second.execute(newest).fetchone() == (NIGHT2,)  # retired, still in use: open
            assert first.execute(newest).fetchone() == (NIGHT1,)
    readers.close()
