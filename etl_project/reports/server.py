"""Running the report app under uvicorn on loopback, with bounded resources whatever clients do.

* one event loop thread; archive reads run in a thread pool of ``threads`` (anyio's limiter), so the thread
  count stays flat however many connections are open;
* at most ``max_connections`` connections are served (uvicorn ``limit_concurrency``; beyond it, 503) and
  ``backlog`` wait in the kernel; the soft open-files limit is raised to fit them when the hard limit allows;
* a request line and headers must arrive within ``header_timeout`` seconds and fit in ``max_header_bytes``
  (h11's maximum incomplete event size), else the connection is closed; an idle keep-alive connection is
  closed after ``keep_alive`` seconds. uvicorn itself times out idle keep-alive connections only, so
  ``HeaderTimeoutH11`` adds the timeout for a request that is started and never finished.
"""

from __future__ import annotations

import resource
import socket
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import anyio.to_thread
import h11
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

LOOPBACK = "127.0.0.1"
_SPARE_FILES = 64  # listening socket, logs, archive reads


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int = 4096
    backlog: int = 1024
    header_timeout: float = 10.0
    keep_alive: int = 5
    max_header_bytes: int = 16 * 1024
    threads: int = 8
    shutdown_seconds: int = 5


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is not complete in time."""

    header_timeout = ServerLimits.header_timeout

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        waiting = self.conn.their_state is h11.IDLE  # bytes of a request came, its head is not complete
        if not waiting and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        elif waiting and self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def fit_open_files(limits: ServerLimits, warn: Callable[[str], None] = print) -> ServerLimits:
    """Raise the soft open-files limit to hold ``max_connections`` (lowered if the hard limit is lower)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = limits.max_connections + _SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitted = max(soft - _SPARE_FILES, 16)
        wanted = limits.max_connections
        warn(f"warning: the open-files limit ({soft}) allows {fitted} connections, not {wanted}")
        return replace(limits, max_connections=fitted)
    return limits


def listen(port: int, backlog: int, host: str = LOOPBACK) -> socket.socket:
    """A listening socket on ``host`` (127.0.0.1 by default: put a TLS reverse proxy in front to publish)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def serve(app: ASGIApp, sock: socket.socket, limits: ServerLimits) -> None:
    """Serve ``app`` on ``sock`` until SIGINT/SIGTERM (graceful, at most ``shutdown_seconds``)."""

    @asynccontextmanager
    async def bounded_threads(_app: Starlette):  # the limiter belongs to the server's event loop
        anyio.to_thread.current_default_thread_limiter().total_tokens = limits.threads
        yield

    protocol = type("ReportsH11", (HeaderTimeoutH11,), {"header_timeout": limits.header_timeout})
    config = uvicorn.Config(
        Starlette(routes=[Mount("", app=app)], lifespan=bounded_threads),
        http=protocol,
        lifespan="on",
        limit_concurrency=limits.max_connections,
        backlog=limits.backlog,
        timeout_keep_alive=limits.keep_alive,
        timeout_graceful_shutdown=limits.shutdown_seconds,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        access_log=False,  # the app logs each request with the capability token masked
        server_header=False,
        log_level="warning",
    )
    uvicorn.Server(config).run(sockets=[sock])
