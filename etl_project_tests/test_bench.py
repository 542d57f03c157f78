"""The bench commands run end to end and report consistent figures (never timed: these check behaviour)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg


def test_lms_bench_reports_first_load_day2_and_floor(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "etl_project.cli.main", "bench", "--lms", "postgres", "--students", "300",
         "--repeat", "2", "--json", "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    data = json.loads(out.stdout)
    assert data["first_load_rows_written"] == data["rows"] > 0  # a first load creates every row once
    assert 0 < data["day2_rows_written"] < data["rows"] / 5  # day 2 writes only the churn
    assert data["day2_state"] == "applied"
    assert sum(n for ops in data["day2_written"].values() for n in ops.values()) == data["day2_rows_written"]
    for key in ("copy_floor_s", "first_load_s", "day2_s"):
        runs = data[key.replace("_s", "_runs_s")]
        assert len(runs) == 2 and data[key] == min(runs)
    assert data["first_load_ratio"] == round(data["first_load_s"] / data["copy_floor_s"], 2)
    phases = {"changeset_s", "entities_s", "ledger_s", "commit_s", "state_s"}  # state_s: the kept LMS state
    assert set(data["first_load_phases_s"]) == phases
    assert data["day2_from_kept_state"] and data["day2_lms_rows_read_back"] == 0
    # CPU of the kept attempts, this process's and the PostgreSQL server's (backends included, ended or not)
    for key in ("copy_floor_cpu_s", "first_load_cpu_s", "day2_cpu_s"):
        assert set(data[key]) == {"loader", "postgres"} and min(data[key].values()) >= 0
    assert data["first_load_cpu_s"]["loader"] > 0 and data["first_load_cpu_s"]["postgres"] > 0
    first_cpu = sum(data["first_load_cpu_s"].values())
    assert data["first_load_cpu_bound_ratio"] == round(first_cpu / data["cpus"] / data["copy_floor_s"], 2)
    assert 0 < data["peak_rss_mb"] < 2048


def test_postgres_server_cpu_counts_backends_that_ended(pg_server):
    """A load's connections close when it ends: their backends' CPU must stay in the server's figure."""
    before = pg_server.cpu_seconds()
    with psycopg.connect(pg_server.url()) as conn:
        pid = conn.info.backend_pid
        conn.execute("SELECT count(*) FROM generate_series(1, 5000000)").fetchone()
        while_open = pg_server.cpu_seconds()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists():  # gone once the postmaster has reaped it
        assert time.monotonic() < deadline, "the backend did not end"
        time.sleep(0.01)
    assert before < while_open <= pg_server.cpu_seconds()
