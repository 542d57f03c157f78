"""OAuth for the OneRoster REST source: OAuth 1.0a request signing (RFC 5849, HMAC-SHA1) and an OAuth 2
client-credentials token cache.

Nothing here logs; callers make sure no secret or token reaches a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit


def percent_encode(value: str) -> str:
    """RFC 5849 section 3.6: RFC 3986 unreserved characters stay, everything else is %XX (UTF-8)."""
    return quote(value, safe="-._~")


def base_string_uri(url: str) -> str:
    """RFC 5849 section 3.4.1.2: scheme and host lower-cased, default port dropped, no query or fragment."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 section 3.4.1: every query and oauth_* parameter, encoded, sorted by name then value."""
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in (*query, *params))
    normalized = "&".join(f"{k}={v}" for k, v in encoded)
    return "&".join(percent_encode(p) for p in (method.upper(), base_string_uri(url), normalized))


def hmac_sha1_signature(base_string: str, client_secret: str, token_secret: str = "") -> str:
    key = f"{percent_encode(client_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def oauth1_authorization(
    method: str,
    url: str,
    client_id: str,
    client_secret: str,
    *,
    token: str | None = None,
    token_secret: str = "",
    nonce: str | None = None,
    timestamp: int | None = None,
    version: str | None = "1.0",
) -> str:
    """The ``Authorization: OAuth ...`` header value signing ``method url`` (query parameters included).

    ``oauth_version`` is optional in RFC 5849; it is sent (and signed) unless ``version`` is None."""
    oauth = [
        ("oauth_consumer_key", client_id),
        ("oauth_nonce", nonce or secrets.token_hex(16)),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", str(int(time.time()) if timestamp is None else timestamp)),
    ]
    if version:
        oauth.append(("oauth_version", version))
    if token:
        oauth.append(("oauth_token", token))
    signature = hmac_sha1_signature(signature_base_string(method, url, oauth), client_secret, token_secret)
    oauth.append(("oauth_signature", signature))
    return "OAuth " + ", ".join(f'{k}="{percent_encode(v)}"' for k, v in oauth)


@dataclass
class BearerToken:
    value: str
    expires_at: float  # on the cache's clock

    def __repr__(self) -> str:
        return f"BearerToken(<hidden>, expires_at={self.expires_at})"


class TokenCache:
    """Holds one OAuth 2 access token and fetches a new one when it is missing or about to expire.

    ``fetch`` returns ``(access_token, expires_in seconds or None)``. A token is renewed ``skew`` seconds
    before it expires (at most a tenth of its lifetime), so a long pull never sends an expired one.
    """

    def __init__(
        self, fetch: Callable[[], tuple[str, float | None]], clock: Callable[[], float], skew: float = 30.0
    ):
        self._fetch, self._clock, self._skew = fetch, clock, skew
        self._token: BearerToken | None = None
        self.fetches = 0

    def get(self) -> str:
        now = self._clock()
        if self._token is None or now >= self._token.expires_at:
            value, expires_in = self._fetch()
            self.fetches += 1
            lifetime = 3600.0 if expires_in is None else max(float(expires_in), 0.0)
            self._token = BearerToken(value, now + lifetime - min(self._skew, lifetime / 10))
        return self._token.value

    def current(self) -> str | None:
        return self._token.value if self._token else None

    def invalidate(self) -> None:
        self._token = None
