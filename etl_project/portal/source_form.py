"""A district admin's source form (SFTP or OneRoster REST) read into a source and its new secrets.

Every problem is one sentence naming the field and what to do. Hosts and URLs pass the tenant guard
(``portal_services.ssrf``) here, before anything is stored or connects. Secrets left empty keep the stored
ones when the kind of source stays the same (so settings can change without re-typing a password)."""

from __future__ import annotations

from dataclasses import dataclass

from etl_project.districts import District, RestSource, SftpSource
from etl_project.districts.model import REST_AUTH, REST_VERSIONS
from etl_project.portal_services.ssrf import UnsafeHost, check_host, check_url

KINDS = ("sftp", "rest")
SFTP_SETTINGS = ("host", "port", "username", "remote_dir")
REST_SETTINGS = ("base_url", "client_id", "version", "auth", "token_url")


class FormProblem(ValueError):
    """One sentence for the admin; never holds a secret."""


@dataclass(frozen=True)
class SourceChange:
    source: SftpSource | RestSource
    secrets: dict[str, str | None] | None  # None: keep the stored secrets

    @property
    def settings(self) -> dict[str, object]:
        names = SFTP_SETTINGS if self.source.kind == "sftp" else REST_SETTINGS
        return {n: getattr(self.source, n) for n in names}


def _text(form: dict[str, str], name: str, label: str, required: bool = True, limit: int = 500) -> str:
    value = form.get(name, "").strip()
    if required and not value:
        raise FormProblem(f"{label} is empty: fill it in.")
    if len(value) > limit or any(c in value for c in "\r\n\t\0"):
        raise FormProblem(f"{label} must be one line of at most {limit} characters.")
    return value


def _port(form: dict[str, str]) -> int:
    raw = form.get("port", "").strip() or "22"
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise FormProblem(f"Port {raw!r} is not a port number: enter 1 to 65535 (SFTP is usually 22).")
    return int(raw)


def _guarded(check, *args) -> None:
    try:
        check(*args)
    except UnsafeHost as exc:
        raise FormProblem(f"{exc}.") from None


def _sftp_secrets(form: dict[str, str], who: str, keep: bool) -> dict[str, str | None] | None:
    from etl_project.sources import SourceConfigError
    from etl_project.sources.sftp import load_private_key

    password = form.get("password", "")
    key = form.get("private_key", "").replace("\r\n", "\n").strip()
    passphrase = form.get("passphrase", "") or None
    if password and key:
        raise FormProblem("Enter either a password or a private key, not both.")
    if passphrase and not key:
        raise FormProblem("A passphrase goes with a private key: paste the key too, or leave it empty.")
    if key:
        try:
            load_private_key(key + "\n", passphrase, who)  # an unusable key is refused now, not at 2 a.m.
        except SourceConfigError as exc:
            raise FormProblem(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from None
        return {"private_key": key + "\n", "passphrase": passphrase}
    if password:
        return {"password": password}
    if keep:
        return None
    raise FormProblem("Enter the SFTP password or paste the private key the district gave you.")


def read_sftp(form: dict[str, str], current: District, stored: bool) -> SourceChange:
    host = _text(form, "host", "Host", limit=253).rstrip(".")
    port = _port(form)
    username = _text(form, "username", "User", limit=64)
    remote_dir = _text(form, "remote_dir", "Folder", required=False) or "/"
    _guarded(check_host, host, port)
    was = current.source
    same_server = isinstance(was, SftpSource) and (was.host, was.port) == (host, port)
    secrets = _sftp_secrets(form, f"{username}@{host}", keep=stored and isinstance(was, SftpSource))
    host_key = was.host_key if same_server else ""  # another server: its key must be confirmed again
    return SourceChange(SftpSource(host, username, remote_dir, host_key, port), secrets)


def read_rest(form: dict[str, str], current: District, stored: bool) -> SourceChange:
    base_url = _text(form, "base_url", "Base URL", limit=2000).rstrip("/")
    client_id = _text(form, "client_id", "Client id", limit=200)
    version, auth = form.get("version", "1.2"), form.get("auth", "oauth2")
    if version not in REST_VERSIONS or auth not in REST_AUTH:
        raise FormProblem(f"Choose OneRoster {' or '.join(REST_VERSIONS)} and OAuth 1 or 2.")
    token_url = _text(form, "token_url", "Token URL", required=auth == "oauth2", limit=2000) or None
    for url in filter(None, (base_url, token_url)):
        _guarded(check_url, url)
    secret = form.get("client_secret", "")
    if not secret and not (stored and isinstance(current.source, RestSource)):
        raise FormProblem("Client secret is empty: enter the secret your SIS issued with the client id.")
    source = RestSource(base_url, client_id, version=version, auth=auth, token_url=token_url)
    return SourceChange(source, {"client_secret": secret} if secret else None)


def read_source(form: dict[str, str], current: District, stored: bool) -> SourceChange:
    """The source the form describes; ``stored``: the district has secrets stored now."""
    kind = form.get("kind", "")
    if kind not in KINDS:
        raise FormProblem("Choose SFTP or OneRoster REST.")
    return (read_sftp if kind == "sftp" else read_rest)(form, current, stored)
