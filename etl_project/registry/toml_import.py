"""``etl-project districts import FILE``: the TOML districts file as a one-time import into the registry.

The file keeps naming secrets by environment variable (``password_env``, ``private_key_env`` or
``private_key_file``, ``passphrase_env``, ``client_secret_env``): on import, they are read from there and
stored encrypted in the registry; afterwards the variables (and key files) are no longer needed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from etl_project.districts import DistrictConfigError, RestSource, SftpSource, load_districts
from etl_project.registry.store import Registry
from etl_project.sources.base import SourceConfigError


@dataclass(frozen=True)
class Imported:
    district_id: str
    secret_fields: tuple[str, ...]
    replaced: bool


def import_districts(
    registry: Registry, path: str | Path, *, replace_existing: bool = False
) -> list[Imported]:
    """Import every district of the file; all secrets are resolved before anything is written."""
    from etl_project.sources.rest_client import resolve_rest_credentials
    from etl_project.sources.sftp import resolve_credentials

    path = Path(path)
    if not path.exists():
        raise DistrictConfigError(f"{path} does not exist")
    districts = load_districts(path)
    existing = set(registry.all())
    clash = sorted(set(districts) & existing)
    if clash and not replace_existing:
        raise DistrictConfigError(
            f"{path}: already registered: {', '.join(clash)} (use --replace to overwrite them)"
        )
    prepared = []
    for did, district in districts.items():
        secrets: dict[str, str | None] = {}
        if isinstance(district.source, SftpSource):
            try:
                creds = resolve_credentials(district.source)
            except SourceConfigError as exc:
                raise DistrictConfigError(f"{path}: district {did!r}: {exc}") from None
            secrets = {"password": creds.password, "private_key": creds.private_key}
            secrets["passphrase"] = creds.passphrase
            source = replace(
                district.source,
                password_env=None,
                private_key_env=None,
                private_key_file=None,
                passphrase_env=None,
            )
            district = replace(district, source=source)
        elif isinstance(district.source, RestSource):
            try:
                secrets = {"client_secret": resolve_rest_credentials(district.source).client_secret}
            except SourceConfigError as exc:
                raise DistrictConfigError(f"{path}: district {did!r}: {exc}") from None
            district = replace(district, source=replace(district.source, client_secret_env=None))
        prepared.append((district, secrets))
    done = []
    for district, secrets in prepared:
        entry = registry.add(district, secrets, replace=replace_existing)
        done.append(Imported(district.id, entry.secret_fields, district.id in existing))
    return done
