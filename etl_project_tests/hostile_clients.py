"""Hostile clients against a real server process: many half-sent requests held open, an oversized header,
and what the server's process shows meanwhile (threads, open sockets). Shared by the serve-reports and
portal tests."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

IDLE_CONNECTIONS = 2000
MAX_THREADS = 16  # one event loop plus a bounded pool, never one thread per connection


def wait_for(condition: Callable[[], T], what: str, limit: float = 60.0) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def open_sockets(pid: int) -> int:
    return sum(1 for fd in os.scandir(f"/proc/{pid}/fd") if os.readlink(fd.path).startswith("socket:"))


def hold_half_sent(address: tuple[str, int], count: int, path: str = "/") -> list[socket.socket]:
    """``count`` connections that start a request and never finish it (half a request line, or headers)."""
    held = []
    for i in range(count):
        s = socket.create_connection(address, timeout=30)
        s.sendall(f"GET {path}".encode() if i % 2 else f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode())
        held.append(s)
    return held


def closed_by_server(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def oversized_header_refused(address: tuple[str, int]) -> bool:
    """A 64 KiB header is answered at once with a 4xx (the header limit), not read forever."""
    with socket.create_connection(address, timeout=30) as oversized:
        oversized.sendall(b"GET / HTTP/1.1\r\nX-Padding: " + b"a" * 64 * 1024)
        return oversized.recv(64).startswith(b"HTTP/1.1 4")


def survive_idle_connections(
    pid: int, address: tuple[str, int], path: str, answered: Callable[[], bool]
) -> None:
    """Hold IDLE_CONNECTIONS half-sent requests open against the server ``pid`` listening on ``address``:
    ``answered()`` (a normal request) still succeeds, threads stay bounded, an oversized header is refused,
    and the header timeout closes every held connection, after which ``answered()`` succeeds again."""
    held = hold_half_sent(address, IDLE_CONNECTIONS, path)
    try:
        wait_for(lambda: open_sockets(pid) > IDLE_CONNECTIONS, "the server to accept every connection")
        assert answered()
        assert threads_of(pid) <= MAX_THREADS, threads_of(pid)
        assert oversized_header_refused(address)
        wait_for(lambda: all(closed_by_server(s) for s in held), "the header timeout to close them all")
        assert answered()
        assert threads_of(pid) <= MAX_THREADS, threads_of(pid)
    finally:
        for s in held:
            s.close()
