"""Where nightly drops come from: a local folder, an SFTP server or a OneRoster REST API.

``open_source(district)`` returns a ``DropSource``; discovery and completeness rules are in ``sources.drop``.
"""

from __future__ import annotations

from etl_project.districts import District, LocalSource, RestSource, SftpSource
from etl_project.sources.base import (
    DropChanged,
    DropIncomplete,
    DropListing,
    DropNotFound,
    DropSource,
    DropUnsafe,
    FetchedFile,
    HostKeyMismatch,
    HostKeyRefused,
    RemoteFile,
    RestCredentials,
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
from etl_project.sources.rest import RestDropSource
from etl_project.sources.rest_client import RestClient
from etl_project.sources.sftp import SftpDropSource

__all__ = [
    "DropChanged",
    "DropIncomplete",
    "DropListing",
    "DropNotFound",
    "DropSource",
    "DropUnsafe",
    "FetchedFile",
    "HostKeyMismatch",
    "HostKeyRefused",
    "LocalDropSource",
    "RemoteFile",
    "RestCredentials",
    "RestDropSource",
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


def open_source(
    district: District, credentials: SftpCredentials | RestCredentials | None = None
) -> DropSource:
    """The district's drop source; secrets come from ``credentials`` or, when connecting, the env."""
    src = district.source
    if isinstance(src, LocalSource):
        return LocalDropSource(src.path)
    if isinstance(src, SftpSource):
        if credentials is not None and not isinstance(credentials, SftpCredentials):
            raise SourceConfigError(f"district {district.id}: SFTP source needs SftpCredentials")
        return SftpDropSource(src, credentials)
    if isinstance(src, RestSource):
        if credentials is not None and not isinstance(credentials, RestCredentials):
            raise SourceConfigError(f"district {district.id}: REST source needs RestCredentials")
        return RestDropSource(RestClient(src, credentials))
    raise SourceConfigError(f"district {district.id}: unsupported source kind {getattr(src, 'kind', src)!r}")
