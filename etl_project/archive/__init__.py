"""The raw-file archive (system of record): interface, local folder archive and S3 archive
(``etl_project.archive.s3``, imported only when the archive is on S3: boto3 is slow to import)."""

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

__all__ = [
    "SNAPSHOT_NAME",
    "Archive",
    "ArchiveError",
    "ArchiveIntegrityError",
    "ArchiveResource",
    "ArchivedFile",
    "LocalArchive",
    "Snapshot",
    "SnapshotNotFound",
    "open_archive",
]
