"""The archive against a real S3 HTTP endpoint (moto server, versioned bucket) and as a local folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from etl_project.archive import (
    SNAPSHOT_NAME,
    ArchiveError,
    ArchiveIntegrityError,
    ArchiveResource,
    LocalArchive,
    SnapshotNotFound,
)
from etl_project.archive.s3 import S3Archive
from etl_project.sources import FetchedFile, SourceInfo
from etl_project_tests.drops import drop_files, zip_bytes

NIGHT = "2026-11-28"
SOURCE = SourceInfo(kind="sftp", host="sftp.lincoln.example:2222", path="/outbox")


def staged(folder: Path, files: dict[str, bytes | str], mtime: int = 1_790_000_000) -> list[FetchedFile]:
    """Files as a source's fetch leaves them in its staging folder."""
    folder.mkdir(parents=True, exist_ok=True)
    fetched = []
    for name, content in sorted(files.items()):
        data = content.encode() if isinstance(content, str) else content
        (folder / name).write_bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        fetched.append(
            FetchedFile(name, str(folder / name), len(data), sha, f"/outbox/{NIGHT}/{name}", mtime)
        )
    return fetched


class S3Backend:
    kind = "s3"

    def __init__(self, bucket, **kwargs):
        self.bucket = bucket
        self.client = bucket.client()
        self.archive = S3Archive(self.client, bucket.name, "raw", **kwargs)

    def version_count(self) -> int:
        resp = self.client.list_object_versions(Bucket=self.bucket.name, Prefix="raw/")
        return len(resp.get("Versions", []))

    def tamper(self, file) -> None:
        """Change the stored bytes of exactly this object version inside the S3 server."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        key = file.uri.removeprefix(f"s3://{self.bucket.name}/")
        stored = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets[self.bucket.name].keys.getlist(key)
        (version,) = [v for v in stored if v.version_id == file.version_id]
        version.value = b"sourcedId\nforged\n"


class LocalBackend:
    kind = "local"

    def __init__(self, root: Path):
        self.root = root
        self.archive = LocalArchive(root)

    def version_count(self) -> int:
        return sum(1 for p in (self.root / ".versions").rglob("*") if p.is_file())

    def tamper(self, file) -> None:
        key = file.uri.removeprefix(f"file://{self.root}/")
        path = self.root / ".versions" / key / file.version_id
        path.chmod(0o644)
        path.write_bytes(b"sourcedId\nforged\n")


@pytest.fixture(params=["s3", "local"])
def backend(request, tmp_path):
    if request.param == "s3":
        return S3Backend(request.getfixturevalue("s3_bucket"))
    return LocalBackend(tmp_path / "archive")


def test_snapshot_round_trip(backend, tmp_path):
    files = staged(tmp_path / "staging", drop_files())
    snap = backend.archive.put_snapshot("lincoln", NIGHT, files, SOURCE)
    assert [f.name for f in snap.files] == ["manifest.csv", "orgs.csv", "users.csv"]
    assert snap.oneroster_files == ["manifest.csv", "orgs.csv", "users.csv"]
    for archived, original in zip(snap.files, files, strict=True):
        assert (archived.size, archived.sha256) == (original.size, original.sha256)
        assert archived.uri.endswith(f"district=lincoln/date={NIGHT}/{original.name}") and archived.version_id
        assert (archived.source_host, archived.source_path) == (SOURCE.host, original.source_path)
        assert archived.source_mtime == original.source_mtime
    assert snap.manifest_uri.endswith(f"district=lincoln/date={NIGHT}/{SNAPSHOT_NAME}")

    again = backend.archive.get_snapshot("lincoln", NIGHT)
    assert again == snap
    down = backend.archive.download_snapshot("lincoln", NIGHT, str(tmp_path / "replay"))
    for f in down.files:
        assert Path(f.local_path).read_bytes() == (tmp_path / "staging" / f.name).read_bytes()
    assert backend.archive.list_nights("lincoln") == [NIGHT]
    assert backend.archive.list_nights("other") == []


def test_the_snapshot_manifest_is_plain_json_without_volatile_fields(backend, tmp_path):
    snap = backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "s", drop_files()), SOURCE)
    backend.archive.download_files("lincoln", NIGHT, [], str(tmp_path / "none"))
    if backend.kind == "s3":
        key = snap.manifest_uri.removeprefix(f"s3://{backend.bucket.name}/")
        doc = json.loads(backend.client.get_object(Bucket=backend.bucket.name, Key=key)["Body"].read())
    else:
        doc = json.loads(Path(snap.manifest_uri.removeprefix("file://")).read_text())
    assert doc["district"] == "lincoln" and doc["date"] == NIGHT and doc["source"] == SOURCE.to_dict()
    assert set(doc["files"][0]) == {
        "name", "size", "sha256", "uri", "version_id", "source_host", "source_path", "source_mtime",
    }  # fmt: skip
    assert not {"fetched_at", "run_id"} & set(doc)


def test_same_bytes_twice_make_no_new_versions(backend, tmp_path):
    first = backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "a", drop_files()), SOURCE)
    count = backend.version_count()
    second = backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "b", drop_files()), SOURCE)
    assert [f.version_id for f in second.files] == [f.version_id for f in first.files]
    assert second.manifest_version_id == first.manifest_version_id
    assert backend.version_count() == count == 4  # 3 files + the snapshot manifest


def test_changed_bytes_make_a_new_version_and_keep_the_old_one(backend, tmp_path):
    first = backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "a", drop_files()), SOURCE)
    changed = drop_files(extra_users=3)
    second = backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "b", changed), SOURCE)
    old, new = first.file("users.csv"), second.file("users.csv")
    assert old.version_id != new.version_id and old.sha256 != new.sha256
    assert first.file("orgs.csv").version_id == second.file("orgs.csv").version_id
    assert second.manifest_version_id != first.manifest_version_id
    assert backend.version_count() == 4 + 2  # users.csv and the manifest got one new version each
    (restored,) = backend.archive.download_files("lincoln", NIGHT, [old], str(tmp_path / "old"))
    assert Path(restored.local_path).read_text() == drop_files()["users.csv"]
    latest = backend.archive.download_snapshot("lincoln", NIGHT, str(tmp_path / "new"))
    assert Path(latest.file("users.csv").local_path).read_text() == changed["users.csv"]


def test_download_refuses_a_tampered_version(backend, tmp_path):
    snap = backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "a", drop_files()), SOURCE)
    backend.tamper(snap.file("users.csv"))
    with pytest.raises(ArchiveIntegrityError) as err:
        backend.archive.download_snapshot("lincoln", NIGHT, str(tmp_path / "replay"))
    assert "users.csv" in str(err.value) and snap.file("users.csv").sha256 in str(err.value)
    assert not (tmp_path / "replay" / "users.csv").exists()


def test_a_staged_file_that_changed_after_fetch_is_refused(backend, tmp_path):
    files = staged(tmp_path / "a", drop_files())
    Path(files[2].local_path).write_text(drop_files()["users.csv"].replace("Ada", "Eve"))
    with pytest.raises(ArchiveError):
        backend.archive.put_snapshot("lincoln", NIGHT, files, SOURCE)
    with pytest.raises(SnapshotNotFound, match=f"lincoln on {NIGHT}"):
        backend.archive.get_snapshot("lincoln", NIGHT)


def test_zip_drops_list_their_oneroster_files(backend, tmp_path):
    files = staged(tmp_path / "a", {"oneroster_20261128.zip": zip_bytes()})
    snap = backend.archive.put_snapshot("lincoln", NIGHT, files, SOURCE)
    assert [f.name for f in snap.files] == ["oneroster_20261128.zip"]
    assert snap.oneroster_files == ["manifest.csv", "orgs.csv", "users.csv"]


def test_put_bytes_is_idempotent_and_stays_out_of_the_snapshot(backend, tmp_path):
    backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "a", drop_files()), SOURCE)
    one = backend.archive.put_bytes("lincoln", NIGHT, "validation.html", b"<h1>ok</h1>", "text/html")
    two = backend.archive.put_bytes("lincoln", NIGHT, "validation.html", b"<h1>ok</h1>", "text/html")
    assert one == two and one.sha256 == hashlib.sha256(b"<h1>ok</h1>").hexdigest() and one.size == 11
    assert "validation.html" not in [f.name for f in backend.archive.get_snapshot("lincoln", NIGHT).files]
    for bad in ("../escape.csv", SNAPSHOT_NAME, ".hidden", "a/b.csv"):
        with pytest.raises(ArchiveError, match="cannot be archived"):
            backend.archive.put_bytes("lincoln", NIGHT, bad, b"x", "text/plain")


def test_purge_district_removes_every_version_and_nothing_else(backend, tmp_path):
    backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "a", drop_files()), SOURCE)
    backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "b", drop_files(2)), SOURCE)
    backend.archive.put_snapshot("jefferson", NIGHT, staged(tmp_path / "c", drop_files()), SOURCE)
    assert backend.archive.purge_district("lincoln") >= 6
    assert backend.archive.list_nights("lincoln") == []
    with pytest.raises(SnapshotNotFound):
        backend.archive.get_snapshot("lincoln", NIGHT)
    assert backend.archive.list_nights("jefferson") == [NIGHT]
    assert backend.version_count() == 4


def test_bad_district_or_night_is_refused(backend, tmp_path):
    with pytest.raises(ValueError, match="invalid district id"):
        backend.archive.get_snapshot("../etc", NIGHT)
    with pytest.raises(ValueError, match="invalid date"):
        backend.archive.get_snapshot("lincoln", "2026-11-28/..")


# ---------------------------------------------------------------------------------------------- S3 only


def test_every_object_is_encrypted_and_carries_its_sha256(s3_bucket, tmp_path):
    backend = S3Backend(s3_bucket)
    snap = backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "a", drop_files()), SOURCE)
    for f in [*snap.files, backend.archive.put_bytes("lincoln", NIGHT, "r.txt", b"report", "text/plain")]:
        key = f.uri.removeprefix(f"s3://{s3_bucket.name}/")
        head = backend.client.head_object(Bucket=s3_bucket.name, Key=key, VersionId=f.version_id)
        assert head["ServerSideEncryption"] == "AES256"
        assert head["Metadata"]["sha256"] == f.sha256
        assert key.startswith(f"raw/district=lincoln/date={NIGHT}/")
    manifest_key = snap.manifest_uri.removeprefix(f"s3://{s3_bucket.name}/")
    head = backend.client.head_object(Bucket=s3_bucket.name, Key=manifest_key)
    assert head["ServerSideEncryption"] == "AES256" and head["VersionId"] == snap.manifest_version_id


def test_kms_encryption_names_the_key(s3_bucket, tmp_path):
    backend = S3Backend(s3_bucket, sse="aws:kms", kms_key_id="alias/roster-archive")
    snap = backend.archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "a", drop_files()), SOURCE)
    key = snap.files[0].uri.removeprefix(f"s3://{s3_bucket.name}/")
    head = backend.client.head_object(Bucket=s3_bucket.name, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms" and "roster-archive" in head["SSEKMSKeyId"]
    with pytest.raises(ArchiveError, match="not supported"):
        S3Archive(backend.client, s3_bucket.name, sse="none")


def test_large_files_go_through_multipart_and_stay_idempotent(s3_bucket, tmp_path):
    backend = S3Backend(s3_bucket, multipart_threshold=5 * 1024 * 1024)
    big = "".join(f"u{i},,,true,org1,student,user{i},,Given,Family{i}\n" for i in range(260_000))
    files = staged(tmp_path / "a", {**drop_files(), "users.csv": drop_files()["users.csv"] + big})
    assert files[2].size > 11 * 1024 * 1024
    first = backend.archive.put_snapshot("lincoln", NIGHT, files, SOURCE)
    count = backend.version_count()
    second = backend.archive.put_snapshot("lincoln", NIGHT, files, SOURCE)
    assert second.file("users.csv").version_id == first.file("users.csv").version_id
    assert backend.version_count() == count
    down = backend.archive.download_snapshot("lincoln", NIGHT, str(tmp_path / "replay"))
    assert Path(down.file("users.csv").local_path).read_bytes() == Path(files[2].local_path).read_bytes()


def test_an_unversioned_bucket_is_refused(s3_bucket, tmp_path):
    client = s3_bucket.client()
    client.create_bucket(Bucket="plain-bucket")
    archive = S3Archive(client, "plain-bucket")
    with pytest.raises(ArchiveError, match="versioning"):
        archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "a", drop_files()), SOURCE)


def test_archive_resource_opens_s3_and_local_archives(s3_bucket, tmp_path):
    resource = ArchiveResource(
        url=f"s3://{s3_bucket.name}/roster",
        s3_endpoint_url=s3_bucket.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    archive = resource.open()
    assert isinstance(archive, S3Archive) and archive.prefix == "roster/"
    snap = archive.put_snapshot("lincoln", NIGHT, staged(tmp_path / "a", drop_files()), SOURCE)
    assert snap.manifest_uri == f"s3://{s3_bucket.name}/roster/district=lincoln/date={NIGHT}/{SNAPSHOT_NAME}"
    # every step of a run opens the archive: they share one client (building one costs 0.15 s of CPU)
    assert resource.open().client is archive.client
    other = ArchiveResource(url=resource.url, s3_endpoint_url=s3_bucket.endpoint_url, aws_access_key_id="x",
                            aws_secret_access_key="testing")  # fmt: skip
    assert other.open().client is not archive.client  # other credentials, another client
    local = ArchiveResource(url=str(tmp_path / "folder")).open()
    assert isinstance(local, LocalArchive) and local.list_nights("lincoln") == []
    with pytest.raises(ArchiveError, match="use s3://"):
        ArchiveResource(url="gs://bucket/x").open()
