"""A district's OneRoster REST API (1.1 or 1.2) as a drop source: the pull is written as a CSV drop.

* **Auth**: OAuth 2 client credentials (``client_secret_basic`` at ``token_url``; the token is cached, renewed
  before ``expires_in`` runs out, and once more on a 401 in mid-pull) or OAuth 1.0a HMAC-SHA1 request signing
  (every query parameter signed). Refused credentials raise ``SourceAuthenticationFailed`` (permanent). No
  secret or token ever reaches a log line or an exception: messages name the client id and URL at most, and
  any server text quoted in them is scrubbed.
* **Paging**: ``limit``/``offset``; ``X-Total-Count`` says when to stop; a ``Link: <...>; rel="next"`` header
  is followed when present; without either, the pull goes on until a page is empty or shorter than the
  largest page seen (so a provider that caps ``limit`` below the page size asked for is still read fully).
* **Retries**: 429, 5xx, timeouts and connection errors are retried with exponential backoff and jitter, and
  ``Retry-After`` is honoured; attempts and total time are bounded (``RetryPolicy``). The sleep function,
  clock and random source are injectable so tests run without sleeping.
* **Output** (``fetch``): one CSV per collection with the version's exact OneRoster CSV header (from
  ``oneroster.spec``), ``manifest.csv`` (every pulled file ``bulk``), and every raw JSON page as
  ``raw__<collection>__<NNNN>.json`` (flat names, because archive keys are flat). 1.2 users' ``roles[]``
  become ``roles.csv``. ``load_drop`` ignores the raw pages.

Per-row Python is used to map JSON to CSV rows; the pull is bound by HTTP round trips, not by this mapping.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email.utils
import hashlib
import http.client
import io
import json
import logging
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, quote_plus, urlencode, urljoin, urlsplit, urlunsplit

from etl_project.districts import MissingSecret, RestSource, resolve_secret
from etl_project.oneroster.spec import (
    BY_FILE,
    IGNORED,
    MANIFEST,
    SPECS,
    TableSpec,
)
from etl_project.sources.base import (
    DropListing,
    FetchedFile,
    RestCredentials,
    SourceAuthenticationFailed,
    SourceConfigError,
    SourceConnectionError,
    SourceError,
    SourceInfo,
)
from etl_project.sources.oauth import TokenCache, oauth1_authorization

log = logging.getLogger(__name__)

RAW_PREFIX = "raw__"
# (collection endpoint, CSV file) in load order; roles.csv (1.2) is derived from users.
COLLECTIONS: tuple[tuple[str, str], ...] = (
    ("orgs", "orgs.csv"),
    ("academicSessions", "academicSessions.csv"),
    ("courses", "courses.csv"),
    ("classes", "classes.csv"),
    ("users", "users.csv"),
    ("enrollments", "enrollments.csv"),
    ("demographics", "demographics.csv"),
)
OPTIONAL_COLLECTIONS = ("demographics",)  # often outside the granted scope: 403/404 -> file absent
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


class RestHttpError(SourceError):
    """The API answered with an error a retry will not fix (4xx other than 401/408/429)."""

    permanent = True

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request: ``max_attempts`` in all, within ``max_elapsed`` seconds.

    The n-th wait is ``min(max_delay, base_delay * 2**(n-1))`` minus up to ``jitter`` of it (random), or the
    server's ``Retry-After`` when it sends one.
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_elapsed: float = 600.0
    jitter: float = 0.5

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return max(retry_after, 0.0)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling * (1 - self.jitter * rng.random())


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def parse_link_header(value: str | None) -> dict[str, str]:
    """RFC 8288 ``Link`` header -> {rel: url} (``rel="next"``, ``rel=next`` and multiple rels)."""
    links: dict[str, str] = {}
    for match in _LINK.finditer(value or ""):
        url, params = match.group(1), match.group(2)
        for param in params.split(";"):
            name, _, val = param.strip().partition("=")
            if name.strip().lower() == "rel":
                for rel in val.strip().strip('"').split():
                    links.setdefault(rel.lower(), url)
    return links


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow redirects: the Authorization header must not travel to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class _Transient(Exception):
    def __init__(self, problem: str, retry_after: float | None = None):
        super().__init__(problem)
        self.problem, self.retry_after = problem, retry_after


def resolve_rest_credentials(source: RestSource) -> RestCredentials:
    try:
        secret = resolve_secret(
            source.client_secret_env, f"OneRoster REST client secret for {source.client_id}"
        )
    except MissingSecret as exc:
        raise SourceConfigError(str(exc)) from None
    if not secret:
        raise SourceConfigError(
            f"no client secret for OneRoster REST client {source.client_id}: set client_secret_env"
        )
    return RestCredentials(source.client_id, secret)


class RestClient:
    """HTTP GETs against one OneRoster API with auth, retries and a scrubbed error vocabulary."""

    def __init__(
        self,
        source: RestSource,
        credentials: RestCredentials | None = None,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.source = source
        self._credentials = credentials
        self.retry = retry or RetryPolicy()
        self.sleep, self.clock = sleep, clock
        self.rng = rng or random.Random()
        self._opener = urllib.request.build_opener(_NoRedirect())
        self._tokens = TokenCache(self._fetch_token, clock)
        if source.auth == "oauth2" and not source.token_url:
            raise SourceConfigError(f"OneRoster REST {source.base_url}: token_url is required for OAuth 2")

    @property
    def credentials(self) -> RestCredentials:
        if self._credentials is None:
            self._credentials = resolve_rest_credentials(self.source)
        return self._credentials

    @property
    def token_fetches(self) -> int:
        return self._tokens.fetches

    # -- secrets never leave ---------------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        for secret in (self._credentials and self._credentials.client_secret, self._tokens.current()):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _server_says(self, body: bytes) -> str:
        """A short, scrubbed excerpt of an error body (imsx description or OAuth error) for messages."""
        text = body[:2000].decode("utf-8", "replace")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            info = doc.get("imsx_statusInfo") or doc.get("imsx_StatusInfo") or doc
            parts = [str(info.get(k)) for k in ("error", "codeMinor", "imsx_description", "error_description")
                     if isinstance(info, dict) and info.get(k)]  # fmt: skip
            text = "; ".join(parts)
        text = " ".join(self.scrub(text).split())[:200]
        return f" ({text})" if text else ""

    # -- transport -------------------------------------------------------------------------------------------
    def _send(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> Response:
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.source.timeout) as resp:
                body = resp.read()
                return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, body, url)
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, http.client.HTTPException):
                body = b""
            headers_ = {k.lower(): v for k, v in (exc.headers or {}).items()}
            return Response(exc.code, headers_, body, url)
        except TimeoutError:
            raise _Transient(f"no answer within {self.source.timeout:g} s") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise _Transient(f"no answer within {self.source.timeout:g} s") from None
            raise _Transient(f"connection failed: {reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(f"connection failed: {type(exc).__name__}: {exc}") from None

    def _with_retries(self, what: str, attempt_once: Callable[[], Response]) -> Response:
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return attempt_once()
            except _Transient as exc:
                problem, retry_after = exc.problem, exc.retry_after
            if attempt >= self.retry.max_attempts:
                raise SourceConnectionError(
                    f"{what}: {problem}; gave up after {attempt} attempts (will be retried by the next run)"
                )
            delay = self.retry.delay(attempt, retry_after, self.rng)
            elapsed = self.clock() - started
            if elapsed + delay > self.retry.max_elapsed:
                raise SourceConnectionError(
                    f"{what}: {problem}; waiting another {delay:.1f} s would exceed the retry budget of "
                    f"{self.retry.max_elapsed:g} s (gave up after {attempt} attempts)"
                )
            log.warning(
                "%s: %s; retry %d/%d in %.1f s", what, problem, attempt, self.retry.max_attempts - 1, delay
            )
            self.sleep(delay)

    @staticmethod
    def _raise_transient(resp: Response) -> None:
        if resp.status in _RETRYABLE_STATUS:
            raise _Transient(f"HTTP {resp.status}", parse_retry_after(resp.headers.get("retry-after")))

    # -- OAuth 2 ---------------------------------------------------------------------------------------------
    def _fetch_token(self) -> tuple[str, float | None]:
        creds = self.credentials
        url = self.source.token_url or ""
        form = {"grant_type": "client_credentials"}
        if self.source.scope:
            form["scope"] = self.source.scope
        basic = f"{_form_quote(creds.client_id)}:{_form_quote(creds.client_secret)}".encode()
        headers = {
            "Authorization": "Basic " + _b64(basic),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }

        def once() -> Response:
            resp = self._send("POST", url, headers, urlencode(form).encode())
            self._raise_transient(resp)
            return resp

        resp = self._with_retries(f"token request to {url}", once)
        if resp.status in (400, 401, 403):
            raise SourceAuthenticationFailed(
                f"the token endpoint {url} refused the client credentials of {creds.client_id} "
                f"(HTTP {resp.status}{self._server_says(resp.body)}); check the client id and secret"
            )
        if resp.status != 200:
            raise RestHttpError(
                f"token request to {url}: HTTP {resp.status}{self._server_says(resp.body)}", resp.status
            )
        try:
            doc = json.loads(resp.body)
            token = str(doc["access_token"])
            expires_in = float(doc["expires_in"]) if doc.get("expires_in") is not None else None
        except (ValueError, KeyError, TypeError):
            raise RestHttpError(f"token endpoint {url} answered without a usable access_token", 200) from None
        if str(doc.get("token_type", "bearer")).lower() != "bearer":
            raise RestHttpError(
                f"token endpoint {url} issued a {doc.get('token_type')!r} token, not bearer", 200
            )
        return token, expires_in

    # -- GET -------------------------------------------------------------------------------------------------
    def _authorization(self, method: str, url: str) -> str:
        if self.source.auth == "oauth1":
            creds = self.credentials
            return oauth1_authorization(method, url, creds.client_id, creds.client_secret)
        return f"Bearer {self._tokens.get()}"

    def get(self, url: str) -> Response:
        """GET ``url`` with auth and retries; returns a 2xx response or raises a ``SourceError``."""
        renewed = False

        def once() -> Response:
            nonlocal renewed
            while True:
                headers = {"Accept": "application/json", "Authorization": self._authorization("GET", url)}
                resp = self._send("GET", url, headers, None)
                if resp.status == 401 and self.source.auth == "oauth2" and not renewed:
                    log.info("GET %s: 401 with the cached token; fetching a new token once", url)
                    self._tokens.invalidate()
                    renewed = True
                    continue
                self._raise_transient(resp)
                return resp

        resp = self._with_retries(f"GET {url}", once)
        if resp.status == 401:
            how = "a freshly issued token" if self.source.auth == "oauth2" else "OAuth 1.0a signed requests"
            raise SourceAuthenticationFailed(
                f"GET {url}: the OneRoster API refused {how} for client {self.credentials.client_id} "
                f"(HTTP 401{self._server_says(resp.body)})"
            )
        if not 200 <= resp.status < 300:
            raise RestHttpError(f"GET {url}: HTTP {resp.status}{self._server_says(resp.body)}", resp.status)
        return resp


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _form_quote(value: str) -> str:
    """RFC 6749 section 2.3.1: client id and secret are form-encoded before Basic auth."""
    return quote_plus(value)


def with_query(url: str, **params: object) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


# ------------------------------------------------------------------------------------------ JSON -> CSV rows


def csv_columns(spec: TableSpec, version: str) -> list[str]:
    """The version's CSV header for a file, in the spec's order (columns removed in 1.2.1 left out)."""
    return [c.name for c in spec.columns if version in c.versions and c.kind != IGNORED]


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("sourcedId")
    return value


def _refs(value: Any) -> list[str | None]:
    if value is None:
        return []
    return [_ref(v) for v in (value if isinstance(value, list) else [value])]


def _user_id(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + f"{value.get('type', '')}:{value.get('identifier', '')}" + "}"
    return str(value)


# CSV column -> how to read it from the JSON object: a JSON field name, or (field, converter).
_REF_FIELDS = {
    "parentSourcedId": "parent",
    "schoolYearSourcedId": "schoolYear",
    "orgSourcedId": "org",
    "courseSourcedId": "course",
    "schoolSourcedId": "school",
    "classSourcedId": "class",
    "userSourcedId": "user",
    "primaryOrgSourcedId": "primaryOrg",
    "userProfileSourcedId": "userProfile",
}
_REFLIST_FIELDS = {"termSourcedIds": "terms", "orgSourcedIds": "orgs", "agentSourcedIds": "agents"}
_RENAMED = {  # 1.2 JSON names that differ from the CSV names
    "preferredGivenName": ("preferredGivenName", "preferredFirstName"),
    "preferredFamilyName": ("preferredFamilyName", "preferredLastName"),
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value if v is not None)
    if isinstance(value, dict):
        return str(value.get("sourcedId", ""))
    return str(value)


def json_to_row(obj: dict[str, Any], columns: list[str], table: str) -> list[str]:
    """One OneRoster JSON object as the CSV row for ``columns`` (GUIDRefs -> sourcedIds, lists joined)."""
    row: list[str] = []
    for col in columns:
        if col == "password":
            value: Any = None  # never written, even if an API sends it
        elif col in _REFLIST_FIELDS and (_REFLIST_FIELDS[col] in obj or col not in obj):
            value = _refs(obj.get(_REFLIST_FIELDS[col]))
        elif col in _REF_FIELDS and _REF_FIELDS[col] in obj:
            value = _ref(obj.get(_REF_FIELDS[col]))
        elif col == "userIds":
            value = [_user_id(v) for v in obj.get("userIds") or []]
        elif col in _RENAMED:
            value = next((obj[k] for k in _RENAMED[col] if obj.get(k) is not None), None)
        elif col == "sourcedId" and table == "demographics" and "sourcedId" not in obj:
            value = _ref(obj.get("user"))
        else:
            value = obj.get(col)
        row.append(_cell(value))
    return row


def _metadata_cells(obj: dict[str, Any], keys: list[str]) -> list[str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    cells = []
    for key in keys:
        value = meta.get(key)
        cells.append(json.dumps(value) if isinstance(value, dict | list) else _cell(value))
    return cells


def role_rows(user: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A 1.2 user's ``roles[]`` as roles.csv objects; the role's sourcedId is derived from its parts."""
    uid = user.get("sourcedId")
    for role in user.get("roles") or []:
        org = _ref(role.get("org"))
        parts = (uid, role.get("roleType"), role.get("role"), org)
        yield {
            "sourcedId": "-".join(str(p) for p in parts),
            "status": user.get("status"),
            "dateLastModified": user.get("dateLastModified"),
            "userSourcedId": uid,
            "roleType": role.get("roleType"),
            "role": role.get("role"),
            "beginDate": role.get("beginDate"),
            "endDate": role.get("endDate"),
            "orgSourcedId": org,
            "userProfileSourcedId": _ref(role.get("userProfile")),
        }


class _HashingFile:
    """A binary file being written, with its sha256 and size kept on the way."""

    def __init__(self, path: Path):
        self.path = path
        self._out: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.sha, self.size = hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        self._out.write(data)

    def close(self) -> tuple[int, str]:
        self._out.close()
        return self.size, self.sha.hexdigest()


class _CsvOut:
    def __init__(self, path: Path, columns: list[str]):
        self.file = _HashingFile(path)
        self.columns = columns
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, lineterminator="\r\n")

    def write(self, rows: list[list[str]]) -> None:
        self._writer.writerows(rows)
        self.file.write(self._buf.getvalue().encode("utf-8"))
        self._buf.seek(0)
        self._buf.truncate()


# ----------------------------------------------------------------------------------------------- the source


class RestDropSource:
    """``DropSource`` over a OneRoster REST API. Every ``fetch`` is a full (bulk) pull of "now"."""

    def __init__(
        self,
        source: RestSource,
        credentials: RestCredentials | None = None,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        if source.version not in ("1.1", "1.2"):
            raise SourceConfigError(f"OneRoster REST version must be 1.1 or 1.2, not {source.version!r}")
        self.source = source
        self.client = RestClient(source, credentials, retry=retry, sleep=sleep, clock=clock, rng=rng)
        parts = urlsplit(source.base_url)
        self.info = SourceInfo(kind="rest", host=parts.netloc, path=parts.path or "/")
        self.base_url = source.base_url.rstrip("/")

    def __enter__(self) -> RestDropSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass  # one connection per request (urllib); nothing to release

    def collection_url(self, collection: str) -> str:
        return f"{self.base_url}/{collection}"

    # -- listing ---------------------------------------------------------------------------------------------
    def find_drop(self, date: str, settle_seconds: float = 30.0) -> DropListing:
        """The API's current data as the drop for ``date``; one ``limit=1`` call per collection.

        The fingerprint covers the night, the version, the base URL and each collection's ``X-Total-Count``:
        a new night is a new drop, and a change in counts during the night is one too. ``settle_seconds``
        does not apply (an API has no half-uploaded files).
        """
        counts: list[str] = []
        for collection, _ in COLLECTIONS:
            try:
                resp = self.client.get(with_query(self.collection_url(collection), limit=1, offset=0))
            except RestHttpError as exc:
                if collection in OPTIONAL_COLLECTIONS and exc.status in (403, 404):
                    counts.append(f"{collection}=absent")
                    continue
                raise
            counts.append(f"{collection}={resp.headers.get('x-total-count', '?')}")
        h = hashlib.sha256("\n".join([date, self.source.version, self.base_url, *counts]).encode())
        return DropListing(
            night=date, location=self.base_url, kind="rest", files=(), fingerprint=h.hexdigest(), dated=False
        )

    def list_drops(self) -> list[DropListing]:
        listing = self.find_drop(dt.date.today().isoformat())
        return [DropListing(None, listing.location, "rest", (), listing.fingerprint, dated=False)]

    # -- paging ----------------------------------------------------------------------------------------------
    def pages(self, collection: str) -> Iterator[tuple[str, Response, list[dict[str, Any]]]]:
        """Every page of a collection as (request URL, response, records), in order."""
        limit = self.source.page_size
        url = with_query(self.collection_url(collection), limit=limit, offset=0)
        offset, largest, seen, first_ids = 0, 0, set(), None
        while True:
            if url in seen:
                raise SourceError(f"{collection}: the API's paging loops back to {url}")
            seen.add(url)
            resp = self.client.get(url)
            try:
                doc = json.loads(resp.body)
                records = doc[collection]
                if not isinstance(records, list):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                raise SourceError(
                    f"GET {url}: the answer is not a OneRoster {collection} collection "
                    f'(expected a JSON object {{"{collection}": [...]}})'
                ) from None
            ids = tuple(r.get("sourcedId") for r in records[:1] if isinstance(r, dict))
            if records and ids == first_ids:
                raise SourceError(f"{collection}: {url} returned the previous page again (offset ignored?)")
            first_ids = ids
            yield url, resp, records
            offset += len(records)
            total = _int_or_none(resp.headers.get("x-total-count"))
            next_url = parse_link_header(resp.headers.get("link")).get("next")
            if not records or (total is not None and offset >= total):
                return
            if next_url:
                url = urljoin(url, next_url)
                continue
            if total is None and len(records) < largest:
                return  # a short page: the last one
            largest = max(largest, len(records))
            url = with_query(url, limit=limit, offset=offset)

    # -- fetch -----------------------------------------------------------------------------------------------
    def fetch(self, listing: DropListing, dest_dir: str | Path) -> list[FetchedFile]:
        """Pull every collection: raw pages first (to disk), then each collection's CSV from its pages."""
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        fetched: list[FetchedFile] = []
        modes: dict[str, str] = {}
        for collection, file in COLLECTIONS:
            try:
                pages, metadata_keys = self._pull_pages(collection, dest)
            except RestHttpError as exc:
                if collection in OPTIONAL_COLLECTIONS and exc.status in (403, 404):
                    log.warning(
                        "%s: not available (HTTP %d); %s is marked absent", collection, exc.status, file
                    )
                    modes[file] = "absent"
                    continue
                raise
            fetched += pages
            written = self._write_csvs(collection, file, pages, metadata_keys, dest)
            fetched += written
            modes.update((f.name, "bulk") for f in written)
        fetched.append(self._write_manifest(dest, modes))
        return fetched

    def _pull_pages(self, collection: str, dest: Path) -> tuple[list[FetchedFile], list[str]]:
        pages: list[FetchedFile] = []
        metadata_keys: set[str] = set()
        records = 0
        for number, (url, resp, objs) in enumerate(self.pages(collection), start=1):
            pages.append(self._write_raw(dest, collection, number, url, resp.body))
            records += len(objs)
            for obj in objs:
                if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
                    metadata_keys.update(obj["metadata"])
        log.info("%s: %d records in %d pages", collection, records, len(pages))
        return pages, sorted(metadata_keys)

    def _write_csvs(
        self, collection: str, file: str, pages: list[FetchedFile], metadata_keys: list[str], dest: Path
    ) -> list[FetchedFile]:
        """The collection's CSV (``metadata`` object -> ``metadata.<key>`` columns) and, for 1.2 users,
        roles.csv; one raw page in memory at a time."""
        version = self.source.version
        spec = BY_FILE[file]
        outputs = [(file, spec, _CsvOut(dest / file, csv_columns(spec, version)), metadata_keys)]
        if collection == "users" and version == "1.2":
            roles = BY_FILE["roles.csv"]
            outputs.append(("roles.csv", roles, _CsvOut(dest / "roles.csv", csv_columns(roles, version)), []))
        for _, _, out, keys in outputs:
            out.columns = out.columns + [f"metadata.{k}" for k in keys]
            out.write([out.columns])
        try:
            for page in pages:
                objs = [
                    o
                    for o in json.loads(Path(page.local_path).read_bytes())[collection]
                    if isinstance(o, dict)
                ]
                for name, out_spec, out, keys in outputs:
                    rows_of = objs if name == file else [r for u in objs for r in role_rows(u)]
                    out.write([json_to_row(o, out.columns[: len(out.columns) - len(keys)], out_spec.table)
                               + _metadata_cells(o, keys) for o in rows_of])  # fmt: skip
        finally:
            closed = [(name, out, out.file.close()) for name, _, out, _ in outputs]
        return [
            FetchedFile(name, str(out.file.path), size, sha, self.collection_url(collection), 0)
            for name, out, (size, sha) in closed
        ]

    def _write_raw(self, dest: Path, collection: str, number: int, url: str, body: bytes) -> FetchedFile:
        name = f"{RAW_PREFIX}{collection}__{number:04d}.json"
        path = dest / name
        path.write_bytes(body)
        return FetchedFile(name, str(path), len(body), hashlib.sha256(body).hexdigest(), url, 0)

    def _write_manifest(self, dest: Path, modes: dict[str, str]) -> FetchedFile:
        version = self.source.version
        files = [s.file for s in SPECS if version == "1.2" or s.file not in ("roles.csv", "userProfiles.csv")]
        lines = ["propertyName,value", "manifest.version,1.0", f"oneroster.version,{version}"]
        lines += [f"file.{f.removesuffix('.csv')},{modes.get(f, 'absent')}" for f in files]
        lines += [f"source.systemName,OneRoster REST {self.info.host}", "source.systemCode,etl-project-rest"]
        data = ("\r\n".join(lines) + "\r\n").encode()
        path = dest / MANIFEST
        path.write_bytes(data)
        return FetchedFile(MANIFEST, str(path), len(data), hashlib.sha256(data).hexdigest(), self.base_url, 0)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
