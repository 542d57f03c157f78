"""Random tokens (session cookies, one-time links) and the digests the database keeps instead of them."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token() -> str:
    """256 random bits, url-safe."""
    return secrets.token_urlsafe(32)


def new_id() -> str:
    return secrets.token_hex(16)


def token_hash(token: str) -> str:
    """SHA-256 of a token: what the database stores, so a copy of it opens no session and no link."""
    return hashlib.sha256(token.encode()).hexdigest()


def derived(token: str, purpose: str) -> str:
    """A value bound to ``token`` that does not reveal it (e.g. the CSRF token of a session)."""
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
