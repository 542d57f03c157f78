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
    assert data["day2_written"]["users"]["created"] > 0 and data["day2_written"]["users"]["deactivated"] > 0
    # Day 2 reads back, narrow, every row the first load wrote (no edits were made in the LMS).
    assert data["day2_lms_rows_read_back"] == data["first_load_rows_written"]
    assert set(data["first_load_phases_s"]) == {"changeset_s", "entities_s", "ledger_s", "commit_s"}
    for key in ("copy_floor", "first_load", "day2"):  # every attempt is listed; the figure is one of them
        assert len(data[f"{key}_runs_s"]) == 2 and data[f"{key}_s"] in data[f"{key}_runs_s"]
        assert set(data[f"{key}_cpu_s"]) == {"loader", "postgres"}
    assert data["first_load_cpu_s"]["loader"] > 0 and data["first_load_cpu_s"]["postgres"] > 0
    assert data["first_load_ratio"] > 0 and data["first_load_cpu_bound_ratio"] > 0
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
