"""``etl-project bench --small`` end to end through a real dagster-daemon (figures printed, never timed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from etl_project.bench_daemon import JOB, environ, home_env

STEPS = {"fetch_and_archive_drop", "oneroster_tables", "lms_entities", "reports__district_sync_report"}


def _daemons_of(work: Path) -> list[int]:
    """Processes still running with this benchmark's DAGSTER_HOME in their environment."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(work).encode() in (proc / "environ").read_bytes() and int(proc.name) != os.getpid():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


def test_small_bench_runs_every_night_through_the_daemon_and_stops_what_it_started(tmp_path):
    work = tmp_path / "work"
    out = subprocess.run(
        [sys.executable, "-m", "etl_project.cli.main", "bench", "--small", "--districts", "2",
         "--students", "40", "--json", "--workdir", str(work)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout)
    assert data["district_nights"] == data["succeeded"] == 2
    assert data["cores"] == os.cpu_count() and len(data["floor_run_s"]) == 2
    assert data["district_nights_per_hour"] > 0 and data["floor_wall_s"] > 0
    assert data["overhead_ratio"] == round(data["wall_s"] * data["cores"] / data["floor_wall_s"], 2)
    assert set(data["median_step_s"]) >= STEPS
    assert data["median_run_wall_s"] >= data["median_step_work_s"] > 0
    # the nights really went through the daemon: sensor-triggered runs in the daemon's instance
    with environ(home_env(work / "daemon-home")), DagsterInstance.get() as instance:
        runs = instance.get_run_records(RunsFilter(job_name=JOB))
    assert sorted(r.dagster_run.tags["etl_project/trigger"] for r in runs) == ["first_sync", "first_sync"]
    assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in runs)
    assert _daemons_of(work) == [], "the daemon, its code server and run workers are stopped"


def test_sigterm_stops_the_daemon_it_started(tmp_path):
    work = tmp_path / "work"
    bench = subprocess.Popen(
        [sys.executable, "-m", "etl_project.cli.main", "bench", "--small", "--districts", "1",
         "--students", "20", "--json", "--workdir", str(work)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in bench.stderr:  # the daemon is up once the bench says it waits for runs
        if "runs finished" in line:
            break
    assert _daemons_of(work), "the daemon runs while the bench waits"
    bench.send_signal(signal.SIGTERM)
    bench.communicate(timeout=120)
    assert bench.returncode != 0
    assert _daemons_of(work) == []
