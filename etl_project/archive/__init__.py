"""The raw-file archive (system of record): interface, local folder archive and S3 archive."""

from etl_project.archive.base import (
    SNAPSHOT_NAME,
    Archive,
    ArchivedFile,
    ArchiveError,
    ArchiveIntegrityError,
    Snapshot,
    SnapshotNotFound,
)
from etl_project.archive.local import LocalArchive
from etl_project.archive.resource import ArchiveResource, open_archive
from etl_project.archive.s3 import S3Archive

__all__ = [
    "SNAPSHOT_NAME",
    "Archive",
    "ArchiveError",
    "ArchiveIntegrityError",
    "ArchiveResource",
    "ArchivedFile",
    "LocalArchive",
    "S3Archive",
    "Snapshot",
    "SnapshotNotFound",
    "open_archive",
]
