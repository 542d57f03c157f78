"""Throwaway servers on loopback, for the benchmark and the test suite (never used in production)."""

import socket


class ServerUnavailable(RuntimeError):
    """A server could not be started (missing binary, refused configuration, never listened)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
