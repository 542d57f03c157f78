"""The archive interface: every raw file of a night, stored before anything parses it (the system of record).

Layout under the archive's root (S3 prefix or local folder)::

    district=<id>/date=<YYYY-MM-DD>/<file>            each raw file, as fetched (versions kept)
    district=<id>/date=<YYYY-MM-DD>/_snapshot.json    the snapshot manifest

The snapshot manifest lists, per file, name, size, sha256, URI, version id and source host/path/mtime,
plus the district, night, source and the OneRoster CSV names the drop holds. It holds nothing volatile (no
fetch time, no run id), so re-archiving the same bytes rewrites nothing and creates no new versions. Changed
bytes create a new version; the old one stays retrievable by its version id (the manifest names the exact
versions of its night).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path

from etl_project.partitions import validate_district_id, validate_night
from etl_project.sources.base import FetchedFile, SourceInfo

SNAPSHOT_NAME = "_snapshot.json"
SNAPSHOT_FORMAT = "etl_project.snapshot/1"
_CONTENT_TYPES = {
    ".csv": "text/csv",
    ".zip": "application/zip",
    ".json": "application/json",
    ".parquet": "application/vnd.apache.parquet",
}
_BAD_NAME = re.compile(r"[/\\\x00-\x1f]")


class ArchiveError(Exception):
    pass


class SnapshotNotFound(ArchiveError):
    pass


class UnsafeArchiveEntry(ArchiveError):
    """A link, special file or file etl-project did not write where an archived artifact should be."""


class ArchiveIntegrityError(ArchiveError):
    """Bytes read back from the archive disagree with the snapshot manifest (size or sha256)."""


@dataclass(frozen=True)
class ArchivedFile:
    name: str
    size: int
    sha256: str
    uri: str
    version_id: str
    source_host: str | None = None
    source_path: str | None = None
    source_mtime: int | None = None
    local_path: str | None = None

    def to_manifest(self) -> dict:
        return {
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "uri": self.uri,
            "version_id": self.version_id,
            "source_host": self.source_host,
            "source_path": self.source_path,
            "source_mtime": self.source_mtime,
        }


@dataclass(frozen=True)
class Snapshot:
    district: str
    date: str
    files: list[ArchivedFile]
    manifest_uri: str
    manifest_version_id: str
    source: SourceInfo | None
    oneroster_files: list[str] = field(default_factory=list)

    def file(self, name: str) -> ArchivedFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"{name} is not in the {self.date} snapshot of {self.district}")


def content_type_for(name: str) -> str:
    return _CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def check_file_name(name: str) -> str:
    if (
        not name
        or name in (".", "..")
        or name.startswith(".")
        or _BAD_NAME.search(name)
        or name == SNAPSHOT_NAME
    ):
        raise ArchiveError(
            f"file name {name!r} cannot be archived (no path separators, leading dots or reserved)"
        )
    return name


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def oneroster_files(files: list[FetchedFile]) -> list[str]:
    """The CSV names a drop holds: the files, or a zip's entries (names only, nothing extracted)."""
    names: set[str] = set()
    for f in files:
        if f.name.lower().endswith(".csv"):
            names.add(f.name)
        elif f.name.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(f.local_path) as zf:
                    names.update(
                        Path(n).name
                        for n in zf.namelist()
                        if n.lower().endswith(".csv") and not n.endswith("/")
                    )
            except (zipfile.BadZipFile, OSError):
                continue  # ingest reports a broken zip with its own message
    return sorted(names)


def snapshot_manifest_bytes(
    district: str, date: str, files: list[ArchivedFile], source: SourceInfo | None, names: list[str]
) -> bytes:
    doc = {
        "format": SNAPSHOT_FORMAT,
        "district": district,
        "date": date,
        "source": source.to_dict() if source else None,
        "files": [f.to_manifest() for f in sorted(files, key=lambda f: f.name)],
        "oneroster_files": names,
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def snapshot_from_manifest(data: bytes, manifest_uri: str, manifest_version_id: str) -> Snapshot:
    doc = json.loads(data)
    src = doc.get("source")
    return Snapshot(
        district=doc["district"],
        date=doc["date"],
        files=[ArchivedFile(**f) for f in doc["files"]],
        manifest_uri=manifest_uri,
        manifest_version_id=manifest_version_id,
        source=SourceInfo(**src) if src else None,
        oneroster_files=list(doc.get("oneroster_files", [])),
    )


class Archive(ABC):
    """Write-once-per-content storage of raw drop files; subclasses store bytes, this keeps the rules."""

    prefix: str = ""

    # -- storage primitives (per backend) -----------------------------------------------------------------
    @abstractmethod
    def _store_file(self, key: str, path: str, sha256: str, size: int, content_type: str) -> tuple[str, str]:
        """Store a local file at ``key`` unless the latest version already has this sha256; (uri, version)."""

    @abstractmethod
    def _store_bytes(self, key: str, data: bytes, sha256: str, content_type: str) -> tuple[str, str]: ...

    @abstractmethod
    def _read_latest(self, key: str) -> tuple[bytes, str, str] | None:
        """(data, uri, version id) of the latest version, or None."""

    @abstractmethod
    def _download_version(self, key: str, version_id: str, dest: Path) -> None: ...

    @abstractmethod
    def _snapshot_nights(self, district: str) -> list[str]: ...

    @abstractmethod
    def purge_district(self, district: str) -> int:
        """Delete every version of everything the district has archived (offboarding); returns a count."""

    # -- the rules ------------------------------------------------------------------------------------------
    def key(self, district: str, date: str, name: str) -> str:
        return f"{self.prefix}district={validate_district_id(district)}/date={validate_night(date)}/{name}"

    def put_snapshot(
        self, district: str, date: str, files: list[FetchedFile], source: SourceInfo
    ) -> Snapshot:
        archived: list[ArchivedFile] = []
        for f in sorted(files, key=lambda f: f.name):
            check_file_name(f.name)
            uri, version = self._store_file(
                self.key(district, date, f.name), f.local_path, f.sha256, f.size, content_type_for(f.name)
            )
            archived.append(
                ArchivedFile(
                    f.name, f.size, f.sha256, uri, version, source.host, f.source_path, f.source_mtime
                )
            )
        names = oneroster_files(files)
        data = snapshot_manifest_bytes(district, date, archived, source, names)
        uri, version = self._store_bytes(
            self.key(district, date, SNAPSHOT_NAME),
            data,
            hashlib.sha256(data).hexdigest(),
            "application/json",
        )
        return Snapshot(district, date, archived, uri, version, source, names)

    def get_snapshot(self, district: str, date: str) -> Snapshot:
        found = self._read_latest(self.key(district, date, SNAPSHOT_NAME))
        if found is None:
            raise SnapshotNotFound(f"no archived snapshot for district {district} on {date}")
        data, uri, version = found
        try:
            return snapshot_from_manifest(data, uri, version)
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveIntegrityError(f"snapshot manifest {uri} is unreadable: {exc}") from None

    def download_snapshot(self, district: str, date: str, dest_dir: str) -> Snapshot:
        """Fetch the exact versions the snapshot lists into ``dest_dir`` and verify each size and sha256."""
        snap = self.get_snapshot(district, date)
        return replace(snap, files=self.download_files(district, date, snap.files, dest_dir))

    def download_files(
        self, district: str, date: str, files: list[ArchivedFile], dest_dir: str
    ) -> list[ArchivedFile]:
        """Fetch the given versions (e.g. from an older snapshot) and verify them; sets ``local_path``."""
        dest_root = Path(dest_dir)
        dest_root.mkdir(parents=True, exist_ok=True)
        downloaded = []
        for f in files:
            check_file_name(f.name)
            dest = dest_root / f.name
            self._download_version(self.key(district, date, f.name), f.version_id, dest)
            size, sha = sha256_of(dest)
            if (size, sha) != (f.size, f.sha256):
                dest.unlink(missing_ok=True)
                raise ArchiveIntegrityError(
                    f"{f.uri} version {f.version_id}: read back {size} bytes with sha256 {sha}, but the "
                    f"snapshot manifest says {f.size} bytes with sha256 {f.sha256}; "
                    "the archived copy is not the original"
                )
            downloaded.append(replace(f, local_path=str(dest)))
        return downloaded

    def list_nights(self, district: str) -> list[str]:
        validate_district_id(district)
        return sorted(self._snapshot_nights(district))

    def get_bytes(self, district: str, date: str, name: str) -> bytes | None:
        """The latest version of a generated artifact stored with ``put_bytes`` (None when there is none)."""
        check_file_name(name)
        found = self._read_latest(self.key(district, date, name))
        return found[0] if found else None

    def put_file(self, district: str, date: str, name: str, path: str | Path) -> ArchivedFile:
        """Archive a generated file (e.g. a night's table as Parquet) next to the night's raw files."""
        check_file_name(name)
        size, sha = sha256_of(path)
        key = self.key(district, date, name)
        uri, version = self._store_file(key, str(path), sha, size, content_type_for(name))
        return ArchivedFile(name, size, sha, uri, version)

    def district_key(self, district: str, name: str) -> str:
        """A district-wide object beside its nights (``district=<id>/<name>``), e.g. an index of them."""
        return f"{self.prefix}district={validate_district_id(district)}/{check_file_name(name)}"

    def get_district_bytes(self, district: str, name: str) -> bytes | None:
        found = self._read_latest(self.district_key(district, name))
        return found[0] if found else None

    def put_district_bytes(self, district: str, name: str, data: bytes, content_type: str) -> str:
        """Store a district-wide object; returns its URI."""
        key = self.district_key(district, name)
        return self._store_bytes(key, data, hashlib.sha256(data).hexdigest(), content_type)[0]

    def put_bytes(self, district: str, date: str, name: str, data: bytes, content_type: str) -> ArchivedFile:
        """Archive a generated artifact (e.g. a validation report) next to the night's raw files."""
        check_file_name(name)
        sha = hashlib.sha256(data).hexdigest()
        uri, version = self._store_bytes(self.key(district, date, name), data, sha, content_type)
        return ArchivedFile(name, len(data), sha, uri, version)
