"""The bench commands run end to end and report consistent figures (never timed: these check behaviour)."""

from __future__ import annotations

import json
import subprocess
import sys


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
    assert 0 < data["peak_rss_mb"] < 2048
