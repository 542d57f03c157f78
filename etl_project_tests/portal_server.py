"""``etl-project portal`` as a real subprocess on a free loopback port, over a registry with two districts."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from etl_project.devservers import free_port
from etl_project.districts import District, LocalSource
from etl_project.registry.nights import NightStates
from etl_project.registry.store import Registry
from etl_project_tests.report_server import read_banner, stop

DISTRICTS = {"maple": "Maple Grove Unified", "cedar": "Cedar Falls Schools"}
CEDAR_REASON = "cedar-only reason: drop 7 failed the enrollments check"


@dataclass
class PortalServer:
    base: str
    env: dict[str, str]
    process: subprocess.Popen
    banner: list[str]
    log: list[str] = field(default_factory=list)

    @property
    def registry_url(self) -> str:
        return f"sqlite:///{Path(self.env['ETL_PROJECT_HOME']) / 'registry.sqlite'}"

    def setup_link(self) -> str:
        return next(m.group(0) for line in self.banner if (m := re.search(r"http://\S+token=\S+", line)))

    def client(self) -> httpx.Client:
        """A browser-like client: sends the portal's Origin on every request, follows no redirect."""
        return httpx.Client(base_url=self.base, headers={"Origin": self.base}, timeout=30)


def seed_registry(home: Path, env: dict[str, str]) -> None:
    registry = Registry(env["ETL_PROJECT_REGISTRY_URL"], env)
    for did, name in DISTRICTS.items():
        registry.add(District(did, name, LocalSource(str(home / did)), timezone="America/Chicago"))
    nights = NightStates(env["ETL_PROJECT_REGISTRY_URL"])
    nights.record("maple", "2026-11-30", "applied")
    nights.record("cedar", "2026-11-30", "failed", reason=CEDAR_REASON, step="oneroster_tables")


def _drain(stream, into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


@contextlib.contextmanager
def run_portal(
    home: Path,
    seed: Callable[[Path, dict[str, str]], None] = seed_registry,
    embedded: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[PortalServer]:
    """With ``embedded``: the environment `make demo` leaves (no registry URL, no secret key, no Dagster
    URL: the portal creates its key file and runs the Dagster daemon and webserver itself). Otherwise
    Sync now is off (the security tests need no Dagster). ``extra_env`` adds to (and overrides) the
    server's environment."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "DAGSTER_", "LMS_"))}
    env = {"ETL_PROJECT_HOME": str(home), "ETL_PROJECT_REGISTRY_URL": f"sqlite:///{home / 'registry.sqlite'}"}
    if not embedded:
        env |= {"ETL_PROJECT_SECRET_KEY": Fernet.generate_key().decode(), "ETL_PROJECT_DAGSTER_URL": "off"}
    env |= extra_env or {}  # e.g. a second portal on the same registry: its key and Dagster webserver
    seed(home, env)
    if embedded:
        del env["ETL_PROJECT_REGISTRY_URL"]  # the default: $ETL_PROJECT_HOME/registry.sqlite
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl_project.cli.main", "portal", "--port", str(port)],
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    drain = None
    try:
        banner = read_banner(proc, "etl-project portal")
        server = PortalServer(f"http://127.0.0.1:{port}", env, proc, banner)
        drain = threading.Thread(target=_drain, args=(proc.stdout, server.log))
        drain.start()
        yield server
    finally:
        stop(proc, drain)
