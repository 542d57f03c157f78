"""``etl-project serve-reports`` as a real subprocess on a free loopback port (HTTP and browser tests)."""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from etl_project.devservers import free_port
from etl_project.reports.serve import district_path

SECRET = "test-reports-secret-4f1c"


@dataclass
class ReportServer:
    base: str
    process: subprocess.Popen
    banner: list[str]
    log: list[str] = field(default_factory=list)  # every line printed after the banner, read as it comes

    def url(self, district: str, rest: str = "") -> str:
        return self.base + district_path(SECRET.encode(), district) + rest


def http_get(url: str, method: str = "GET") -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()  # header names are case-insensitive
    finally:
        conn.close()


def _read_lines(stream, into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


@contextlib.contextmanager
def serve_reports(env: dict[str, str], *args: str) -> Iterator[ReportServer]:
    port = free_port()
    full_env = {**os.environ, **env, "ETL_PROJECT_REPORTS_SECRET": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl_project.cli.main", "serve-reports", "--port", str(port), *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    drain: threading.Thread | None = None
    try:
        banner = read_banner(proc, "serve-reports")
        server = ReportServer(f"http://127.0.0.1:{port}", proc, banner)
        # Drain the output so a full pipe can never block the server; ends when the process exits.
        drain = threading.Thread(target=_read_lines, args=(proc.stdout, server.log))
        drain.start()
        yield server
    finally:
        stop(proc, drain)


def read_banner(proc: subprocess.Popen, what: str) -> list[str]:
    """The lines printed up to "Ctrl-C to stop.", which comes once the socket listens."""
    banner: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        banner.append(line.rstrip("\n"))
        if line.startswith("Ctrl-C"):
            return banner
    raise AssertionError(f"{what} exited: " + "\n".join(banner))


def stop(proc: subprocess.Popen, drain: threading.Thread | None) -> None:
    """SIGTERM, then SIGKILL: a child inherits an *ignored* SIGTERM when this process ignores it, which
    happens after Dagster's interrupt handling maps SIGTERM to SIGINT's disposition and pytest runs with
    SIGINT ignored (started in the background by a non-interactive shell, as CI may)."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
    if drain is not None:
        drain.join(timeout=30)
