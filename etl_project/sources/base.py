"""Public types and errors shared by every drop source (local folder, SFTP, later OneRoster REST).

Nothing here ever holds a secret: ``SourceInfo`` names the kind, host and path only, and error messages name
``user@host:port`` at most.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


class SourceError(Exception):
    """Base of every source failure. ``permanent`` errors will not fix themselves by retrying."""

    permanent = False


class SourceConfigError(SourceError):
    """The district's source settings cannot work (bad host key line, unreadable private key, ...)."""

    permanent = True


class SourceConnectionError(SourceError):
    """The server could not be reached or dropped the connection (worth retrying)."""


class SourceAuthenticationFailed(SourceError):
    permanent = True


class HostKeyRefused(SourceError):
    """The server's host key is not a pinned one; nothing was sent to it."""

    permanent = True

    def __init__(self, message: str, *, host: str, port: int, expected: list[str], offered: str):
        super().__init__(message)
        self.host, self.port, self.expected, self.offered = host, port, expected, offered


class HostKeyMismatch(HostKeyRefused):
    """A key of a pinned type was offered, but it is not the pinned key (the key changed)."""


class UnknownHostKey(HostKeyRefused):
    """The server offered a key of a type that has no pin (or no key is pinned at all)."""


class DropNotFound(SourceError):
    """No drop for the night (yet)."""


class DropIncomplete(SourceError):
    """A drop exists but is not finished (or not usable); ``reason`` says why in plain language."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class DropUnsafe(SourceError):
    """The drop holds a symbolic link or a special file: refused whole, nothing behind the entry was read."""

    permanent = True


class DropChanged(SourceError):
    """A file changed while it was downloaded, or the bytes received disagree with the listing."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    path: str
    size: int
    mtime: int


@dataclass(frozen=True)
class DropListing:
    """One drop as seen at the source. ``dated`` is False for the undated "current" drop.

    ``night`` is the night asked for (``find_drop``) or the night in the drop's name (``list_drops``; None for
    the undated current drop there).
    """

    night: str | None
    location: str
    kind: Literal["folder", "zip", "rest"]
    files: tuple[RemoteFile, ...]
    fingerprint: str
    dated: bool = True

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class FetchedFile:
    name: str
    local_path: str
    size: int
    sha256: str
    source_path: str
    source_mtime: int


@dataclass(frozen=True)
class SourceInfo:
    """Where a drop came from, for lineage. Never holds credentials."""

    kind: str
    host: str | None
    path: str

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "host": self.host, "path": self.path}


@dataclass(frozen=True)
class SftpCredentials:
    """Explicit SFTP secrets (e.g. decrypted from the district registry). ``repr`` never shows them."""

    password: str | None = None
    private_key: str | None = None
    passphrase: str | None = None

    def __repr__(self) -> str:
        shown = [k for k in ("password", "private_key", "passphrase") if getattr(self, k)]
        return f"SftpCredentials(<{', '.join(shown) or 'empty'} set>)"

    __str__ = __repr__


@dataclass(frozen=True)
class RestCredentials:
    """Explicit OneRoster REST client credentials (e.g. from the district registry); repr hides the secret."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"RestCredentials(client_id={self.client_id!r}, <client_secret set>)"

    __str__ = __repr__


def drop_fingerprint(files: Iterable[RemoteFile]) -> str:
    """sha256 over the sorted (name, size, mtime) triples: changes whenever any file of the drop changes."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.name):
        h.update(f"{f.name}\0{f.size}\0{f.mtime}\n".encode())
    return h.hexdigest()


@runtime_checkable
class DropSource(Protocol):
    info: SourceInfo

    def find_drop(self, date: str, settle_seconds: float = 30.0) -> DropListing: ...

    def list_drops(self) -> list[DropListing]: ...

    def fetch(self, listing: DropListing, dest_dir: str) -> list[FetchedFile]: ...

    def close(self) -> None: ...

    def __enter__(self) -> DropSource: ...

    def __exit__(self, *exc: object) -> None: ...
