"""Sync now through the real stack: `dagster-webserver` (GraphQL, the public client) and `dagster-daemon`
(the run queue) on one DAGSTER_HOME; the run is a real queued run of nightly_sync with the sensor's tags.
Pressing twice starts one run; its progress is read step by step from the event log until it ends.

The district is registered disabled so the daemon's new-drop sensor leaves it alone (an explicit sync still
runs a disabled district, as `etl-project sync` does)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster_graphql import DagsterGraphQLClient

from etl_project.districts import District, LocalSource
from etl_project.generate import generate_drop
from etl_project.instance import ensure_dagster_home
from etl_project.portal_services.run_progress import run_progress
from etl_project.portal_services.sync_now import sync_now
from etl_project.registry import Registry, new_key, registry_url
from etl_project.registry.db import Database
from etl_project.registry.leases import Leases
from etl_project.settings import Settings
from etl_project_tests.processes import stop_group
from etl_project_tests.report_server import free_port

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
NIGHT = "2026-11-28"


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while True:  # bounded readiness poll: the code location loads before the server answers
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(url + "/server_info", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        assert time.monotonic() < deadline, "webserver not ready: " + log.read_text()
        time.sleep(0.25)


def _dagster_env(tmp_path: Path, monkeypatch) -> dict[str, str]:
    """The environment of the Dagster processes, and of this test process, on one home and DAGSTER_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "DAGSTER_", "LMS_"))}
    env.update(
        ETL_PROJECT_HOME=str(tmp_path / "home"),
        DAGSTER_HOME=str(tmp_path / "dagster"),
        ETL_PROJECT_SECRET_KEY=new_key(),
    )
    for name, value in env.items():
        if name.startswith(("ETL_PROJECT_", "DAGSTER_")):
            monkeypatch.setenv(name, value)
    ensure_dagster_home(Settings.from_env())
    return env


def _webserver(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    web = _start([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                 env, tmp_path / "web.log")  # fmt: skip
    try:
        _wait_ready(f"http://127.0.0.1:{port}", web, tmp_path / "web.log")
    except BaseException:
        stop_group(web)
        raise
    return web, port


@pytest.fixture
def stack(tmp_path, monkeypatch):
    env = _dagster_env(tmp_path, monkeypatch)
    generate_drop(tmp_path / "drops" / NIGHT, 40, seed=2)
    district = District("lincoln", "Lincoln", LocalSource(path=str(tmp_path / "drops")), enabled=False)
    Registry().add(district, None)
    web, port = _webserver(env, tmp_path)
    daemon = _start(
        [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, tmp_path / "daemon.log"
    )
    try:
        with DagsterInstance.get() as instance:
            yield instance, DagsterGraphQLClient("127.0.0.1", port_number=port), district, tmp_path
    finally:
        stop_group(web)
        stop_group(daemon)


def test_sync_now_twice_starts_one_run_that_the_daemon_finishes(stack):
    instance, client, district, root = stack
    leases = Leases(Database(registry_url()))
    first = sync_now(leases, instance, client, district, None, settle_seconds=0)
    again = sync_now(leases, instance, client, district, None, settle_seconds=0)
    assert first.created and not again.created and again.run_id == first.run_id
    assert str(first.night) == f"{NIGHT}|lincoln"

    run = instance.get_run_by_id(first.run_id)
    assert run.job_name == "nightly_sync"
    assert run.tags["dagster/partition/district"] == "lincoln" and run.tags["dagster/partition/date"] == NIGHT
    assert (
        run.tags["dagster/run_key"].startswith("lincoln:") and run.tags["etl_project/trigger"] == "sync_now"
    )

    seen = []
    deadline = time.monotonic() + 420
    while not (progress := run_progress(instance, first.run_id)).ended:  # bounded wait on the run's end
        seen.append(progress)
        assert time.monotonic() < deadline, (root / "daemon.log").read_text()[-3000:]
        time.sleep(0.5)
    assert progress.status == "SUCCESS", progress
    assert progress.steps["fetch_and_archive_drop"] == "succeeded"
    assert set(progress.steps.values()) <= {"succeeded", "skipped"}
    assert any(p.status == "QUEUED" and p.ahead == 0 for p in seen) or seen[0].status != "QUEUED"
    assert (
        sync_now(leases, instance, client, district, None).run_id == first.run_id
    )  # the drop is synced: no new run

    lms = Settings.from_env().lms_default_url.removeprefix("sqlite:///")
    with sqlite3.connect(lms) as conn:
        assert conn.execute("select count(*) from users where district = 'lincoln'").fetchone()[0] > 40
