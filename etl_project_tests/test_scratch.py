"""No leftovers: scratch is removed however a run ends, and what a killed process left is swept at start."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    RunsFilter,
    asset,
    build_sensor_context,
    define_asset_job,
    execute_job,
    in_process_executor,
    materialize,
    reconstructable,
)

from etl_project.archive import ArchiveResource
from etl_project.assets.ingest import fetch_and_archive_drop
from etl_project.assets.oneroster import oneroster_tables
from etl_project.automation.stale_runs import stale_run_sweeper
from etl_project.districts import District, LocalSource
from etl_project.districts.resource import DistrictsResource
from etl_project.generate import generate_drop
from etl_project.jobs import nightly_sync
from etl_project.owner import Owner, this_host
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight
from etl_project.registry import Registry
from etl_project.run_owner import PARENT_RUN_TAG, claim_run, owner_tags, run_owner
from etl_project.scratch import scratch_dir, sweep_scratch
from etl_project.warehouse import WarehouseResource

NIGHT1, NIGHT2 = "2026-11-26", "2026-11-27"
DISTRICT_TAG = "dagster/partition/district"
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def wait_for(condition, what: str, proc: subprocess.Popen, log: Path, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert proc.poll() is None, f"the sync exited before {what}: " + log.read_text()
        assert time.monotonic() < deadline, f"no {what} within {timeout} s: " + log.read_text()
        time.sleep(0.1)
    return found


def test_scratch_is_removed_however_the_block_ends_and_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("ETL_PROJECT_SCRATCH", str(tmp_path / "scratch"))
    with scratch_dir("ok") as done:
        assert list(done.iterdir()) == []  # a drop fetched into it holds only the drop's files
        (done / "rows.csv").write_text("x")
        assert oct(done.stat().st_mode & 0o777) == "0o700"
        assert f".{os.getpid()}@{this_host()}." in done.name
    assert not done.exists()
    with pytest.raises(RuntimeError), scratch_dir("boom") as failed:
        (failed / "rows.csv").write_text("x")
        raise RuntimeError("the step failed")
    assert not failed.exists()
    assert list((tmp_path / "scratch").iterdir()) == []


def test_sweep_removes_only_scratch_of_dead_processes_on_this_host(tmp_path):
    root = tmp_path / "scratch"
    pid = dead_pid()
    dead = root / f"drop-d1.{pid}@{this_host()}.abcd1234"
    dead.mkdir(parents=True)
    (dead / "users.csv").write_text("student data")
    marked = root / "snapshot-d1.1@elsewhere.zzzz9999"  # owner file wins over the name
    marked.mkdir()
    marked.with_name(marked.name + ".owner").write_text(Owner(host=this_host(), pid=pid).to_json())
    other_host = root / f"drop-d2.{pid}@another-host.example.org.efgh5678"
    other_host.mkdir()
    unrelated = root / "not-ours"
    unrelated.mkdir()
    with scratch_dir("live", root=root) as live:
        removed = sweep_scratch(root)
        assert live.exists()
    assert sorted(removed) == sorted([dead, marked])
    assert not dead.exists() and not marked.exists()
    assert not marked.with_name(marked.name + ".owner").exists()
    assert other_host.exists() and unrelated.exists()


def test_a_failing_run_leaves_no_scratch(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    monkeypatch.setenv("ETL_PROJECT_SCRATCH", str(scratch))
    dropbox = tmp_path / "dropbox"
    generate_drop(dropbox / NIGHT1, 60, day=1, seed=3)
    manifest = dropbox / NIGHT1 / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("oneroster.version,1.1", "oneroster.version,9.9"))
    district = District(id="f1", name="F1", source=LocalSource(path=str(dropbox)))
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["f1"])
        result = materialize(
            [fetch_and_archive_drop, oneroster_tables],
            partition_key=DistrictNight(NIGHT1, "f1").key,
            resources={
                "districts": DistrictsResource(path=_districts_file(tmp_path, district)),
                "archive": ArchiveResource(url=str(tmp_path / "archive")),
                "warehouse": WarehouseResource(root=str(tmp_path / "warehouse")),
            },
            instance=instance,
            run_config={"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}},
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "oneroster.version '9.9'" in failure.step_failure_data.user_failure_data.description
    assert scratch.is_dir()  # the run did use the scratch root ...
    assert list(scratch.iterdir()) == []  # ... and left nothing in it


def _districts_file(tmp_path: Path, district: District) -> str:
    path = tmp_path / "districts.toml"
    path.write_text(
        f'[districts.{district.id}]\nname = "{district.name}"\n[districts.{district.id}.source]\n'
        f'kind = "local"\npath = "{district.source.path}"\n'
    )
    return str(path)


def test_the_sweeper_sensor_fails_runs_of_dead_processes_here_only(instance):
    def started_run(owner: Owner, **extra: str) -> str:
        run = instance.create_run_for_job(
            _nightly_sync(),
            status=DagsterRunStatus.STARTED,
            tags={DISTRICT_TAG: "s1", **owner_tags(owner), **extra},
        )
        return run.run_id

    dead = started_run(Owner(host=this_host(), pid=dead_pid()))
    live = started_run(Owner.of())
    reused = started_run(Owner(host=this_host(), pid=os.getpid(), started="1"))  # our pid, an older process
    elsewhere = started_run(Owner(host="another-host.example.org", pid=dead_pid()))
    # the retry of the dead run: Dagster copied its tags, owner included, and names the parent
    retry = started_run(Owner(host=this_host(), pid=dead_pid()), **{PARENT_RUN_TAG: dead})

    stale_run_sweeper(build_sensor_context(instance=instance))

    runs = (dead, live, reused, elsewhere, retry)
    status = {run_id: instance.get_run_by_id(run_id).status for run_id in runs}
    assert status == {
        dead: DagsterRunStatus.FAILURE,
        live: DagsterRunStatus.STARTED,
        reused: DagsterRunStatus.FAILURE,
        elsewhere: DagsterRunStatus.STARTED,
        retry: DagsterRunStatus.STARTED,  # not the dead parent's: its own worker claims it
    }
    assert run_owner(instance.get_run_by_id(retry).tags) is None
    [failure] = instance.all_logs(dead, of_type=DagsterEventType.RUN_FAILURE)
    assert "stale-run sweep" in failure.message and "is gone" in failure.message


def _nightly_sync():
    from etl_project.definitions import defs

    return defs.resolve_job_def(nightly_sync.name)


def test_a_killed_sync_is_failed_and_cleaned_at_the_next_sync_and_the_district_runs_again(
    tmp_path, monkeypatch
):
    home = tmp_path / "home"
    dropbox = tmp_path / "dropbox"
    for day, night in enumerate((NIGHT1, NIGHT2), start=1):
        generate_drop(dropbox / night, 120, day=day, seed=5)
    Registry(f"sqlite:///{home / 'registry.sqlite'}").add(
        District(id="k1", name="K1", source=LocalSource(path=str(dropbox)))
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "DAGSTER_", "LMS_"))}
    env.update(ETL_PROJECT_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
    for name, value in env.items():
        if name.startswith(("ETL_PROJECT_", "DAGSTER_")):
            monkeypatch.setenv(name, value)
    cli = [sys.executable, "-m", "etl_project.cli.main", "sync", "--district", "k1"]
    log = tmp_path / "killed.log"
    with open(log, "wb") as out:
        # a long settle wait: the run sits in its fetch step, scratch folder made, until it is killed
        killed = subprocess.Popen(
            [*cli, "--date", NIGHT1, "--settle-seconds", "600"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        scratch = home / "scratch"
        [left] = wait_for(
            lambda: scratch.is_dir() and [p for p in scratch.glob(f"drop-k1.{killed.pid}@*") if p.is_dir()],
            "scratch folder",
            killed,
            log,
        )
        with DagsterInstance.get() as instance:
            run_id = wait_for(lambda: _started_run(instance), "STARTED run", killed, log)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
    assert left.exists()
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED  # stuck, as it was

    with scratch_dir("live") as live:  # this process is alive: the sweep must keep its folder
        done = subprocess.run(
            [*cli, "--date", NIGHT2, "--settle-seconds", "0"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert live.exists()
    assert not left.exists()
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE
        [failure] = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
        assert f"pid {killed.pid}" in failure.message
        # the run queue's per-district limit counts in-progress runs: none is left holding k1's slot
        holding = instance.get_run_records(RunsFilter(statuses=IN_PROGRESS, tags={DISTRICT_TAG: "k1"}))
        assert holding == []
        [night2] = instance.get_run_records(RunsFilter(tags={"dagster/partition": f"{NIGHT2}|k1"}))
        assert night2.dagster_run.status == DagsterRunStatus.SUCCESS


def _started_run(instance: DagsterInstance) -> str | None:
    records = instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.STARTED], tags={"dagster/partition": f"{NIGHT1}|k1"})
    )
    return records[0].dagster_run.run_id if records else None


@asset
def claiming_step(context) -> None:
    claim_run(context)


def _claiming_job():
    return Definitions(assets=[claiming_step], jobs=[define_asset_job("claiming")]).resolve_job_def(
        "claiming"
    )


def test_a_launched_run_records_its_run_worker_not_the_step_process(instance):
    # the default multiprocess executor runs the step in a child process of this one (the run worker)
    with execute_job(reconstructable(_claiming_job), instance=instance) as result:
        assert result.success
        tags = instance.get_run_by_id(result.run_id).tags
    assert run_owner(tags) == Owner.of()
    steps = {e.pid for e in result.all_events if e.event_type == DagsterEventType.STEP_START}
    assert steps and os.getpid() not in steps  # the step really ran elsewhere


def _claiming_in_process_job():
    job = define_asset_job("claiming_in_process", executor_def=in_process_executor)
    return Definitions(assets=[claiming_step], jobs=[job]).resolve_job_def("claiming_in_process")


def _launch_claiming_in_process(ref) -> None:
    """In a multiprocessing child, as the code server starts a run worker: the run, executed in process."""
    with (
        DagsterInstance.from_ref(ref) as instance,
        execute_job(reconstructable(_claiming_in_process_job), instance=instance) as result,
    ):
        assert result.success


def test_an_in_process_run_records_its_own_process_even_as_a_multiprocessing_child(instance):
    worker = multiprocessing.get_context("spawn").Process(
        target=_launch_claiming_in_process, args=(instance.get_ref(),)
    )
    worker.start()
    worker.join(timeout=300)
    assert worker.exitcode == 0
    [record] = instance.get_run_records(RunsFilter(job_name="claiming_in_process"))
    assert run_owner(record.dagster_run.tags).pid == worker.pid  # not this process, its parent
