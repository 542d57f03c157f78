"""``etl-project serve-reports`` as a real subprocess on a free loopback port (HTTP and browser tests)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from etl_project.devservers import free_port
from etl_project.reports.serve import district_path

SECRET = "test-reports-secret-4f1c"


@dataclass
class ReportServer:
    base: str
    process: subprocess.Popen
    banner: list[str]

    def url(self, district: str, rest: str = "") -> str:
        return self.base + district_path(SECRET.encode(), district) + rest


@contextlib.contextmanager
def serve_reports(env: dict[str, str]) -> Iterator[ReportServer]:
    port = free_port()
    full_env = {**os.environ, **env, "ETL_PROJECT_REPORTS_SECRET": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl_project.cli.main", "serve-reports", "--port", str(port)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the banner ends with "Ctrl-C to stop." once the socket listens
            banner.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                break
        else:
            raise AssertionError("serve-reports exited: " + "\n".join(banner))
        yield ReportServer(f"http://127.0.0.1:{port}", proc, banner)
    finally:
        # SIGTERM, then SIGKILL: a child inherits an *ignored* SIGTERM when this process ignores it, which
        # happens after Dagster's interrupt handling maps SIGTERM to SIGINT's disposition and pytest runs
        # with SIGINT ignored (started in the background by a non-interactive shell, as CI may).
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
