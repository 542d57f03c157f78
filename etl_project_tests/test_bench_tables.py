"""scripts/bench_tables.py writes the benchmark tables of a document from bench JSON, between its markers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_tables.py"

INGEST = {
    "students": 1234, "rows": 10_203, "bytes": 2_500_000, "bare_duckdb_s": 0.25, "fetch_s": 0.5,
    "archive_s": 0.031, "normalize_s": 0.4, "normalize_ratio": 1.6, "ingest_ratio": 3.72,
    "peak_rss_mb": 201.4, "accepted": 10_203, "rejected": 0,
}  # fmt: skip
LMS = {
    "students": 5678, "rows": 41_007, "bytes": 4_000_000, "normalize_s": 0.9, "peak_rss_mb": 310.6,
    "first_load_s": 1.5, "copy_floor_s": 0.3, "first_load_ratio": 5.0, "first_load_rows_written": 41_007,
    "day2_s": 0.6, "day2_ratio_to_first_load": 0.4, "day2_rows_written": 512, "day2_state": "applied",
    "day2_lms_rows_read_back": 41_007, "repeat": 2,
    "first_load_phases_s": {"ledger_s": 0.01, "entities_s": 0.7, "changeset_s": 0.2, "commit_s": 0.45},
    "day2_phases_s": {"ledger_s": 0.02, "entities_s": 0.05, "changeset_s": 0.33, "commit_s": 0.004},
    "cpus": 2, "first_load_cpu_s": {"loader": 0.46, "postgres": 0.95}, "first_load_cpu_bound_ratio": 2.35,
}  # fmt: skip

PORTAL = {
    "portal": True, "students": 4321, "requests": 40, "nights": ["2026-09-14", "2026-09-15"],
    "prepare_s": 12.5, "target_p95_ms": 200.0, "cpus": 2,
    "pages": {"dashboard": {"p50_ms": 12.25, "p95_ms": 30.04, "max_ms": 41.0, "cpu_ms": 9.52},
              "trace by name": {"p50_ms": 20.0, "p95_ms": 250.5, "max_ms": 300.0}},
}  # fmt: skip

DOC = """# Benchmarks

Intro stays.

<!-- bench:ingest -->
| stale | table |
<!-- /bench:ingest -->

Between stays.

<!-- bench:lms -->
<!-- /bench:lms -->

<!-- bench:lms-phases -->
old
<!-- /bench:lms-phases -->

<!-- bench:portal -->
<!-- /bench:portal -->

End stays.
"""


def run_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), "--doc", str(tmp_path / "doc.md"), "--json-dir", str(tmp_path)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)


def write_inputs(tmp_path: Path) -> Path:
    (tmp_path / "ingest-1234.json").write_text(json.dumps(INGEST))
    (tmp_path / "lms-postgres-5678.json").write_text(json.dumps(LMS))
    (tmp_path / "portal-4321.json").write_text(json.dumps(PORTAL))
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    return doc


def table_rows(text: str, name: str) -> list[str]:
    inside = text.split(f"<!-- bench:{name} -->\n")[1].split(f"<!-- /bench:{name} -->")[0]
    return inside.strip().splitlines()[2:]  # after the header and the --- line


def test_tables_are_written_from_the_json_between_the_markers(tmp_path):
    doc = write_inputs(tmp_path)
    assert run_script(tmp_path).returncode == 0
    text = doc.read_text()

    assert table_rows(text, "ingest") == [
        "| 1,234 | 10,203 | 2.5 MB | 1 | 0.25 s | 0.50 s | 0.03 s | 0.40 s | n/a | **1.60** | **3.72** "
        "| 201 MB |"
    ]
    assert table_rows(text, "lms") == [
        "| 5,678 | 41,007 | best of 2 | 0.30 s | 1.50 s | **5.00x** | 0.60 s (512 rows) | **40.0%** | 41,007 "
        "| 0.46 + 0.95 s | 2.35 | 311 MB |"
    ]
    assert table_rows(text, "lms-phases") == [
        "| 5,678 | first load | 0.20 s | 0.70 s | 0.01 s | 0.45 s |",
        "| 5,678 | day 2 | 0.33 s | 0.05 s | 0.02 s | 0.00 s |",
    ]
    assert table_rows(text, "portal") == [
        "| 4,321 | dashboard | 40 | 12.2 ms | **30.0 ms** | 41.0 ms | 9.5 ms |",
        "| 4,321 | trace by name | 40 | 20.0 ms | **250.5 ms** | 300.0 ms | n/a |",
    ]
    for kept in ("Intro stays.", "Between stays.", "End stays."):
        assert kept in text
    assert "stale" not in text and "\nold\n" not in text


def test_check_reports_a_document_that_differs_from_the_json(tmp_path):
    doc = write_inputs(tmp_path)
    stale = run_script(tmp_path, "--check")
    assert stale.returncode == 1 and "tables differ" in stale.stdout
    assert doc.read_text() == DOC  # --check writes nothing

    assert run_script(tmp_path).returncode == 0
    assert run_script(tmp_path, "--check").returncode == 0


def test_several_runs_are_rows_ordered_by_students(tmp_path):
    doc = write_inputs(tmp_path)
    (tmp_path / "ingest-99.json").write_text(json.dumps({**INGEST, "students": 99, "rows": 812}))
    assert run_script(tmp_path).returncode == 0
    rows = table_rows(doc.read_text(), "ingest")
    assert [row.split(" | ")[0:2] for row in rows] == [["| 99", "812"], ["| 1,234", "10,203"]]


def test_a_run_that_names_its_code_says_so_in_its_rows(tmp_path):
    doc = write_inputs(tmp_path)
    (tmp_path / "lms-before.json").write_text(json.dumps({**LMS, "code": "before: abc1234"}))
    assert run_script(tmp_path).returncode == 0
    text = doc.read_text()
    labels = [row.split(" | ")[0] for row in table_rows(text, "lms")]
    assert sorted(labels) == ["| 5,678", "| 5,678 (before: abc1234)"]
    assert sum("(before: abc1234) | first load" in row for row in table_rows(text, "lms-phases")) == 1


def test_a_table_without_its_runs_is_refused_in_one_sentence(tmp_path):
    doc = write_inputs(tmp_path)
    (tmp_path / "lms-postgres-5678.json").unlink()
    failed = run_script(tmp_path)
    assert failed.returncode == 1
    assert f"{doc}: the table bench:lms needs at least one lms run's JSON; none given" in failed.stderr
    assert doc.read_text() == DOC  # nothing half-written


def test_a_broken_json_file_is_named_with_its_line_and_column(tmp_path):
    write_inputs(tmp_path)
    (tmp_path / "ingest-1234.json").write_text('{"students": 1,\n "rows": }')
    failed = run_script(tmp_path)
    assert failed.returncode == 1
    assert f"{tmp_path / 'ingest-1234.json'}: line 2, column 10: not JSON" in failed.stderr


def test_the_committed_benchmark_tables_are_the_ones_their_json_gives():
    """docs/benchmarks.md is only ever changed through the script: its tables match docs/bench/*.json."""
    checked = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


SMALL = {
    "bench": "daemon-small", "districts": 12, "students": 300, "district_nights": 12, "succeeded": 12,
    "cores": 2, "wall_s": 60.0, "district_nights_per_hour": 720.0, "floor_wall_s": 40.0,
    "floor_district_nights_per_hour": 1080.0, "overhead_ratio": 3.0, "per_run_overhead_s": 4.25,
    "median_run_wall_s": 9.5, "median_step_work_s": 5.25, "median_queue_to_start_s": 1.5,
}  # fmt: skip


def test_small_district_runs_have_their_own_table_and_stay_out_of_the_ingest_one(tmp_path):
    doc = write_inputs(tmp_path)
    doc.write_text(DOC + "\n<!-- bench:small -->\n<!-- /bench:small -->\n")
    (tmp_path / "daemon-small-before.json").write_text(json.dumps({**SMALL, "code": "before"}))
    assert run_script(tmp_path).returncode == 0, "a small run must not be read as an ingest run"
    text = doc.read_text()
    assert table_rows(text, "small") == [
        "| 12 × 300 (before) | 12 of 12 | 60.00 s | **720** | 40.00 s | 1,080 | **3.00** | 4.25 s | 9.50 s "
        "| 5.25 s | 1.50 s |"
    ]
    assert len(table_rows(text, "ingest")) == 1
