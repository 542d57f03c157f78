"""The multi-worker deployment, for real: `etl-project cluster up` with two Celery workers (PostgreSQL,
redis-server, moto's S3 server, the gRPC code server, dagster-webserver, dagster-daemon), runs submitted
through the webserver's GraphQL API and queued by the daemon.

* Night 1 runs on worker w1 and night 2 on worker w2 (pinned through their own queues): the LMS ends exactly
  as when the same nights run one after another in one process. Worker w2 reads nothing from w1's disk: what
  night 2 needs of night 1 comes from the archive and the databases.
* Dagster's storage reaches PostgreSQL through PgBouncer: connections opened and closed one after another
  (as dagster-postgres does for almost every query) reuse one PostgreSQL server process.
* Night 3, taken from the shared queue, loses its worker to SIGKILL mid-run: the Celery sweep fails the
  run, run_retries starts it again on the other worker, and the LMS ends as if night 3 had run once.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster_graphql import DagsterGraphQLClient

from etl_project.cluster.config import WORKER_TAG, ClusterInfo, worker_queue
from etl_project.cluster.topology import down, up
from etl_project.districts import District, LocalSource
from etl_project.lms import open_backend
from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight
from etl_project.portal_services.sync_now import partition_tags
from etl_project.registry import Registry
from etl_project_tests.lms_helpers import snapshot
from etl_project_tests.test_night_truth import RUN_CONFIG, Nights

DISTRICT = "lincoln"
NIGHTS = ["2026-11-20", "2026-11-21", "2026-11-22"]
QUEUE_TAG = "dagster-celery/queue"
PARENT_TAG = "dagster/parent_run_id"
ENDED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    info = up(root / "deploy", workers=2, sweep_seconds=5)
    saved = dict(os.environ)
    os.environ.update(info.env)
    try:
        yield info, root
    finally:
        os.environ.clear()
        os.environ.update(saved)
        down(info.dir)


@pytest.fixture(scope="module")
def reference(cluster, tmp_path_factory):
    """The same district and drops synced night by night in one process into a second LMS database."""
    info, root = cluster
    ref_url = info.env["LMS_URL"].rsplit("/", 1)[0] + "/lms_reference"
    import psycopg

    with psycopg.connect(info.env["LMS_URL"], autocommit=True) as conn:
        conn.execute("CREATE DATABASE lms_reference")
    nights = Nights(root / "one-process", DagsterInstance.ephemeral(), {DISTRICT: ""}, lms_url=ref_url)
    for day, night in enumerate(NIGHTS, start=1):
        nights.drop(DISTRICT, night, day=day)
    return nights, ref_url


def _run_config() -> dict:
    """The test's run config; a run's steps in its worker's process when the job still lets the run choose
    (the default multi-or-in-process executor: a process per step costs minutes on a loaded machine)."""
    from etl_project.definitions import defs

    executor = defs.resolve_job_def("nightly_sync").executor_def.name
    if executor == "multi_or_in_process_executor":
        return {**RUN_CONFIG, "execution": {"config": {"in_process": {}}}}
    return RUN_CONFIG


def _submit(info: ClusterInfo, night: str, extra_tags: dict[str, str]) -> str:
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(info.webserver_url.rsplit(":", 1)[1]))
    tags = {**partition_tags(DistrictNight(night, DISTRICT)), **extra_tags}
    return client.submit_job_execution(
        "nightly_sync",
        repository_location_name="etl_project",
        repository_name="__repository__",
        run_config=_run_config(),
        tags=tags,
    )


def _wait(instance: DagsterInstance, run_id: str, done, what: str, info: ClusterInfo, timeout: float = 600):
    deadline = time.monotonic() + timeout
    while not done(run := instance.get_run_by_id(run_id)):  # bounded poll of the run's state
        assert time.monotonic() < deadline, f"{what}: {run.status if run else None}\n" + _logs(info)
        time.sleep(0.5)
    return run


def _logs(info: ClusterInfo) -> str:
    logs = Path(info.dir) / "logs"
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in sorted(logs.glob("*.log"))
    )


def _why(instance: DagsterInstance, run_id: str) -> str:
    """The run's failure events (step and run failures, engine errors) as text."""
    lines = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and "FAILURE" in event.event_type_value:
            error = getattr(event.event_specific_data, "error", None)
            lines.append(f"{event.event_type_value} {entry.message}\n{error.to_string() if error else ''}")
    return "\n".join(lines)


def _lms_state(url: str) -> dict[str, list[tuple]]:
    """The district's LMS rows and change ledger; wall-clock stamps (updated_at, deactivated_at) kept only as
    set or not set, since two databases loaded at different times differ there and nowhere else."""
    snap = snapshot(open_backend(url), DISTRICT)
    return {
        name: [tuple(v is not None if isinstance(v, dt.datetime) else v for v in row) for row in rows]
        for name, rows in snap.items()
    }


def test_nights_on_two_workers_leave_the_lms_as_one_process_does(cluster, reference):
    info, _ = cluster
    nights, ref_url = reference
    source = LocalSource(path=str(nights.root / f"dropbox-{DISTRICT}"))
    Registry(info.env["ETL_PROJECT_REGISTRY_URL"]).add(
        District(DISTRICT, "Lincoln", source, enabled=False), None
    )
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(DISTRICTS_PARTITION, [DISTRICT])
        for night, worker in zip(NIGHTS[:2], info.workers, strict=True):
            run_id = _submit(info, night, {QUEUE_TAG: worker_queue(worker)})
            run = _wait(instance, run_id, lambda r: r.status in ENDED, f"night {night}", info)
            assert run.status == DagsterRunStatus.SUCCESS, _why(instance, run_id)
            assert run.tags[WORKER_TAG].startswith(f"{worker}@"), run.tags
            assert nights.run(DISTRICT, night).success
            assert _lms_state(info.env["LMS_URL"]) == _lms_state(ref_url), f"night {night}"
        assert len(_lms_state(info.env["LMS_URL"])["users"]) > 40


def test_dagster_connections_reuse_postgres_server_processes(cluster):
    import psycopg2  # dagster-postgres's driver

    info, _ = cluster
    dagster_url = info.env["DAGSTER_PG_URL"].replace("postgresql+psycopg2://", "postgresql://", 1)
    direct_url = info.env["LMS_URL"].rsplit("/", 1)[0] + "/dagster"
    assert dagster_url != direct_url  # not the database's own port

    def backend_pids(url: str, connections: int) -> set[int]:
        pids = set()
        for _ in range(connections):
            conn = psycopg2.connect(url)
            conn.autocommit = True  # as dagster-postgres connects
            with conn.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pids.add(cur.fetchone()[0])
            conn.close()
        return pids

    assert len(backend_pids(direct_url, 20)) == 20  # each direct connection is a new server process
    assert len(backend_pids(dagster_url, 20)) <= 2


def test_a_run_whose_worker_is_killed_is_retried_on_the_other_and_applied_once(cluster, reference):
    info, _ = cluster
    nights, ref_url = reference
    with DagsterInstance.get() as instance:
        run_id = _submit(info, NIGHTS[2], {})
        run = _wait(instance, run_id, _executing, "night 3 executing on a worker", info)
        victim = run.tags[WORKER_TAG].split("@", 1)[0]
        os.killpg(int((Path(info.dir) / "pids" / f"{victim}.pid").read_text()), signal.SIGKILL)

        lost = _wait(instance, run_id, lambda r: r.status in ENDED, "the killed worker's run", info)
        assert lost.status == DagsterRunStatus.FAILURE
        retry = _wait_retry(instance, run_id, info)
        assert retry.status == DagsterRunStatus.SUCCESS, _why(instance, retry.run_id)
        survivor = next(w for w in info.workers if w != victim)
        assert retry.tags[WORKER_TAG].startswith(f"{survivor}@")

        assert nights.run(DISTRICT, NIGHTS[2]).success
        assert _lms_state(info.env["LMS_URL"]) == _lms_state(ref_url)
        night_runs = instance.get_run_records(
            RunsFilter(tags={"dagster/partition": str(DistrictNight(NIGHTS[2], DISTRICT))})
        )
        assert sorted(r.dagster_run.status.value for r in night_runs) == ["FAILURE", "SUCCESS"]


def _executing(run) -> bool:
    """The run is executing on a worker: tagged by it, STARTED, not ended (the kill lands mid-run)."""
    assert run.status not in ENDED, f"night 3 ended before the kill: {run.status}"
    return WORKER_TAG in run.tags and run.status == DagsterRunStatus.STARTED


def _wait_retry(instance: DagsterInstance, run_id: str, info: ClusterInfo):
    deadline = time.monotonic() + 600
    while True:  # bounded poll: run_retries launches the retry through the queue
        records = instance.get_run_records(RunsFilter(tags={PARENT_TAG: run_id}))
        if records and records[0].dagster_run.status in ENDED:
            return records[0].dagster_run
        assert time.monotonic() < deadline, "no finished retry\n" + _logs(info)
        time.sleep(0.5)
