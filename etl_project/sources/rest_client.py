"""HTTP for the OneRoster REST source: auth, retries and paging, on httpx, authlib and tenacity.

* **Auth**: OAuth 2 client credentials through authlib's ``OAuth2Client`` (``client_secret_basic`` at
  ``token_url``; the token is renewed ``TOKEN_LEEWAY`` seconds before ``expires_in`` runs out, and once more
  on a 401 in mid-pull), or OAuth 1.0a request signing through authlib's ``OAuth1Auth``: HMAC-SHA256, the
  method OneRoster 1.1 names (``oauth1_signature_method = "HMAC-SHA1"`` for older providers). Every query
  parameter is signed; the GETs have no body, so they carry no ``oauth_body_hash``. Refused credentials
  raise ``SourceAuthenticationFailed`` (permanent). No secret, token or signature ever reaches a log line or
  an exception: messages name the client id and URL at most, and server text quoted in them is scrubbed.
* **Retries** (tenacity): 429, 408, 425, 5xx, timeouts and connection errors, with exponential backoff and
  jitter, or the server's ``Retry-After``; attempts and total time are bounded (``RetryPolicy``). Each
  attempt is signed anew (a fresh OAuth 1.0a nonce and timestamp). ``sleep`` is injectable for tests.
* **Paging**: ``limit``/``offset``; ``X-Total-Count`` says when to stop; a ``Link: <...>; rel="next"``
  header (httpx parses it) is followed when present; without either, the pull goes on until a page is empty
  or shorter than the largest page seen (so a provider that caps ``limit`` below the page size asked for is
  still read fully).
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import httpx
import tenacity
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oauth1.rfc5849.signature import generate_signature_base_string
from authlib.oauth1.rfc5849.util import escape

from etl_project.districts import REST_OAUTH1_SIGNATURE_METHODS, MissingSecret, RestSource, resolve_secret
from etl_project.portal_services.ssrf import UnsafeHost, check_url, guard_sources
from etl_project.sources.base import (
    RestCredentials,
    SourceAuthenticationFailed,
    SourceConfigError,
    SourceConnectionError,
    SourceError,
)

# authlib >= 1.9 prefers the httpx2 fork and warns (with an "always" filter) when it finds httpx, which
# Dagster installs; that filter is in place once authlib.deprecate is imported, so ours, added after, wins.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning, message="The httpx module")
    from authlib.integrations.httpx_client import OAuth1Auth, OAuth2Client

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
TOKEN_LEEWAY = 30  # seconds before expiry at which a token counts as expired
T = TypeVar("T")


def _sign_hmac_sha256(client: Any, request: Any) -> str:
    """RFC 5849 section 3.4.2 with SHA-256: authlib builds the base string, this keys and hashes it."""
    key = f"{escape(client.client_secret or '')}&{escape(client.token_secret or '')}"
    digest = hmac.new(key.encode(), generate_signature_base_string(request).encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


OAuth1Auth.register_signature_method("HMAC-SHA256", _sign_hmac_sha256)


class RestHttpError(SourceError):
    """The API answered with an error a retry will not fix (4xx other than 401/408/429)."""

    permanent = True

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request: ``max_attempts`` in all, within ``max_elapsed`` seconds.

    The n-th wait is ``min(max_delay, base_delay * 2**(n-1))`` plus up to ``base_delay`` (random), or the
    server's ``Retry-After`` when it sends one.
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_elapsed: float = 600.0


class _Transient(Exception):
    """An answer or failure worth another attempt."""

    def __init__(self, problem: str, retry_after: float | None = None):
        super().__init__(problem)
        self.problem, self.retry_after = problem, retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value or not value.strip():
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def _raise_if_transient(resp: httpx.Response, what: str = "") -> None:
    if resp.status_code in RETRYABLE_STATUS:
        resp.read()
        raise _Transient(f"{what}HTTP {resp.status_code}", parse_retry_after(resp.headers.get("retry-after")))


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


def _check_host(request: httpx.Request) -> None:
    """Every request's host is checked just before it is sent (ETL_PROJECT_GUARD_SOURCES)."""
    try:
        check_url(str(request.url))
    except UnsafeHost as exc:
        raise SourceConfigError(str(exc)) from None


def with_query(url: str, **params: int | str) -> str:
    """``url`` with ``params`` set (replacing parameters of the same names)."""
    return str(httpx.URL(url).copy_merge_params(params))


class RestClient:
    """GETs against one OneRoster API with auth, retries and a scrubbed error vocabulary."""

    def __init__(
        self,
        source: RestSource,
        credentials: RestCredentials | None = None,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if source.auth == "oauth2" and not source.token_url:
            raise SourceConfigError(f"OneRoster REST {source.base_url}: token_url is required for OAuth 2")
        method = source.oauth1_signature_method or REST_OAUTH1_SIGNATURE_METHODS[0]
        if method not in REST_OAUTH1_SIGNATURE_METHODS:
            raise SourceConfigError(
                f"OneRoster REST {source.base_url}: oauth1_signature_method must be one of "
                f"{', '.join(REST_OAUTH1_SIGNATURE_METHODS)}, not {method!r}"
            )
        self.source, self.signature_method = source, method
        self._credentials = credentials
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._http: httpx.Client | None = None

    @property
    def credentials(self) -> RestCredentials:
        if self._credentials is None:
            self._credentials = resolve_rest_credentials(self.source)
        return self._credentials

    @property
    def http(self) -> httpx.Client:
        """The httpx client, made on first use (the secret is read from the environment only then)."""
        if self._http is None:
            creds, timeout = self.credentials, httpx.Timeout(self.source.timeout)
            headers = {"Accept": "application/json"}
            hooks = {"request": [_check_host]} if guard_sources() else {}
            if self.source.auth == "oauth2":
                client = OAuth2Client(
                    creds.client_id,
                    creds.client_secret,
                    scope=self.source.scope,
                    token_endpoint=self.source.token_url,
                    grant_type="client_credentials",
                    leeway=TOKEN_LEEWAY,
                    timeout=timeout,
                    headers=headers,
                    event_hooks=hooks,
                )
                client.register_compliance_hook("access_token_response", self._check_token_response)
                self._http = client
            else:
                auth = OAuth1Auth(
                    creds.client_id, creds.client_secret, signature_method=self.signature_method
                )
                self._http = httpx.Client(auth=auth, timeout=timeout, headers=headers, event_hooks=hooks)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- secrets never leave ---------------------------------------------------------------------------------
    def _current_token(self) -> str | None:
        token = getattr(self._http, "token", None)
        return token.get("access_token") if token else None

    def scrub(self, text: str) -> str:
        for secret in (self._credentials and self._credentials.client_secret, self._current_token()):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _server_says(self, resp: httpx.Response) -> str:
        """A short, scrubbed excerpt of an error body (imsx description or OAuth error) for messages."""
        text = resp.read()[:2000].decode("utf-8", "replace")
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

    # -- retries ---------------------------------------------------------------------------------------------
    def _with_retries(self, what: str, attempt: Callable[[], T]) -> T:
        policy = self.retry
        backoff = tenacity.wait_exponential_jitter(
            policy.base_delay, policy.max_delay, jitter=policy.base_delay
        )
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(policy.max_attempts)
            | tenacity.stop_before_delay(policy.max_elapsed),
            wait=partial(_retry_after_or, backoff),
            sleep=self.sleep,
            before_sleep=partial(_log_retry, what, policy),
            retry_error_callback=partial(_give_up, what, policy),
        )
        return retrying(partial(self._attempt, attempt))

    def _attempt(self, attempt: Callable[[], T]) -> T:
        try:
            return attempt()
        except httpx.TimeoutException:
            raise _Transient(f"no answer within {self.source.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise _Transient(f"connection failed: {type(exc).__name__}: {self.scrub(str(exc))}") from None

    # -- OAuth 2 ---------------------------------------------------------------------------------------------
    def _check_token_response(self, resp: httpx.Response) -> httpx.Response:
        """Every token endpoint answer, before authlib reads it: errors become our vocabulary."""
        url, client_id = self.source.token_url, self.credentials.client_id
        _raise_if_transient(resp, "the token endpoint answered ")
        if resp.status_code in (400, 401, 403):
            raise SourceAuthenticationFailed(
                f"the token endpoint {url} refused the client credentials of {client_id} "
                f"(HTTP {resp.status_code}{self._server_says(resp)}); check the client id and secret"
            )
        if resp.status_code != 200:
            raise RestHttpError(
                f"token request to {url}: HTTP {resp.status_code}{self._server_says(resp)}", resp.status_code
            )
        try:
            doc = resp.json()
            usable = isinstance(doc["access_token"], str)
        except (ValueError, KeyError, TypeError):
            usable = False
        if not usable:
            raise RestHttpError(f"token endpoint {url} answered without a usable access_token", 200)
        if str(doc.get("token_type", "bearer")).lower() != "bearer":
            raise RestHttpError(
                f"token endpoint {url} issued a {doc.get('token_type')!r} token, not bearer", 200
            )
        return resp

    def _fetch_token(self) -> None:
        http = self.http
        assert isinstance(http, OAuth2Client)
        self._with_retries(
            f"token request to {self.source.token_url}",
            lambda: http.fetch_token(self.source.token_url, grant_type="client_credentials"),
        )

    # -- GET -------------------------------------------------------------------------------------------------
    def _get_once(self, url: str) -> httpx.Response:
        resp = self.http.get(url)
        _raise_if_transient(resp)
        return resp

    def get(self, url: str) -> httpx.Response:
        """GET ``url`` with auth and retries; returns a 2xx response or raises a ``SourceError``."""
        oauth2 = self.source.auth == "oauth2"
        if oauth2 and self._current_token() is None:
            self._fetch_token()
        resp = self._with_retries(f"GET {url}", lambda: self._get_once(url))
        if resp.status_code == 401 and oauth2:
            log.info("GET %s: 401 with the current token; fetching a new token once", url)
            self._fetch_token()
            resp = self._with_retries(f"GET {url}", lambda: self._get_once(url))
        if resp.status_code == 401:
            how = "a freshly issued token" if oauth2 else "OAuth 1.0a signed requests"
            raise SourceAuthenticationFailed(
                f"GET {url}: the OneRoster API refused {how} for client {self.credentials.client_id} "
                f"(HTTP 401{self._server_says(resp)})"
            )
        if not resp.is_success:
            raise RestHttpError(
                f"GET {url}: HTTP {resp.status_code}{self._server_says(resp)}", resp.status_code
            )
        return resp

    # -- paging ----------------------------------------------------------------------------------------------
    def pages(self, url: str, collection: str, limit: int) -> Iterator[tuple[str, httpx.Response, list[Any]]]:
        """Every page of the collection at ``url`` as (request URL, response, records), in order."""
        url = with_query(url, limit=limit, offset=0)
        offset, largest, seen, first_ids = 0, 0, set(), None
        while True:
            if url in seen:
                raise SourceError(f"{collection}: the API's paging loops back to {url}")
            seen.add(url)
            resp = self.get(url)
            records = _records(resp, url, collection)
            ids = tuple(r.get("sourcedId") for r in records[:1] if isinstance(r, dict))
            if records and ids == first_ids:
                raise SourceError(f"{collection}: {url} returned the previous page again (offset ignored?)")
            first_ids = ids
            yield url, resp, records
            offset += len(records)
            total = _int_or_none(resp.headers.get("x-total-count"))
            next_url = resp.links.get("next", {}).get("url")
            if not records or (total is not None and offset >= total):
                return
            if next_url:
                url = str(httpx.URL(url).join(next_url))
                continue
            if total is None and len(records) < largest:
                return  # a short page: the last one
            largest = max(largest, len(records))
            url = with_query(url, limit=limit, offset=offset)


def _records(resp: httpx.Response, url: str, collection: str) -> list[Any]:
    try:
        records = resp.json()[collection]
        if not isinstance(records, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise SourceError(
            f"GET {url}: the answer is not a OneRoster {collection} collection "
            f'(expected a JSON object {{"{collection}": [...]}})'
        ) from None
    return records


def _retry_after_or(
    backoff: Callable[[tenacity.RetryCallState], float], state: tenacity.RetryCallState
) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _Transient) and exc.retry_after is not None:
        return exc.retry_after
    return backoff(state)


def _problem(state: tenacity.RetryCallState) -> str:
    exc = state.outcome.exception() if state.outcome else None
    return exc.problem if isinstance(exc, _Transient) else str(exc)


def _log_retry(what: str, policy: RetryPolicy, state: tenacity.RetryCallState) -> None:
    log.warning(
        "%s: %s; retry %d/%d in %.1f s",
        what,
        _problem(state),
        state.attempt_number,
        policy.max_attempts - 1,
        state.upcoming_sleep,
    )


def _give_up(what: str, policy: RetryPolicy, state: tenacity.RetryCallState) -> Any:
    attempts = state.attempt_number
    if attempts >= policy.max_attempts:
        raise SourceConnectionError(
            f"{what}: {_problem(state)}; gave up after {attempts} attempts (will be retried by the next run)"
        )
    raise SourceConnectionError(
        f"{what}: {_problem(state)}; waiting another {state.upcoming_sleep:.1f} s would exceed the retry "
        f"budget of {policy.max_elapsed:g} s (gave up after {attempts} attempts)"
    )


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
