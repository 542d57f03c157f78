"""The client's address and scheme: the socket's peer, unless the peer is the one trusted proxy.

By default no forwarding header is believed. With ``ETL_PROJECT_PORTAL_TRUSTED_PROXY`` set, a request whose
TCP peer is that address is taken to come from the last address in its X-Forwarded-For (the one the proxy
itself saw) and over the scheme in X-Forwarded-Proto; the same headers from anyone else are ignored.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection


def _from_proxy(conn: HTTPConnection, trusted_proxy: str | None) -> bool:
    return trusted_proxy is not None and conn.client is not None and conn.client.host == trusted_proxy


def client_ip(conn: HTTPConnection, trusted_proxy: str | None) -> str:
    peer = conn.client.host if conn.client else "unknown"
    if not _from_proxy(conn, trusted_proxy):
        return peer
    forwarded = conn.headers.get("x-forwarded-for", "").split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(forwarded))
    except ValueError:
        return peer


def client_scheme(conn: HTTPConnection, trusted_proxy: str | None) -> str:
    if _from_proxy(conn, trusted_proxy):
        proto = conn.headers.get("x-forwarded-proto", "").strip().lower()
        if proto in ("http", "https"):
            return proto
    return conn.url.scheme
