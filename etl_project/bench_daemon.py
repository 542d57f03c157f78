"""``etl-project bench --small``: small district-nights through the real daemon, beside an in-process floor.

N districts of a few hundred students each get a generated drop in a local folder. A real ``dagster-daemon``
(the project's ``dagster.yaml``: queued runs, 4 at once, one per district) runs in a temporary DAGSTER_HOME;
its new-drop sensor registers the districts and requests their first syncs, the queue starts them, the
default run launcher runs each in its own run worker. Then the floor: the same district-nights, one after
another, in this process (``sync_night``, no settle wait), against a second fresh home.

``overhead_ratio`` = daemon wall × cores / floor wall: 1.0 would mean the daemon path costs the machine no
more than running the nights back to back in one process. Everything started is stopped, also on SIGINT or
SIGTERM. The pieces (``create_districts``, ``start_daemon``, ``wait_for_runs``, ``run_times``) are reusable
by other benchmarks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter

from etl_project.partitions import DistrictNight

JOB = "nightly_sync"
SENSOR = "new_drop_sensor"
#: the benchmark's runs: the new-drop sensor's (the nightly schedule may add runs of its own at :00 and :30)
SENSOR_RUNS = RunsFilter(job_name=JOB, tags={"dagster/sensor_name": SENSOR})
REPO = Path(__file__).resolve().parent.parent
WORKSPACE = REPO / "workspace.yaml"
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
Progress = Callable[[str], None]


@dataclass
class RunTimes:
    """One run's timeline from the run storage (epoch seconds) and its steps' work."""

    run_id: str
    status: str
    created: float
    started: float
    ended: float
    steps_s: dict[str, float]

    @property
    def wall_s(self) -> float:
        return self.ended - self.started

    @property
    def overhead_s(self) -> float:
        return self.wall_s - sum(self.steps_s.values())


@dataclass
class SmallBenchResult:
    bench: str
    districts: int
    students: int
    district_nights: int
    succeeded: int
    cores: int
    wall_s: float  # first run requested -> last run ended, through the daemon
    daemon_start_to_first_run_s: float
    district_nights_per_hour: float
    floor_wall_s: float  # the same district-nights one after another in one process
    floor_district_nights_per_hour: float
    overhead_ratio: float
    per_run_overhead_s: float  # median of run wall minus step work
    median_run_wall_s: float
    median_step_work_s: float
    median_queue_to_start_s: float
    median_step_s: dict[str, float] = field(default_factory=dict)
    floor_run_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ setup


def create_districts(
    home: Path, dropbox: Path, count: int, students: int, night: str, seed: int = 1
) -> list[DistrictNight]:
    """``count`` local-folder districts ``small-001``... with one generated drop each, in ``home``'s
    registry; drops are generated once under ``dropbox`` and reused by every home that registers them."""
    from etl_project.districts import District, LocalSource
    from etl_project.generate import generate_drop
    from etl_project.registry import Registry

    registry = Registry(f"sqlite:///{home / 'registry.sqlite'}")
    nights = []
    for i in range(1, count + 1):
        did = f"small-{i:03d}"
        folder = dropbox / did
        if not (folder / night / "manifest.csv").exists():
            generate_drop(folder / night, students, seed=seed + i, district_id=did)
        registry.add(District(id=did, name=f"Small {i}", source=LocalSource(path=str(folder))), replace=True)
        nights.append(DistrictNight(night, did))
    return nights


def home_env(home: Path) -> dict[str, str]:
    """This process's environment pointed at ``home`` (registry, archive, warehouse, LMS, Dagster)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "DAGSTER_", "LMS_"))}
    env.update(ETL_PROJECT_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return env


@contextlib.contextmanager
def environ(env: dict[str, str]) -> Iterator[None]:
    """This process's ``os.environ`` replaced by ``env`` for the block."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def start_daemon(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """``dagster-daemon run`` on the project's workspace, in its own process group; the group (daemon, code
    server, run workers) is stopped when the block ends, however it ends."""
    daemon = Path(sys.executable).parent / "dagster-daemon"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(daemon), "run", "-w", str(WORKSPACE)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after 30 s; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the benchmark like Ctrl-C does, so ``finally`` blocks stop what it started."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------------------------------ runs


def wait_for_runs(
    instance: DagsterInstance,
    expected: int,
    timeout_s: float,
    daemon: subprocess.Popen | None = None,
    progress: Progress | None = None,
) -> list[RunRecord]:
    """The new-drop sensor's run records once ``expected`` of them have finished (or at the timeout, or when
    the daemon exits), polling the run storage once a second."""
    deadline = time.monotonic() + timeout_s
    said = -1
    while True:
        records = instance.get_run_records(SENSOR_RUNS)
        done = [r for r in records if r.dagster_run.status in FINISHED]
        if progress and len(done) != said:
            said = len(done)
            progress(f"  {len(done)} of {expected} runs finished ({len(records)} requested)")
        if len(done) >= expected or time.monotonic() > deadline:
            return records
        if daemon is not None and daemon.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited with code {daemon.returncode}")
        time.sleep(1.0)


def _epoch(when: dt.datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def run_times(instance: DagsterInstance, record: RunRecord) -> RunTimes:
    run = record.dagster_run
    steps = {
        s.step_key: s.end_time - s.start_time
        for s in instance.get_run_step_stats(run.run_id)
        if s.start_time is not None and s.end_time is not None
    }
    return RunTimes(
        run_id=run.run_id,
        status=run.status.value,
        created=_epoch(record.create_timestamp),
        started=record.start_time or _epoch(record.create_timestamp),
        ended=record.end_time or time.time(),
        steps_s=steps,
    )


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else 0.0


# ------------------------------------------------------------------------------------------------ bench


def through_daemon(
    home: Path, nights: list[DistrictNight], timeout_s: float, progress: Progress
) -> tuple[float, list[RunTimes]]:
    """Start the daemon on ``home`` (districts already registered) and wait for every night's run; returns
    when the daemon started (epoch) and the runs' times."""
    from etl_project.instance import ensure_dagster_home
    from etl_project.settings import Settings

    env = home_env(home)
    with environ(env):
        ensure_dagster_home(Settings.from_env())
        progress(f"starting dagster-daemon (log: {home / 'daemon.log'})")
        started = time.time()
        with start_daemon(env, home / "daemon.log") as daemon, DagsterInstance.get() as instance:
            records = wait_for_runs(instance, len(nights), timeout_s, daemon, progress)
            return started, [run_times(instance, r) for r in records]


def in_one_process(home: Path, nights: list[DistrictNight], progress: Progress) -> list[float]:
    """The floor: the same nights synced one after another in this process; each night's seconds."""
    from etl_project.instance import ensure_dagster_home
    from etl_project.settings import Settings

    took = []
    with environ(home_env(home)):
        ensure_dagster_home(Settings.from_env())
        from etl_project.sync import sync_night  # reads the environment when first imported

        with DagsterInstance.get() as instance:
            for dn in nights:
                started = time.perf_counter()
                outcome = sync_night(dn, instance=instance, settle_seconds=0, log_level="ERROR")
                took.append(round(time.perf_counter() - started, 3))
                if not outcome.success:
                    raise RuntimeError(f"floor run of {dn} failed: {outcome.failure}")
                progress(f"  floor {dn}: {took[-1]:.1f} s")
    return took


def summarize(
    districts: int, students: int, daemon_started: float, runs: list[RunTimes], floor: list[float]
) -> SmallBenchResult:
    cores = os.cpu_count() or 1
    first = min(r.created for r in runs)
    wall = max(r.ended for r in runs) - first
    floor_wall = sum(floor)
    step_keys = sorted({k for r in runs for k in r.steps_s})
    return SmallBenchResult(
        bench="daemon-small",
        districts=districts,
        students=students,
        district_nights=len(runs),
        succeeded=sum(r.status == DagsterRunStatus.SUCCESS.value for r in runs),
        cores=cores,
        wall_s=round(wall, 3),
        daemon_start_to_first_run_s=round(first - daemon_started, 3),
        district_nights_per_hour=round(len(runs) / wall * 3600, 1),
        floor_wall_s=round(floor_wall, 3),
        floor_district_nights_per_hour=round(len(floor) / floor_wall * 3600, 1),
        overhead_ratio=round(wall * cores / floor_wall, 2),
        per_run_overhead_s=median([r.overhead_s for r in runs]),
        median_run_wall_s=median([r.wall_s for r in runs]),
        median_step_work_s=median([sum(r.steps_s.values()) for r in runs]),
        median_queue_to_start_s=median([r.started - r.created for r in runs]),
        median_step_s={k: median([r.steps_s[k] for r in runs if k in r.steps_s]) for k in step_keys},
        floor_run_s=floor,
    )


def run_small_bench(
    districts: int,
    students: int,
    *,
    workdir: Path | None = None,
    seed: int = 1,
    timeout_s: float = 3600.0,
    progress: Progress = print,
) -> SmallBenchResult:
    night = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    with contextlib.ExitStack() as stack, sigterm_as_interrupt():
        work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="etl-bench-small-")))
        progress(f"generating {districts} drops of {students} students in {work / 'dropbox'}")
        daemon_home, floor_home = work / "daemon-home", work / "floor-home"
        nights = create_districts(daemon_home, work / "dropbox", districts, students, night, seed)
        create_districts(floor_home, work / "dropbox", districts, students, night, seed)
        started, runs = through_daemon(daemon_home, nights, timeout_s, progress)
        progress(f"floor: the same {len(nights)} nights one after another in this process")
        floor = in_one_process(floor_home, nights, progress)
        return summarize(districts, students, started, runs, floor)
