"""The ingest assets end to end: real SFTP servers, moto's S3 server, DuckDB, through Dagster."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterEventType, Definitions, instance_for_test, materialize

from etl_project.archive import ArchiveResource
from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project.assets.oneroster import oneroster_tables
from etl_project.districts import District, LocalSource, to_toml
from etl_project.districts.resource import DistrictsResource
from etl_project.generate import generate_drop
from etl_project.partitions import DistrictNight
from etl_project.registry import Registry
from etl_project.warehouse import WarehouseResource
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD, SftpTestServer

NIGHT = "2026-11-27"
FAST = {"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}}


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def _resources(tmp_path: Path, districts: dict[str, District], archive: ArchiveResource) -> dict[str, object]:
    config = tmp_path / "districts.toml"
    config.write_text(to_toml(districts))
    return {
        "districts": DistrictsResource(path=str(config)),
        "archive": archive,
        "warehouse": WarehouseResource(root=str(tmp_path / "warehouse")),
    }


def _s3_archive(bucket) -> ArchiveResource:
    return ArchiveResource(
        url=f"s3://{bucket.name}/roster", s3_endpoint_url=bucket.endpoint_url, region="us-east-1"
    )


def _ingest(instance, resources, district: str, assets=None, night: str = NIGHT):
    instance.add_dynamic_partitions("districts", [district])
    return materialize(
        assets or [fetch_and_archive_drop, oneroster_tables],
        partition_key=DistrictNight(night, district).key,
        resources=resources,
        instance=instance,
        run_config=FAST if assets is None else None,
        raise_on_error=False,
    )


def _metadata(result, key: str) -> dict[str, object]:
    mats = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == key]
    assert mats, f"{key} was not materialized"
    return {k: v.value for k, v in mats[-1].event_specific_data.materialization.metadata.items()}


def _all_event_text(instance, run_id: str) -> str:
    return "\n".join(
        json.dumps(e.to_json() if hasattr(e, "to_json") else str(e)) for e in instance.all_logs(run_id)
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sftp_password_drop_is_archived_in_versioned_s3_and_normalized(
    sftp_server, s3_bucket, tmp_path, monkeypatch, instance
):
    drop = generate_drop(Path(sftp_server.root) / "outbox" / NIGHT, 300, seed=3)
    monkeypatch.setenv("LINCOLN_SFTP_PASSWORD", SFTP_PASSWORD)
    district = sftp_server.district()
    district = dataclasses.replace(
        district, source=dataclasses.replace(district.source, password_env="LINCOLN_SFTP_PASSWORD")
    )
    resources = _resources(tmp_path, {"lincoln": district}, _s3_archive(s3_bucket))

    result = _ingest(instance, resources, "lincoln")
    assert result.success

    s3 = s3_bucket.client()
    prefix = f"roster/district=lincoln/date={NIGHT}/"
    versions = s3.list_object_versions(Bucket=s3_bucket.name, Prefix=prefix)["Versions"]
    names = sorted(v["Key"].removeprefix(prefix) for v in versions)
    # the raw files and their snapshot, then the night's tables the OneRoster step published beside them
    raw = [n for n in names if not n.startswith("table.") and n != "_tables.json"]
    assert raw == sorted([*(p.name for p in drop.path.iterdir()), "_snapshot.json"])
    assert "_tables.json" in names and "table.users.parquet" in names
    users_head = s3.head_object(Bucket=s3_bucket.name, Key=prefix + "users.csv")
    assert users_head["ServerSideEncryption"] == "AES256"
    assert users_head["Metadata"]["sha256"] == _sha256(drop.path / "users.csv")

    with resources["warehouse"].connect("lincoln") as conn:
        users = conn.execute("select count(*) from oneroster.users where _date = ?", [NIGHT]).fetchone()[0]
    assert users == drop.files["users.csv"].rows

    snapshot_meta = _metadata(result, "archive/oneroster_snapshot")
    assert snapshot_meta["dagster/uri"] == f"s3://{s3_bucket.name}/{prefix}_snapshot.json"
    users_meta = _metadata(result, "oneroster/users")
    assert users_meta["dagster/row_count"] == users
    assert users_meta["source_sha256"] == _sha256(drop.path / "users.csv")
    assert users_meta["archive_version_id"] == users_head["VersionId"]
    assert users_meta["source_host"] == f"127.0.0.1:{sftp_server.port}"
    assert users_meta["source_path"].endswith(f"/outbox/{NIGHT}/users.csv")
    assert "dagster/column_schema" in users_meta
    drop_meta = _metadata(result, "raw/oneroster_drop")
    assert drop_meta["file_count"] == len(list(drop.path.iterdir()))

    # The password never reaches the event log (metadata, logs, errors).
    assert SFTP_PASSWORD not in _all_event_text(instance, result.run_id)

    # Same bytes again: no new object versions anywhere in the night's folder.
    again = _ingest(instance, resources, "lincoln")
    assert again.success
    assert len(s3.list_object_versions(Bucket=s3_bucket.name, Prefix=prefix)["Versions"]) == len(versions)


def test_openssh_key_auth_zip_drop_into_local_archive(openssh_sftp, tmp_path, instance):
    remote = openssh_sftp.files / "zip-district"
    generate_drop(remote / f"roster-{NIGHT}.zip", 200, seed=5, as_zip=True)
    district = openssh_sftp.district(remote_dir=str(remote), did="zipville")
    district = dataclasses.replace(
        district,
        source=dataclasses.replace(
            district.source, private_key_env=None, private_key_file=str(openssh_sftp.client_key_file)
        ),
    )
    archive = ArchiveResource(url=str(tmp_path / "archive"))
    resources = _resources(tmp_path, {"zipville": district}, archive)
    result = _ingest(instance, resources, "zipville")
    assert result.success, result
    archived = tmp_path / "archive" / "district=zipville" / f"date={NIGHT}"
    assert (archived / f"roster-{NIGHT}.zip").exists()
    assert _metadata(result, "oneroster/enrollments")["dagster/row_count"] > 0


def test_changed_host_key_fails_once_without_retries(sftp_server, tmp_path, monkeypatch, instance):
    generate_drop(Path(sftp_server.root) / "outbox" / NIGHT, 50, seed=1)
    monkeypatch.setenv("UNUSED_SFTP_PASSWORD", SFTP_PASSWORD)
    with SftpTestServer(tmp_path / "other") as impostor:
        wrong_key = impostor.host_key_openssh
    district = sftp_server.district(host_key=wrong_key)
    resources = _resources(tmp_path, {"lincoln": district}, ArchiveResource(url=str(tmp_path / "archive")))
    result = _ingest(instance, resources, "lincoln")
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert len(failures) == 1
    message = failures[0].step_failure_data.user_failure_data.description
    assert "host key" in message.lower() and "SHA256:" in message and "not retried" in message
    assert not [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert not (tmp_path / "archive" / "district=lincoln").exists()
    assert SFTP_PASSWORD not in _all_event_text(instance, result.run_id)


def test_a_linked_file_fails_the_night_and_its_target_is_nowhere(tmp_path, instance):
    canary = "CANARY-4d1a-root:$6$not-a-real-hash"
    secret = tmp_path / "etc" / "shadow"
    secret.parent.mkdir()
    secret.write_text(canary + "\n")
    drop = generate_drop(tmp_path / "drops" / "linked" / NIGHT, 50, seed=2)
    (drop.path / "orgs.csv").unlink()
    (drop.path / "orgs.csv").symlink_to(secret)
    source = LocalSource(path=str(tmp_path / "drops" / "linked"))
    district = District(id="linked", name="Linked", source=source)
    resources = _resources(tmp_path, {"linked": district}, ArchiveResource(url=str(tmp_path / "archive")))
    result = _ingest(instance, resources, "linked")
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    message = failures[0].step_failure_data.user_failure_data.description
    assert "SECURITY" in message and f"{NIGHT}/orgs.csv is a symbolic link" in message
    assert "not retried" in message
    assert not [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert canary not in _all_event_text(instance, result.run_id) and str(secret) not in message
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink() and p != secret]
    assert written and not [p for p in written if canary.encode() in p.read_bytes()]
    assert not (tmp_path / "archive" / "district=linked").exists()


def test_a_night_replays_from_the_archive_after_the_server_forgot_it(
    tmp_path, s3_bucket, monkeypatch, instance
):
    root = tmp_path / "sftp-root"
    drop = generate_drop(root / "outbox" / NIGHT, 150, seed=9)
    monkeypatch.setenv("LINCOLN_SFTP_PASSWORD", SFTP_PASSWORD)
    with SftpTestServer(root, {"alice": SFTP_PASSWORD}) as server:
        district = server.district()
        district = dataclasses.replace(
            district, source=dataclasses.replace(district.source, password_env="LINCOLN_SFTP_PASSWORD")
        )
        resources = _resources(tmp_path, {"lincoln": district}, _s3_archive(s3_bucket))
        assert _ingest(instance, resources, "lincoln").success
    # The server is gone and so are the district's files; the archive is all we have.
    for path in drop.path.iterdir():
        path.unlink()
    with resources["warehouse"].connect("lincoln") as conn:
        conn.execute("delete from oneroster.enrollments")
    replay = _ingest(instance, resources, "lincoln", assets=[oneroster_tables])
    assert replay.success
    with resources["warehouse"].connect("lincoln") as conn:
        rows = conn.execute("select count(*) from oneroster.enrollments where _date = ?", [NIGHT]).fetchone()[
            0
        ]
    assert rows == drop.files["enrollments.csv"].rows


def test_two_districts_sync_at_the_same_moment_in_separate_processes(tmp_path):
    home = tmp_path / "home"
    districts = {}
    for did in ("north", "south"):
        generate_drop(tmp_path / "drops" / did / NIGHT, 400, seed=len(did))
        districts[did] = District(id=did, name=did, source=LocalSource(path=str(tmp_path / "drops" / did)))
    registry = Registry(f"sqlite:///{home / 'registry.sqlite'}")
    for district in districts.values():
        registry.add(district)
    env = {**os.environ, "ETL_PROJECT_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    cli = [sys.executable, "-m", "etl_project.cli.main", "sync", "--date", NIGHT, "--settle-seconds", "0"]
    procs = [
        subprocess.Popen([*cli, "--district", did], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for did in districts
    ]
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output
        assert "succeeded" in output
    warehouse = WarehouseResource(root=str(home / "warehouse"))
    for did in districts:
        with warehouse.connect(did) as conn:
            assert conn.execute("select count(*) from oneroster.users").fetchone()[0] > 400

    # Offboarding one district removes its data and leaves the other alone.
    offboard = [sys.executable, "-m", "etl_project.cli.main", "offboard", "--district", "north", "--yes"]
    done = subprocess.run(offboard, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert warehouse.districts() == ["south"]


def test_sync_refuses_an_unknown_district_in_one_line(tmp_path):
    env = {**os.environ, "ETL_PROJECT_HOME": str(tmp_path)}
    cli = [sys.executable, "-m", "etl_project.cli.main", "sync", "--district", "nowhere", "--date", NIGHT]
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown district 'nowhere'" in done.stderr and "Traceback" not in done.stderr


def test_the_code_location_loads_with_every_job_resolved():
    from etl_project.definitions import defs

    Definitions.validate_loadable(defs)
    for job in ("nightly_sync", "replay_from_archive"):
        assert defs.resolve_job_def(job).partitions_def is not None
    for spec in defs.resolve_all_asset_specs():
        assert spec.description and spec.group_name and spec.kinds and spec.owners, spec.key
        assert spec.key.path[0] in {"raw", "archive", "oneroster", "lms", "reports"}
