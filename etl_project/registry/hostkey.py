"""Trust on first use for SFTP host keys: read the server's key without logging in, then pin it.

The key is read with a bare paramiko ``Transport`` (key exchange only: no user name, no password, no private
key is sent). Nothing is pinned here; the caller shows the fingerprint and pins it only after the admin
confirms it. Later connections use ``RejectPolicy`` against the pin (``etl_project.sources.sftp``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import paramiko

from etl_project.sources.base import SourceConnectionError


@dataclass(frozen=True)
class ServerKey:
    key_type: str
    fingerprint: str  # SHA256:... as printed by `ssh-keygen -lf`
    openssh: str  # the public key line that gets pinned

    @classmethod
    def of(cls, key: paramiko.PKey) -> ServerKey:
        return cls(key.get_name(), key.fingerprint, f"{key.get_name()} {key.get_base64()}")


def scan_host_key(host: str, port: int, timeout: float = 15.0, address: str | None = None) -> ServerKey:
    """The host key the server presents, read during key exchange (no authentication is attempted).
    ``address``: connect to this already checked IP address instead of resolving ``host`` again."""
    where = f"{host}:{port}"
    try:
        sock = socket.create_connection((address or host, port), timeout=timeout)
    except OSError as exc:
        raise SourceConnectionError(f"cannot reach {where}: {exc.strerror or exc}") from None
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        return ServerKey.of(transport.get_remote_server_key())
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise SourceConnectionError(f"{where} did not complete an SSH key exchange: {exc}") from None
    finally:
        transport.close()


def normalize_fingerprint(text: str) -> str:
    """Accept ``SHA256:abc...`` or ``abc...`` (as pasted from ssh-keygen), without trailing ``=`` padding."""
    text = text.strip()
    if not text.upper().startswith("SHA256:"):
        text = "SHA256:" + text
    return "SHA256:" + text[len("SHA256:") :].rstrip("=")


def pinned_fingerprints(host_key: str) -> list[str]:
    from etl_project.sources.sftp import parse_host_keys

    return [f"{k.fingerprint} ({k.get_name()})" for k in parse_host_keys(host_key)]
