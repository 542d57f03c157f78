"""Where nightly drops come from: a local folder or an SFTP server (OneRoster REST later).

``open_source(district)`` returns a ``DropSource``; discovery and completeness rules are in ``sources.drop``.
"""

from __future__ import annotations

from etl_project.districts import District, LocalSource, SftpSource
from etl_project.sources.base import (
    DropChanged,
    DropIncomplete,
    DropListing,
    DropNotFound,
    DropSource,
    FetchedFile,
    HostKeyMismatch,
    HostKeyRefused,
    RemoteFile,
    SftpCredentials,
    SourceAuthenticationFailed,
    SourceConfigError,
    SourceConnectionError,
    SourceError,
    SourceInfo,
    UnknownHostKey,
    drop_fingerprint,
)
from etl_project.sources.drop import compare_listings
from etl_project.sources.local import LocalDropSource
from etl_project.sources.sftp import SftpDropSource

__all__ = [
    "DropChanged",
    "DropIncomplete",
    "DropListing",
    "DropNotFound",
    "DropSource",
    "FetchedFile",
    "HostKeyMismatch",
    "HostKeyRefused",
    "LocalDropSource",
    "RemoteFile",
    "SftpCredentials",
    "SftpDropSource",
    "SourceAuthenticationFailed",
    "SourceConfigError",
    "SourceConnectionError",
    "SourceError",
    "SourceInfo",
    "UnknownHostKey",
    "compare_listings",
    "drop_fingerprint",
    "open_source",
]


def open_source(district: District, credentials: SftpCredentials | None = None) -> DropSource:
    """The district's drop source; SFTP secrets come from ``credentials`` or, when connecting, the env."""
    src = district.source
    if isinstance(src, LocalSource):
        return LocalDropSource(src.path)
    if isinstance(src, SftpSource):
        return SftpDropSource(src, credentials)
    raise SourceConfigError(f"district {district.id}: unsupported source kind {getattr(src, 'kind', src)!r}")
