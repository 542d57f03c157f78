"""The capability URLs of the archived reports: one unguessable link per district.

Every district has an unguessable token: ``HMAC-SHA256(secret, district id)`` (base64url, 32 characters), the
secret coming from ``ETL_PROJECT_REPORTS_SECRET`` or, by default, a random key kept in
``$ETL_PROJECT_HOME/reports.secret`` (mode 0600). The only URLs are::

    /d/<token>/                                   -> redirect to the latest night's history page
    /d/<token>/date=<YYYY-MM-DD>/report.html      the night's report
    /d/<token>/date=<YYYY-MM-DD>/history.html     the 30 nights up to that night
    /d/<token>/date=<YYYY-MM-DD>/rejects.csv      every rejected row

The pages are served by ``reports.app`` (a Starlette app) under uvicorn (``reports.server``); this module
holds the tokens only, so alerts can build links without importing the web stack.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from etl_project.archive.base import Archive
from etl_project.reports.html import REPORT_NAME

SECRET_ENV = "ETL_PROJECT_REPORTS_SECRET"
BASE_URL_ENV = "ETL_PROJECT_REPORTS_URL"
SECRET_FILE = "reports.secret"


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
