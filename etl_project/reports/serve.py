"""Serve the archived reports read-only on loopback, one district per capability URL.

Every district has an unguessable token: ``HMAC-SHA256(secret, district id)`` (base64url, 32 characters), the
secret coming from ``ETL_PROJECT_REPORTS_SECRET`` or, by default, a random key kept in
``$ETL_PROJECT_HOME/reports.secret`` (mode 0600). The only URLs are::

    /d/<token>/                                   -> redirect to the latest night's history page
    /d/<token>/date=<YYYY-MM-DD>/report.html      the night's report
    /d/<token>/date=<YYYY-MM-DD>/history.html     the 30 nights up to that night
    /d/<token>/date=<YYYY-MM-DD>/rejects.csv      every rejected row

The district comes from the token only and the file name from a fixed list, so no part of the URL is ever
used as a path: another district's pages, traversal (``..``, encoded or not) and anything else get 404.
Only GET and HEAD are answered. Pages are read from the archive (local folder or S3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from etl_project.archive.base import Archive, ArchiveError
from etl_project.reports.html import HISTORY_NAME, REJECTS_NAME, REPORT_NAME

SECRET_ENV = "ETL_PROJECT_REPORTS_SECRET"
BASE_URL_ENV = "ETL_PROJECT_REPORTS_URL"
SECRET_FILE = "reports.secret"
LOOPBACK = "127.0.0.1"
_TYPES = {
    REPORT_NAME: "text/html; charset=utf-8",
    HISTORY_NAME: "text/html; charset=utf-8",
    REJECTS_NAME: "text/csv; charset=utf-8",
}
_ROUTE = re.compile(
    r"^/d/(?P<token>[A-Za-z0-9_-]{32})/(?:date=(?P<date>\d{4}-\d{2}-\d{2})/"
    r"(?P<name>report\.html|history\.html|rejects\.csv))?$"
)
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a capability URL must not leak through the Referer header
    "Cache-Control": "no-store",
}


def report_secret(home: str, env: dict[str, str] | None = None) -> bytes:
    """The server-side secret behind the tokens (created once under ``home`` when not in the environment)."""
    env = dict(os.environ if env is None else env)
    if env.get(SECRET_ENV):
        return env[SECRET_ENV].encode()
    path = Path(home) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def district_token(secret: bytes, district: str) -> str:
    digest = hmac.new(secret, b"etl_project.report:" + district.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def district_path(secret: bytes, district: str) -> str:
    return f"/d/{district_token(secret, district)}/"


def report_link(secret: bytes, district: str, date: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}{district_path(secret, district)}date={date}/{REPORT_NAME}"


class TokenMap:
    """token -> district, recomputed (at most every ``refresh_seconds``) when a token is not known."""

    def __init__(self, secret: bytes, districts: Callable[[], Iterable[str]], refresh_seconds: float = 30.0):
        self.secret, self.districts, self.refresh_seconds = secret, districts, refresh_seconds
        self._map: dict[str, str] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()

    def _reload(self) -> None:
        self._map = {district_token(self.secret, d): d for d in self.districts()}
        self._loaded = time.monotonic()

    def lookup(self, token: str) -> str | None:
        with self._lock:
            if not self._loaded or (
                token not in self._map and time.monotonic() - self._loaded > self.refresh_seconds
            ):
                self._reload()
            for known, district in self._map.items():
                if hmac.compare_digest(known, token):
                    return district
        return None


def latest_report_night(archive: Archive, district: str) -> str | None:
    for night in sorted(archive.list_nights(district), reverse=True):
        if archive.get_bytes(district, night, REPORT_NAME) is not None:
            return night
    return None


def make_handler(archive: Archive, tokens: TokenMap) -> type[BaseHTTPRequestHandler]:
    class ReportHandler(BaseHTTPRequestHandler):
        server_version = "etl-project-reports"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:  # never log capability tokens
            path = re.sub(r"^/d/[^/]*", "/d/<token>", urlsplit(self.path).path)[:200]
            print(f"{self.command} {path} {args[1] if len(args) > 1 else ''}", flush=True)

        def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8", **extra: str):
            self.send_response(status)
            for k, v in {
                **_HEADERS,
                "Content-Type": ctype,
                "Content-Length": str(len(body)),
                **extra,
            }.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _not_found(self) -> None:
            self._send(HTTPStatus.NOT_FOUND, b"Not found\n")

        def do_GET(self) -> None:
            match = _ROUTE.match(urlsplit(self.path).path)
            district = tokens.lookup(match["token"]) if match else None
            if match is None or district is None:
                return self._not_found()
            try:
                if match["name"] is None:
                    night = latest_report_night(archive, district)
                    if night is None:
                        return self._not_found()
                    return self._send(HTTPStatus.FOUND, b"", Location=f"date={night}/{HISTORY_NAME}")
                data = archive.get_bytes(district, match["date"], match["name"])
            except (ArchiveError, ValueError):
                return self._not_found()
            if data is None:
                return self._not_found()
            extra = {"Content-Disposition": f'attachment; filename="{district}-{match["date"]}-rejects.csv"'}
            self._send(
                HTTPStatus.OK, data, _TYPES[match["name"]], **(extra if match["name"] == REJECTS_NAME else {})
            )

        do_HEAD = do_GET

        def _refuse(self) -> None:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"Read-only: GET and HEAD only\n", Allow="GET, HEAD")

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    return ReportHandler


def make_server(archive: Archive, tokens: TokenMap, port: int) -> ThreadingHTTPServer:
    """Bound to 127.0.0.1 only (put a TLS reverse proxy in front to publish it)."""
    server = ThreadingHTTPServer((LOOPBACK, port), make_handler(archive, tokens))
    server.daemon_threads = True
    return server
