"""Hosts and URLs a tenant enters must not reach our own network.

A host is resolved and EVERY address it resolves to is checked: anything that is not a global unicast
address (loopback, private, link-local, CGNAT, multicast, unspecified, reserved; IPv4-mapped IPv6 by its
IPv4 address) and the cloud metadata endpoints are refused, unless an operator allows a network in
``ETL_PROJECT_ALLOW_PRIVATE_HOSTS`` (comma-separated CIDRs, e.g. ``127.0.0.1/32,10.0.0.0/8``). Metadata host
names are refused by name. Callers connect to the checked address (``check_host`` returns them), so a DNS
answer that changes between the check and the connection (rebinding) is never used.

``ETL_PROJECT_GUARD_SOURCES=1`` makes the SFTP and REST sources apply the same check on every connection
(the sensor's polls and every run included); see docs/portal-services.md for the policy."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

ALLOW_ENV = "ETL_PROJECT_ALLOW_PRIVATE_HOSTS"
GUARD_ENV = "ETL_PROJECT_GUARD_SOURCES"
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeHost(ValueError):
    """A host or URL that points into our own network (one sentence, no secret)."""


def guard_sources(env: Mapping[str, str] | None = None) -> bool:
    """Whether the sources check their hosts on every connection (``ETL_PROJECT_GUARD_SOURCES``)."""
    return (env if env is not None else os.environ).get(GUARD_ENV, "").strip().lower() in ("1", "true", "yes")


def allowed_networks(
    env: Mapping[str, str] | None = None,
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    raw = (env if env is not None else os.environ).get(ALLOW_ENV, "")
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise UnsafeHost(
                f"{ALLOW_ENV}: {item!r} is not a network (write CIDRs such as 127.0.0.1/32,10.0.0.0/8)"
            ) from None
    return networks


def refusal(address: Address) -> str | None:
    """Why this address is refused, or None for a public unicast address."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return refusal(mapped)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for what in ("loopback", "multicast", "unspecified", "link_local", "private", "reserved"):
        if getattr(address, f"is_{what}"):
            return f"a {what.replace('_', '-')} address"
    return None if address.is_global else "not a public address"


def check_address(host: str, address: Address, env: Mapping[str, str] | None = None) -> None:
    why = refusal(address)
    if why and not any(address in net for net in allowed_networks(env) if net.version == address.version):
        raise UnsafeHost(
            f"{host} resolves to {address}, {why}: refused, because a district's server must be on the "
            f"internet (an operator can allow a network in {ALLOW_ENV})"
        )


def check_host(host: str, port: int, env: Mapping[str, str] | None = None) -> list[str]:
    """Every address ``host`` resolves to, once all of them passed; connect to one of these."""
    name = host.strip().rstrip(".").lower()
    if not name:
        raise UnsafeHost("the host is empty: enter the server's name, e.g. sftp.district.org")
    if name in METADATA_HOSTS:
        raise UnsafeHost(f"{host} is a cloud metadata service: refused")
    try:
        infos = socket.getaddrinfo(name.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeHost(f"{host} cannot be resolved ({exc}): check the server's name") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for text in addresses:
        check_address(host, ipaddress.ip_address(text.split("%")[0]), env)
    return addresses


def check_url(url: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The addresses of an http(s) URL's host, once all of them passed."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeHost(
            f"{url!r} is not an http(s) URL with a host: enter e.g. https://sis.district.org/..."
        )
    return check_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), env)


def connect_checked(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first reachable checked address of ``host`` (never a re-resolved one)."""
    last: OSError | None = None
    for address in check_host(host, port):
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            last = exc
    raise OSError(f"cannot reach {host}:{port}: {last}") from None
