"""The district model: where a district's nightly drop comes from, its time zone and its safety thresholds.

Districts live in the registry (etl_project/registry: a database, credentials encrypted at rest), which
``DistrictsResource`` (resource.py) reads; toml_format.py is the TOML file format that can be imported into
it. Secrets are never held here: a source names the environment variables that hold them, resolved only when
a connection is opened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class DistrictConfigError(ValueError):
    pass


class MissingSecret(DistrictConfigError):
    pass


def resolve_secret(env_name: str | None, what: str) -> str | None:
    """Read a secret from the environment variable it is referenced by; the value is never logged."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise MissingSecret(f"{what}: environment variable {env_name} is not set")
    return value


@dataclass(frozen=True)
class LocalSource:
    """A folder on this machine (the embedded default, and districts that push to a server we run)."""

    path: str
    kind: str = "local"

    def describe(self) -> str:
        return f"local folder {self.path}"


@dataclass(frozen=True)
class SftpSource:
    host: str
    username: str
    remote_dir: str
    host_key: str
    port: int = 22
    password_env: str | None = None
    private_key_env: str | None = None
    private_key_file: str | None = None
    passphrase_env: str | None = None
    kind: str = "sftp"

    def describe(self) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}{self.remote_dir}"


REST_VERSIONS = ("1.1", "1.2")
REST_AUTH = ("oauth2", "oauth1")
REST_OAUTH1_SIGNATURE_METHODS = ("HMAC-SHA256", "HMAC-SHA1")


@dataclass(frozen=True)
class RestSource:
    """A OneRoster REST API. ``base_url`` is the service base (``.../ims/oneroster/v1p1`` or
    ``.../ims/oneroster/rostering/v1p2``); the client secret is read from ``client_secret_env`` (or passed
    explicitly as ``RestCredentials``), never written here."""

    base_url: str
    client_id: str
    version: str = "1.2"
    auth: str = "oauth2"
    token_url: str | None = None
    client_secret_env: str | None = None
    scope: str | None = None
    oauth1_signature_method: str | None = None  # None: HMAC-SHA256, OneRoster 1.1's; or "HMAC-SHA1"
    page_size: int = 1000
    timeout: float = 60.0
    kind: str = "rest"

    def describe(self) -> str:
        return f"OneRoster {self.version} REST {self.base_url}"


@dataclass(frozen=True)
class UnconnectedSource:
    """No source yet: a district an operator created in the portal before its admin entered their SFTP
    server or OneRoster API. Nothing polls it, schedules its nights or expects its drops until one is set."""

    kind: str = "none"

    def describe(self) -> str:
        return "not connected yet"


Source = LocalSource | SftpSource | RestSource | UnconnectedSource


@dataclass(frozen=True)
class District:
    id: str
    name: str
    source: Source
    timezone: str = "UTC"
    enabled: bool = True
    expected_by_hour: int = 6
    thresholds: Mapping[str, Any] = field(default_factory=dict)


def connected(district: District) -> bool:
    """The district has a source to poll (sensor, schedule and freshness checks skip one that has not)."""
    return getattr(district.source, "kind", "") != UnconnectedSource.kind
