"""The soak benchmark (``etl-project bench --soak``) end to end at a tiny size, and its plan of districts.

The soak runs a real dagster-webserver and dagster-daemon on a temp DAGSTER_HOME (the default launcher),
a real sshd for the refused logins, the floor in its own process; nothing here is timed: the figures must
exist and the counts must be exact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl_project.soak.fleet import (
    FAILURES,
    HEALTHY,
    failures_by_kind,
    floor_sample,
    plan_fleet,
    scale_floor,
    stratum,
)
from etl_project.soak.observe import percentile, union_seconds

KEYS = {
    "districts", "district_nights", "wall_s", "cores", "district_nights_per_hour", "per_run_overhead_s",
    "p50_drop_to_applied_s", "p95_drop_to_applied_s", "max_sensor_tick_s", "partition_page_p95_s",
    "overhead_ratio", "lost_runs", "duplicate_runs", "cross_district_effects", "worker_killed_run",
}  # fmt: skip


def test_plan_has_the_size_mix_and_a_few_failures_of_each_kind():
    fleet = plan_fleet(100, rate=0.03, seed=7)
    sizes = sorted(d.students for d in fleet)
    assert sizes[-1] == 200_000 and sizes[-2] <= 50_000  # one very large district
    assert sum(10_000 <= s <= 50_000 for s in sizes) == 8  # some large ones
    assert sum(s <= 2_000 for s in sizes) == 91  # most are small
    assert failures_by_kind(fleet) == dict.fromkeys(FAILURES, 3)
    assert all(d.students <= 2_000 for d in fleet if d.kind != HEALTHY)  # the large ones stay healthy
    assert len({d.id for d in fleet}) == 100
    assert plan_fleet(100, rate=0.03, seed=7) == fleet  # same seed, same plan
    tiny = plan_fleet(5, students=50)
    assert [d.students for d in tiny] == [50] * 5 and failures_by_kind(tiny) == dict.fromkeys(FAILURES, 1)


def test_a_floor_sample_takes_a_share_of_every_stratum_and_scales_its_time_up_stratum_by_stratum():
    fleet = plan_fleet(200, rate=0.03, seed=7)
    running = [d for d in fleet if d.runs]
    victim = next(d.id for d in running if d.kind == HEALTHY and d.students <= 2_000)
    sample = floor_sample(fleet, 0.1, always={victim}, seed=3)
    assert victim in {d.id for d in sample} and set(sample) <= set(running)
    assert {stratum(d) for d in sample} == {stratum(d) for d in running}  # every stratum, the 200k one too
    for key in {stratum(d) for d in running}:  # a tenth of each (at least one), the victim on top
        share = max(1, round(sum(stratum(d) == key for d in running) * 0.1))
        assert sum(stratum(d) == key for d in sample) in {share, share + 1}
    assert len(sample) < len(running) // 5
    assert floor_sample(fleet, 0.1, always={victim}, seed=3) == sample  # same seed, same sample
    assert floor_sample(fleet, 1.0) == running

    # When a night's cost depends only on its stratum, the scaled sample is exactly the whole floor.
    cost = {"small": 5.0, "large": 20.0, "largest": 90.0}
    walls = {d.id: [cost[stratum(d).split("/")[1]]] * 2 for d in sample}
    assert scale_floor(fleet, walls) == pytest.approx(
        sum(2 * cost[stratum(d).split("/")[1]] for d in running)
    )
    with pytest.raises(ValueError, match="largest"):
        scale_floor(fleet, {d.id: walls[d.id] for d in sample if d.students <= 50_000})


def test_step_spans_are_counted_once_where_they_overlap():
    assert union_seconds([(0, 4), (2, 6), (10, 11)]) == 7
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None


def test_tiny_soak_through_the_daemon_reports_every_figure_and_the_injected_failures(tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "etl_project.cli.main", "bench", "--soak", "--districts", "6",
         "--district-students", "50", "--history-nights", "3", "--timeout", "1200",
         "--workdir", str(tmp_path / "work"), "--out", str(out), "--floor-sample", "0.5", "--json"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == json.loads(json.dumps(data))  # the progress file ends complete
    assert set(data) >= KEYS and data["phase"] == "done"
    assert data["districts"] == 6
    # 2 healthy + broken + held run both nights; unreachable and refused never get a run.
    assert data["district_nights"] == 8
    # --floor-sample 0.5: one of the two healthy districts, the broken one and the held one.
    assert data["floor_runs"] == 6 and data["lms_compared_districts"] == 3
    assert data["floor_sample"]["districts"] == 3 and data["floor_sample"]["of"] == 4
    assert data["lost_runs"] == 0 and data["duplicate_runs"] == 0 and data["unexpected_runs"] == []
    assert data["cross_district_effects"] == 0 and data["state_mismatches"] == []
    assert data["failures_injected"] == dict.fromkeys(FAILURES, 1)
    assert data["failures_observed"] == data["failures_injected"] and data["unexpected_outcomes"] == []
    assert data["history_events"] == 6 * 3  # districts x nights of lms/users history
    assert data["partition_page_p95_s"] > 0 and data["ui"]["asset_page_p95_s"] > 0
    assert data["sensor_ticks"] >= 2 and data["max_sensor_tick_s"] > 0
    assert 0 < data["p50_drop_to_applied_s"] <= data["p95_drop_to_applied_s"]
    assert data["per_run_wall_s"] >= data["per_run_overhead_s"] >= 0 and data["overhead_ratio"] > 0
    assert data["worker_killed_run"] == "not requested"

    # The floor again, on every district this time, for the same soak (its runs long ended).
    again = subprocess.run(
        [sys.executable, "-m", "etl_project.cli.main", "bench", "--soak", "--floor-of", str(out), "--json"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["phase"] == "done" and data["floor_runs"] == 8 and data["lms_compared_districts"] == 4
    assert data["cross_district_effects"] == 0 and data["state_mismatches"] == []
    assert data["district_nights"] == 8 and data["floor_command"].endswith("--json")


SOAK_RUN = {
    "districts": 20, "district_nights": 36, "cores": 2, "wall_s": 900.0, "district_nights_per_hour": 144.0,
    "district_nights_per_hour_per_core": 72.0, "per_run_overhead_s": 30.5, "p50_drop_to_applied_s": 120.0,
    "p95_drop_to_applied_s": None, "max_sensor_tick_s": 1.5, "partition_page_p95_s": 0.4,
    "partitions_per_asset": 96_000, "overhead_ratio": 6.25, "lost_runs": 0, "duplicate_runs": 0,
    "cross_district_effects": 0,
}  # fmt: skip


def test_bench_tables_writes_a_soak_row_beside_the_other_kinds(tmp_path):
    (tmp_path / "soak-20.json").write_text(json.dumps(SOAK_RUN))
    (tmp_path / "soak-100.json").write_text(json.dumps({**SOAK_RUN, "districts": 100, "lost_runs": 1}))
    doc = tmp_path / "doc.md"
    doc.write_text("# B\n\n<!-- bench:soak -->\n<!-- /bench:soak -->\n")
    script = Path(__file__).resolve().parent.parent / "scripts" / "bench_tables.py"
    subprocess.run([sys.executable, str(script), "--doc", str(doc), "--json-dir", str(tmp_path)], check=True)
    rows = doc.read_text().split("<!-- bench:soak -->\n")[1].splitlines()[2:4]
    assert rows[0].startswith("| 20 | 36 | 2 | 900.00 s | **144** (72 a core) | 30.50 s | 120.00 s / n/a |")
    assert "96,000 partitions" in rows[0] and rows[0].endswith("| 6.25 | 0 / 0 / 0 |")
    assert rows[1].startswith("| 100 |") and rows[1].endswith("| 1 / 0 / 0 |")  # ordered by districts


def test_bench_tables_orders_soaks_of_one_size_as_they_ran_and_names_their_code(tmp_path):
    quiet = {"partition_page_p95_s": 0.25}
    later = {**SOAK_RUN, "published_at": 2000.0, "code": "after", "ui_quiet_after_soak": quiet}
    earlier = {**SOAK_RUN, "published_at": 1000.0, "code": "before"}
    (tmp_path / "a-later.json").write_text(json.dumps(later))
    (tmp_path / "b-earlier.json").write_text(json.dumps(earlier))
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- bench:soak -->\n<!-- /bench:soak -->\n")
    script = Path(__file__).resolve().parent.parent / "scripts" / "bench_tables.py"
    subprocess.run([sys.executable, str(script), "--doc", str(doc), "--json-dir", str(tmp_path)], check=True)
    rows = doc.read_text().splitlines()[3:5]
    assert rows[0].startswith("| 20 (before) |") and "(96,000 partitions) |" in rows[0]
    assert rows[1].startswith("| 20 (after) |") and "0.40 s (96,000 partitions; quiet: 0.25 s) |" in rows[1]


def test_a_cluster_json_names_its_workers_and_their_pid_files(tmp_path):
    from etl_project.soak.kill import worker_of
    from etl_project.soak.stack import read_cluster

    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "w1.pid").write_text(str(os.getpid()))  # this test's process plays worker w1
    env = {"DAGSTER_HOME": "/x", "LMS_URL": "postgresql://u@h/lms", "PYTHONPATH": "/elsewhere"}
    info = {"dir": str(tmp_path), "workers": ["w1", "w2"], "webserver_url": "http://127.0.0.1:3000/",
            "code_server_port": 4000, "env": env}  # fmt: skip
    (tmp_path / "cluster.json").write_text(json.dumps(info))
    stack = read_cluster(tmp_path / "cluster.json")
    assert stack.webserver_url == "http://127.0.0.1:3000"
    assert stack.env == {"DAGSTER_HOME": "/x", "LMS_URL": "postgresql://u@h/lms"}  # not its PYTHONPATH
    assert stack.workers == [{"name": "w1", "pid": os.getpid()}, {"name": "w2", "pid": None}]
    assert stack.cluster  # nothing started by the soak: it stops nothing
    # A run executing in a child process of w1 is w1's; with no such worker listed, it is nobody's.
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert worker_of(child.pid, stack.workers) == os.getpid()
        assert worker_of(child.pid, [{"name": "w2", "pid": None}]) is None
    finally:
        child.communicate(b"", timeout=30)


def test_every_run_on_a_killed_worker_is_counted_as_killed_not_only_the_one_aimed_at():
    from etl_project.soak.kill import went_with

    aimed = {"etl_project/owner_pid": "101", "etl_project/worker": "w1@vm"}
    sibling = {"etl_project/owner_pid": "102", "etl_project/worker": "w1@vm"}  # w1's other child
    elsewhere = {"etl_project/owner_pid": "201", "etl_project/worker": "w2@vm"}
    assert went_with(aimed, [101, 100], "w1") and went_with(sibling, [101, 100], "w1")
    assert not went_with(elsewhere, [101, 100], "w1")
    # locally (no cluster worker): only the killed process's own run
    assert went_with(aimed, [101], "") and not went_with(sibling, [101], "")


def test_a_cluster_floor_uses_the_cluster_storage_in_databases_of_its_own(tmp_path, pg_server):
    import psycopg

    from etl_project.soak.floor import floor_env
    from etl_project.soak.stack import Stack

    pg_server.create_database("lms")
    cluster = {
        "LMS_URL": pg_server.url("lms"),
        "ETL_PROJECT_REGISTRY_URL": pg_server.url("registry"),
        "DAGSTER_PG_URL": "postgresql+psycopg2://postgres@127.0.0.1:6432/dagster",  # its pooler
        "ETL_PROJECT_ARCHIVE": "s3://archive/nights",
        "ETL_PROJECT_S3_ENDPOINT": "http://127.0.0.1:9000",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    local = floor_env(Stack(webserver_url="http://x", env={}, processes=[object()]), tmp_path / "a", "k")
    assert set(local) == {"ETL_PROJECT_HOME", "DAGSTER_HOME", "ETL_PROJECT_SECRET_KEY"}  # embedded default

    env = floor_env(Stack(webserver_url="http://x", env=cluster), tmp_path / "floor", "k")
    assert env["LMS_URL"] == pg_server.url("floor_lms")
    assert env["ETL_PROJECT_REGISTRY_URL"] == pg_server.url("floor_registry")
    assert env["DAGSTER_PG_URL"] == "postgresql+psycopg2://postgres@127.0.0.1:6432/floor_dagster"
    assert env["ETL_PROJECT_ARCHIVE"] == "s3://archive/floor"  # the same bucket, not the runs' prefix
    assert env["ETL_PROJECT_S3_ENDPOINT"] == cluster["ETL_PROJECT_S3_ENDPOINT"]
    assert "postgres:" in (Path(env["DAGSTER_HOME"]) / "dagster.yaml").read_text()
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'floor_%'")}
    assert names == {"floor_registry", "floor_lms", "floor_dagster"}
