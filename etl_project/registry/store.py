"""The district registry: districts and their encrypted credentials, in SQLite or PostgreSQL.

A row holds the district's settings in clear (name, time zone, source kind and non-secret settings such as
host, port, user and folder, the pinned host key) and its secrets (SFTP password or private key + passphrase,
REST client secret) as one Fernet token bound to the district id. Reading a district never needs the secret
key; reading its credentials does (``credentials``), and so does storing them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select

from etl_project.districts import (
    District,
    DistrictConfigError,
    LocalSource,
    RestSource,
    SftpSource,
    UnconnectedSource,
)
from etl_project.partitions import validate_district_id
from etl_project.registry.crypto import CredentialDecryptError, SecretBox
from etl_project.registry.db import Database, mask_url, upsert
from etl_project.registry.tables import districts
from etl_project.sources.base import RestCredentials, SftpCredentials

REGISTRY_URL_ENV = "ETL_PROJECT_REGISTRY_URL"
SECRET_FIELDS = {
    "local": (),
    "none": (),
    "sftp": ("password", "private_key", "passphrase"),
    "rest": ("client_secret",),
}
_COLUMNS = tuple(
    districts.c[name]
    for name in (
        "id",
        "name",
        "timezone",
        "enabled",
        "expected_by_hour",
        "thresholds",
        "source_kind",
        "source_settings",
        "host_key",
        "host_key_pinned_at",
        "secret_fields",
        "created_at",
        "updated_at",
    )
)


class DistrictNotFound(DistrictConfigError):
    pass


class DistrictExists(DistrictConfigError):
    pass


@dataclass(frozen=True)
class RegistryEntry:
    """A district as registered, with when it was added and which secrets are stored (never their values)."""

    district: District
    secret_fields: tuple[str, ...] = ()
    created_at: str = ""
    updated_at: str = ""
    host_key_pinned_at: str | None = None

    @property
    def id(self) -> str:
        return self.district.id


def registry_url(env: Mapping[str, str] | None = None) -> str:
    """``ETL_PROJECT_REGISTRY_URL``, else ``sqlite:///$ETL_PROJECT_HOME/registry.sqlite``."""
    from etl_project.settings import Settings

    env = os.environ if env is None else env
    return env.get(REGISTRY_URL_ENV) or Settings.from_env(dict(env)).registry_default_url


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def source_settings(district: District) -> tuple[str, dict[str, Any], str | None]:
    """(kind, non-secret settings, pinned host key) of a district's source."""
    src = district.source
    if isinstance(src, LocalSource):
        return "local", {"path": src.path}, None
    if isinstance(src, SftpSource):
        settings = {
            "host": src.host,
            "port": src.port,
            "username": src.username,
            "remote_dir": src.remote_dir,
        }
        return "sftp", settings, (src.host_key or None)
    if isinstance(src, RestSource):
        settings = {k: v for k, v in vars(src).items() if k not in ("kind", "client_secret_env")}
        return "rest", settings, None
    if isinstance(src, UnconnectedSource):
        return "none", {}, None
    raise DistrictConfigError(
        f"district {district.id}: unsupported source kind {getattr(src, 'kind', src)!r}"
    )


def _source(kind: str, settings: Mapping[str, Any], host_key: str | None):
    if kind == "local":
        return LocalSource(path=settings["path"])
    if kind == "sftp":
        return SftpSource(
            host=settings["host"],
            port=int(settings["port"]),
            username=settings["username"],
            remote_dir=settings["remote_dir"],
            host_key=host_key or "",
        )
    if kind == "rest":
        return RestSource(**settings)
    if kind == "none":
        return UnconnectedSource()
    raise DistrictConfigError(f"unknown source kind {kind!r} in the registry")


def validate_district(district: District) -> None:
    try:
        validate_district_id(district.id)
    except ValueError as exc:
        raise DistrictConfigError(str(exc)) from None
    try:
        zoneinfo.ZoneInfo(district.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DistrictConfigError(
            f"district {district.id!r}: unknown time zone {district.timezone!r}"
        ) from None
    if not 0 <= district.expected_by_hour <= 23:
        raise DistrictConfigError(f"district {district.id!r}: expected_by_hour must be 0..23")
    source_settings(district)


class Registry:
    """Districts in a database. ``env`` is where the secret key is read from (default: the environment)."""

    def __init__(self, url: str | None = None, env: Mapping[str, str] | None = None):
        self.url = url or registry_url(env)
        self._db = Database(self.url)
        self._env = env

    def __repr__(self) -> str:
        return f"Registry({mask_url(self.url)!r})"

    @property
    def location(self) -> str:
        return mask_url(self.url)

    def _box(self) -> SecretBox:
        return SecretBox.from_env(self._env)

    # -- reading ----------------------------------------------------------------------------------------
    def _entry(self, row: tuple) -> RegistryEntry:
        (did, name, tz, enabled, hour, thresholds, kind, settings, host_key, pinned_at, fields) = row[:11]
        district = District(
            id=did,
            name=name,
            source=_source(kind, json.loads(settings), host_key),
            timezone=tz,
            enabled=bool(enabled),
            expected_by_hour=int(hour),
            thresholds=json.loads(thresholds),
        )
        secret_fields = tuple(f for f in fields.split(",") if f)
        return RegistryEntry(district, secret_fields, row[11], row[12], pinned_at)

    def entries(self) -> list[RegistryEntry]:
        with self._db.transaction() as conn:
            rows = conn.execute(select(*_COLUMNS).order_by(districts.c.id)).all()
        return [self._entry(r) for r in rows]

    def entry(self, district_id: str) -> RegistryEntry:
        with self._db.transaction() as conn:
            rows = conn.execute(select(*_COLUMNS).where(districts.c.id == district_id)).all()
        if not rows:
            raise DistrictNotFound(
                f"district {district_id!r} is not configured: it is not registered in {self.location} "
                "(see `etl-project districts list`)"
            )
        return self._entry(rows[0])

    def all(self) -> dict[str, District]:
        return {e.id: e.district for e in self.entries()}

    def get(self, district_id: str) -> District:
        return self.entry(district_id).district

    def secrets(self, district_id: str) -> dict[str, str]:
        """The district's decrypted secrets ({} when none are stored; the secret key is needed otherwise)."""
        with self._db.transaction() as conn:
            rows = conn.execute(select(districts.c.credentials).where(districts.c.id == district_id)).all()
        if not rows:
            raise DistrictNotFound(f"district {district_id!r} is not registered in {self.location}")
        token = rows[0][0]
        if not token:
            return {}
        what = f"the credentials of district {district_id!r}"
        try:
            payload = json.loads(self._box().decrypt(token, what))
        except ValueError:
            raise CredentialDecryptError(f"{what} are not readable after decryption") from None
        if payload.get("district") != district_id:  # a token copied from another district's row
            raise CredentialDecryptError(f"{what} belong to another district; refusing to use them")
        return dict(payload.get("secrets", {}))

    def credentials(self, district_id: str):
        """``SftpCredentials`` / ``RestCredentials`` for the district, or None (local folder)."""
        entry = self.entry(district_id)
        kind = getattr(entry.district.source, "kind", "")
        if kind in ("local", "none"):
            return None
        secrets = self.secrets(district_id) if entry.secret_fields else {}
        if kind == "sftp":
            return SftpCredentials(**{k: secrets.get(k) for k in SECRET_FIELDS["sftp"]})
        if kind == "rest":
            client_id = entry.district.source.client_id
            if not secrets.get("client_secret"):
                raise DistrictConfigError(f"district {district_id!r}: no client secret is stored")
            return RestCredentials(client_id=client_id, client_secret=secrets["client_secret"])
        raise DistrictConfigError(f"district {district_id!r}: unsupported source kind {kind!r}")

    # -- writing ----------------------------------------------------------------------------------------
    def _seal(self, district_id: str, kind: str, secrets: Mapping[str, str | None]) -> tuple[str, str | None]:
        kept = {k: v for k, v in secrets.items() if v}
        unknown = sorted(set(kept) - set(SECRET_FIELDS[kind]))
        if unknown:
            raise DistrictConfigError(f"a {kind} district has no secret named {', '.join(unknown)}")
        if not kept:
            return "", None
        plaintext = json.dumps({"district": district_id, "secrets": kept}).encode()
        return ",".join(sorted(kept)), self._box().encrypt(plaintext)

    def add(
        self, district: District, secrets: Mapping[str, str | None] | None = None, *, replace: bool = False
    ) -> RegistryEntry:
        """Register a district (``replace``: overwrite one with the same id, keeping its created time)."""
        validate_district(district)
        kind, settings, host_key = source_settings(district)
        fields, token = self._seal(district.id, kind, secrets or {})
        now = _now()
        row = {
            "id": district.id,
            "name": district.name,
            "timezone": district.timezone,
            "enabled": int(district.enabled),
            "expected_by_hour": district.expected_by_hour,
            "thresholds": json.dumps(dict(district.thresholds)),
            "source_kind": kind,
            "source_settings": json.dumps(settings),
            "host_key": host_key,
            "host_key_pinned_at": now if host_key else None,
            "secret_fields": fields,
            "credentials": token,
            "created_at": now,
            "updated_at": now,
        }
        with self._db.transaction() as conn:
            exists = conn.execute(select(districts.c.id).where(districts.c.id == district.id)).first()
            if exists and not replace:
                raise DistrictExists(f"district {district.id!r} is already registered")
            insert = upsert(conn, districts).values(row)
            kept = {"id", "created_at"}  # replacing a district keeps its created time
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[districts.c.id],
                    set_={c: insert.excluded[c] for c in row if c not in kept},
                )
            )
        return self.entry(district.id)

    def update(
        self, district_id: str, secrets: Mapping[str, str | None] | None = None, **changes
    ) -> RegistryEntry:
        """Change settings (``name``, ``timezone``, ``expected_by_hour``, ``thresholds``, or source fields
        such as ``host``/``port``/``remote_dir``/``path``) and, when ``secrets`` is given, the secrets."""
        entry = self.entry(district_id)
        district = entry.district
        top = {
            k: changes.pop(k) for k in ("name", "timezone", "expected_by_hour", "thresholds") if k in changes
        }
        source = replace(district.source, **changes) if changes else district.source
        updated = replace(district, source=source, **top)
        validate_district(updated)
        kind, settings, _ = source_settings(updated)
        values = {
            "name": updated.name,
            "timezone": updated.timezone,
            "expected_by_hour": updated.expected_by_hour,
            "thresholds": json.dumps(dict(updated.thresholds)),
            "source_settings": json.dumps(settings),
            "updated_at": _now(),
        }
        if secrets is not None:
            values["secret_fields"], values["credentials"] = self._seal(district_id, kind, secrets)
        with self._db.transaction() as conn:
            conn.execute(districts.update().where(districts.c.id == district_id).values(values))
        return self.entry(district_id)

    def _set(self, district_id: str, **values: Any) -> None:
        self.entry(district_id)  # clear error when unknown
        with self._db.transaction() as conn:
            conn.execute(
                districts.update().where(districts.c.id == district_id).values(**values, updated_at=_now())
            )

    def set_enabled(self, district_id: str, enabled: bool) -> None:
        self._set(district_id, enabled=int(enabled))

    def pin_host_key(self, district_id: str, key_line: str) -> None:
        """Pin the SFTP server's host key (an OpenSSH public key line), as confirmed by the admin."""
        if getattr(self.get(district_id).source, "kind", "") != "sftp":
            raise DistrictConfigError(f"district {district_id!r} is not an SFTP district")
        self._set(district_id, host_key=key_line.strip(), host_key_pinned_at=_now())

    def forget_host_key(self, district_id: str) -> None:
        self._set(district_id, host_key=None, host_key_pinned_at=None)

    def remove(self, district_id: str) -> None:
        self.entry(district_id)
        with self._db.transaction() as conn:
            conn.execute(districts.delete().where(districts.c.id == district_id))

    def rotate_key(self) -> int:
        """Re-encrypt every stored credential with the current key, in one transaction; returns the count."""
        box = self._box()
        with self._db.transaction() as conn:
            rows = conn.execute(
                select(districts.c.id, districts.c.credentials)
                .where(districts.c.credentials.is_not(None))
                .order_by(districts.c.id)
            ).all()
            rotated = [
                (box.rotate(token, f"the credentials of district {did!r}"), did) for did, token in rows
            ]
            for token, did in rotated:
                conn.execute(districts.update().where(districts.c.id == did).values(credentials=token))
        return len(rotated)


def with_pinned_key(district: District, key_line: str) -> District:
    return replace(district, source=replace(district.source, host_key=key_line))


__all__ = [
    "DistrictExists",
    "DistrictNotFound",
    "Registry",
    "RegistryEntry",
    "registry_url",
    "with_pinned_key",
]
