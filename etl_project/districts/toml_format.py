"""The TOML districts file: read (``etl-project districts import FILE``) and written (the demo, tests).

Secrets are never written in that file: it names the environment variables that hold them (``password_env``,
``private_key_env``), and they are resolved only when a connection is opened. Example::

    [districts.lincoln]
    name = "Lincoln Public Schools"
    timezone = "America/Chicago"

    [districts.lincoln.source]
    kind = "sftp"
    host = "sftp.lincoln.k12.example"
    port = 22
    username = "oneroster"
    password_env = "LINCOLN_SFTP_PASSWORD"      # or private_key_env / private_key_file
    host_key = "ssh-ed25519 AAAAC3Nza..."       # pinned; unknown or changed keys are refused
    remote_dir = "/outbox"

    [districts.demo.source]
    kind = "local"
    path = "/srv/dropbox/demo"

    [districts.jefferson.source]
    kind = "rest"                                # OneRoster REST API
    base_url = "https://sis.jefferson.k12.example/ims/oneroster/v1p1"
    version = "1.1"                              # or "1.2"
    auth = "oauth2"                              # client credentials; or "oauth1" (HMAC-SHA256 signing;
                                                 # oauth1_signature_method = "HMAC-SHA1" for older providers)
    token_url = "https://sis.jefferson.k12.example/oauth/token"
    client_id = "etl-project"
    client_secret_env = "JEFFERSON_CLIENT_SECRET"

Safety thresholds for the LMS load (optional; defaults: hold when > 10% of an entity would be deactivated
or > 75% updated). A percentage ("5%") or a count (500), for every entity or per entity table; parsed and
checked by etl_project/lms/thresholds.py::

    [districts.lincoln.thresholds]
    hold = "deactivations"      # "all" (default) holds the whole night; "deactivations" applies the rest
    deactivate = "5%"
    update = "75%"
    [districts.lincoln.thresholds.enrollments]
    deactivate = 2000
"""

from __future__ import annotations

import os
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etl_project.districts.model import (
    REST_AUTH,
    REST_OAUTH1_SIGNATURE_METHODS,
    REST_VERSIONS,
    District,
    DistrictConfigError,
    LocalSource,
    RestSource,
    SftpSource,
    Source,
    UnconnectedSource,
)
from etl_project.partitions import validate_district_id

_SECRET_KEYS = {"password", "private_key", "passphrase", "secret", "client_secret", "token"}


def _reject_plain_secrets(where: str, table: Mapping[str, Any]) -> None:
    found = sorted(k for k in table if k.lower() in _SECRET_KEYS)
    if found:
        raise DistrictConfigError(
            f"{where}: {', '.join(found)} must not be written in the config file; "
            f"put the secret in an environment variable and reference it with {found[0]}_env"
        )


def _source_from(where: str, raw: Mapping[str, Any]) -> Source:
    _reject_plain_secrets(where, raw)
    kind = raw.get("kind", "local")
    try:
        if kind == "local":
            return LocalSource(path=str(Path(raw["path"]).expanduser()))
        if kind == "sftp":
            if not raw.get("host_key"):
                raise DistrictConfigError(f"{where}: host_key is required (SFTP host keys are always pinned)")
            if not (raw.get("password_env") or raw.get("private_key_env") or raw.get("private_key_file")):
                raise DistrictConfigError(f"{where}: set password_env, private_key_env or private_key_file")
            return SftpSource(
                host=raw["host"],
                port=int(raw.get("port", 22)),
                username=raw["username"],
                remote_dir=raw.get("remote_dir", "/"),
                host_key=raw["host_key"].strip(),
                password_env=raw.get("password_env"),
                private_key_env=raw.get("private_key_env"),
                private_key_file=raw.get("private_key_file"),
                passphrase_env=raw.get("passphrase_env"),
            )
        if kind == "rest":
            return _rest_source_from(where, raw)
        if kind == "none":  # created in the portal; its admin has not connected a source yet
            return UnconnectedSource()
    except KeyError as missing:
        raise DistrictConfigError(f"{where}: missing {missing.args[0]}") from None
    raise DistrictConfigError(
        f"{where}: unknown source kind {kind!r} (expected 'local', 'sftp', 'rest' or 'none')"
    )


def _rest_source_from(where: str, raw: Mapping[str, Any]) -> RestSource:
    base_url = str(raw["base_url"]).rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise DistrictConfigError(f"{where}: base_url must be an http(s) URL, got {base_url!r}")
    version = str(raw.get("version", "1.2"))
    if version not in REST_VERSIONS:
        raise DistrictConfigError(
            f"{where}: version must be one of {', '.join(REST_VERSIONS)}, got {version!r}"
        )
    auth = str(raw.get("auth", "oauth2"))
    if auth not in REST_AUTH:
        raise DistrictConfigError(f"{where}: auth must be 'oauth2' or 'oauth1', got {auth!r}")
    if auth == "oauth2" and not raw.get("token_url"):
        raise DistrictConfigError(f'{where}: token_url is required for auth = "oauth2"')
    signature_method = raw.get("oauth1_signature_method")
    if signature_method not in (None, *REST_OAUTH1_SIGNATURE_METHODS):
        raise DistrictConfigError(
            f"{where}: oauth1_signature_method must be one of {', '.join(REST_OAUTH1_SIGNATURE_METHODS)}, "
            f"got {signature_method!r}"
        )
    try:
        page_size, timeout = int(raw.get("page_size", 1000)), float(raw.get("timeout", 60.0))
    except (TypeError, ValueError):
        raise DistrictConfigError(f"{where}: page_size and timeout must be numbers") from None
    if page_size < 1 or timeout <= 0:
        raise DistrictConfigError(f"{where}: page_size and timeout must be positive")
    return RestSource(
        base_url=base_url,
        client_id=str(raw["client_id"]),
        version=version,
        auth=auth,
        token_url=raw.get("token_url"),
        client_secret_env=raw.get("client_secret_env"),
        scope=raw.get("scope"),
        oauth1_signature_method=signature_method,
        page_size=page_size,
        timeout=timeout,
    )


def district_from_mapping(district_id: str, raw: Mapping[str, Any]) -> District:
    where = f"district {district_id!r}"
    try:
        validate_district_id(district_id)
    except ValueError as exc:
        raise DistrictConfigError(str(exc)) from None
    _reject_plain_secrets(where, raw)
    timezone = raw.get("timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DistrictConfigError(f"{where}: unknown time zone {timezone!r}") from None
    if "source" not in raw:
        raise DistrictConfigError(f"{where}: missing [districts.{district_id}.source]")
    return District(
        id=district_id,
        name=raw.get("name", district_id),
        source=_source_from(f"{where} source", raw["source"]),
        timezone=timezone,
        enabled=bool(raw.get("enabled", True)),
        expected_by_hour=int(raw.get("expected_by_hour", 6)),
        thresholds=dict(raw.get("thresholds", {})),
    )


def load_districts(path: str | os.PathLike[str]) -> dict[str, District]:
    """Load every district from a TOML file; a missing file means no districts yet."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DistrictConfigError(f"{path}: {exc}") from None
    return {did: district_from_mapping(did, raw) for did, raw in data.get("districts", {}).items()}


def to_toml(districts: Mapping[str, District]) -> str:
    """Write districts back as TOML (used by the demo to register its district). Holds no secrets."""
    lines: list[str] = []
    for d in districts.values():
        lines += [f"[districts.{d.id}]", f"name = {_q(d.name)}", f"timezone = {_q(d.timezone)}"]
        lines += [
            f"enabled = {'true' if d.enabled else 'false'}",
            f"expected_by_hour = {d.expected_by_hour}",
            "",
        ]
        lines.append(f"[districts.{d.id}.source]")
        for key, value in vars(d.source).items():
            if value is not None:
                plain = isinstance(value, int | float) and not isinstance(value, bool)
                lines.append(f"{key} = {value if plain else _q(str(value))}")
        lines.append("")
        lines += _toml_table(f"districts.{d.id}.thresholds", d.thresholds)
    return "\n".join(lines)


def _toml_table(name: str, table: Mapping[str, Any]) -> list[str]:
    """A (possibly nested) table of scalars, e.g. thresholds with per-entity sub-tables."""
    if not table:
        return []
    scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    lines = [f"[{name}]"]
    for key, value in scalars.items():
        plain = isinstance(value, int | float) and not isinstance(value, bool)
        lines.append(f"{key} = {value if plain else _q(str(value))}")
    lines.append("")
    for key, value in table.items():
        if isinstance(value, Mapping):
            lines += _toml_table(f"{name}.{key}", value)
    return lines


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
