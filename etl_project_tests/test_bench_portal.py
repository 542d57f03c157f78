"""`etl-project bench --portal` end to end on a small district: synced through `etl-project sync`, the real
portal started, every page requested over HTTP as the signed-in admin; a second run reuses the district."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from etl_project.bench_portal import READY

PAGES = {"dashboard", "night report", "trace by sourcedId", "trace by name", "record history"}


def bench(workdir) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-m", "etl_project.cli.main", "bench", "--portal", "--students", "300",
         "--requests", "3", "--workdir", str(workdir), "--json"],
        capture_output=True, text=True, timeout=900, env=os.environ.copy(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), done.stderr


def test_portal_bench_measures_every_page_and_reuses_the_synced_district(tmp_path):
    first, said = bench(tmp_path / "work")
    assert "generating night" in said and "syncing" in said
    assert first["portal"] is True and first["students"] == 300 and first["requests"] == 3
    assert set(first["pages"]) == PAGES
    for page in first["pages"].values():
        assert 0 < page["p50_ms"] <= page["p95_ms"] <= page["max_ms"] and page["cpu_ms"] > 0
    assert first["prepare_s"] > 0 and not first["reused"] and (tmp_path / "work" / READY).exists()

    (tmp_path / "work" / READY).unlink()  # as if interrupted after its last sync
    resumed, said = bench(tmp_path / "work")
    assert "generating night" not in said and "syncing" not in said and not resumed["reused"]

    again, said = bench(tmp_path / "work")
    assert again["reused"] and again["prepare_s"] == resumed["prepare_s"] and "reusing" in said
    assert set(again["pages"]) == PAGES
