"""``etl-project bench``: how fast is each stage, against the floor of a bare DuckDB load of the same CSVs.

Everything measured runs in this one process (so ``peak_rss_mb`` covers it); generating the drop happens in
a child process first and is not measured.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from etl_project.oneroster.spec import MANIFEST
from etl_project.warehouse import DUCKDB_CONFIG, WarehouseResource

if TYPE_CHECKING:
    from etl_project.devservers.postgres import PostgresServer
    from etl_project.lms import LmsBackend, LoadResult

BENCH_DISTRICT = "bench"
BENCH_NIGHT = "2026-11-27"


@dataclass
class BenchResult:
    students: int
    rows: int = 0
    bytes: int = 0
    bare_duckdb_s: float = 0.0
    fetch_s: float = 0.0
    archive_s: float = 0.0
    normalize_s: float = 0.0
    publish_s: float = 0.0  # the night's tables as Parquet into the archive (etl_project/night_tables.py)
    normalize_ratio: float = 0.0
    ingest_ratio: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data.update(data.pop("extra"))
        return data


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(into: dict[str, float], key: str):
    started = time.perf_counter()
    yield
    into[key] = round(time.perf_counter() - started, 3)


def generate_in_child(out: Path, students: int, day: int, seed: int) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "etl_project.cli.main",
            "generate",
            str(out),
            "--students",
            str(students),
            "--day",
            str(day),
            "--seed",
            str(seed),
            "--force",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def bare_duckdb_load(drop: Path, database: Path, memory_limit: str) -> int:
    """The floor: each CSV read once, all columns as text, into a table; no checks, no types."""
    rows = 0
    with duckdb.connect(str(database), config={**DUCKDB_CONFIG, "memory_limit": memory_limit}) as conn:
        for csv in sorted(drop.glob("*.csv")):
            if csv.name == MANIFEST:
                continue
            conn.execute(
                f'create table "{csv.stem}" as select * from read_csv(?, all_varchar=true, header=true)',
                [str(csv)],
            )
            rows += conn.execute(f'select count(*) from "{csv.stem}"').fetchone()[0]
    return rows


def _fetch_over_sftp(work: Path, fetched_dir: Path, times: dict[str, float]):
    """The generated drop fetched from a loopback OpenSSH sshd (timed as ``fetch_s``): files, source info."""
    from etl_project.devservers.sshd import start_sshd
    from etl_project.districts import District, SftpSource
    from etl_project.sources import open_source

    with start_sshd(str(work / "sshd")) as server:
        district = District(
            id=BENCH_DISTRICT,
            name="Bench",
            source=SftpSource(
                host=server.host,
                port=server.port,
                username=server.username,
                remote_dir=str(work / "outbox"),
                host_key=server.host_key_line,
                private_key_file=server.client_key_path,
            ),
        )
        fetched_dir.mkdir()
        with timed(times, "fetch_s"), open_source(district) as source:
            listing = source.find_drop(BENCH_NIGHT, settle_seconds=0)
            return source.fetch(listing, fetched_dir), source.info


def _floor_and_normalize(
    work: Path,
    drop: Path,
    snapshot_dir: Path,
    provenance: dict,
    memory_limit: str,
    repeat: int,
    progress: Callable[[str], None],
    result: BenchResult,
    times: dict[str, float],
    archive,
):
    """The floor (a bare DuckDB load) and our normalize + validate (then the night's tables published to the
    archive, as a run does), alternately ``repeat`` times, the best of each kept in ``times``; the last
    load's report."""
    from etl_project.night_tables import publish_night
    from etl_project.oneroster.load import load_drop

    floors, normalizes, publishes = [], [], []
    for attempt in range(1, repeat + 1):
        progress(f"floor: bare DuckDB load of the same CSVs (run {attempt}/{repeat}) ...")
        with timed(times, "bare_duckdb_s"):
            result.rows = bare_duckdb_load(drop, work / "bare.duckdb", memory_limit)
        (work / "bare.duckdb").unlink()
        floors.append(times["bare_duckdb_s"])

        progress(f"normalize + validate into the district's DuckDB (run {attempt}/{repeat}) ...")
        warehouse = WarehouseResource(root=str(work / f"warehouse{attempt}"), memory_limit=memory_limit)
        with warehouse.connect(BENCH_DISTRICT) as conn:
            with timed(times, "normalize_s"):
                report = load_drop(
                    conn, snapshot_dir, district=BENCH_DISTRICT, date=BENCH_NIGHT, provenance=provenance
                )
            progress(f"publish the night's tables as Parquet to the archive (run {attempt}/{repeat}) ...")
            with timed(times, "publish_s"):
                publish_night(conn, archive, warehouse, BENCH_DISTRICT, BENCH_NIGHT)
        warehouse.offboard(BENCH_DISTRICT)
        normalizes.append(times["normalize_s"])
        publishes.append(times["publish_s"])
    times["bare_duckdb_s"], times["normalize_s"] = min(floors), min(normalizes)
    times["publish_s"] = min(publishes)
    if repeat > 1:
        result.extra.update({"repeat": repeat, "bare_duckdb_runs_s": floors, "normalize_runs_s": normalizes,
                             "publish_runs_s": publishes})  # fmt: skip
    return report


def run_bench(
    students: int,
    *,
    workdir: Path | None = None,
    seed: int = 1,
    memory_limit: str = "1GB",
    repeat: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> BenchResult:
    """Measure each stage; with ``repeat`` > 1 the floor and normalize run alternately that many times and the
    best of each is kept (on a shared machine the best run is the least disturbed one)."""
    from etl_project.archive import ArchiveResource
    from etl_project.oneroster.load import FileProvenance

    work = Path(workdir or tempfile.mkdtemp(prefix="etl-bench-"))
    result = BenchResult(students=students)
    times: dict[str, float] = {}
    try:
        drop = work / "outbox" / BENCH_NIGHT
        progress(f"generating {students} students in {drop} (not measured) ...")
        generate_in_child(drop, students, day=1, seed=seed)
        result.bytes = sum(p.stat().st_size for p in drop.iterdir())

        progress("fetch over SFTP on loopback (OpenSSH sshd) ...")
        fetched_dir = work / "fetched"
        fetched, info = _fetch_over_sftp(work, fetched_dir, times)

        progress("archive (local archive folder) ...")
        archive = ArchiveResource(url=str(work / "archive")).open()
        with timed(times, "archive_s"):
            snapshot = archive.put_snapshot(BENCH_DISTRICT, BENCH_NIGHT, fetched, info)
        shutil.rmtree(fetched_dir)

        snapshot_dir = work / "snapshot"
        snapshot = archive.download_snapshot(BENCH_DISTRICT, BENCH_NIGHT, snapshot_dir)
        provenance = {f.name: FileProvenance(f.size, f.sha256, f.uri, f.version_id) for f in snapshot.files}
        report = _floor_and_normalize(
            work, drop, snapshot_dir, provenance, memory_limit, repeat, progress, result, times, archive
        )
        result.extra["accepted"] = sum(f.accepted for f in report.files.values())
        result.extra["rejected"] = sum(f.rejected for f in report.files.values())
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    for key, value in times.items():
        setattr(result, key, value)
    bare = max(result.bare_duckdb_s, 1e-9)
    result.normalize_ratio = round(result.normalize_s / bare, 2)
    ingest = result.fetch_s + result.archive_s + result.normalize_s + result.publish_s
    result.ingest_ratio = round(ingest / bare, 2)
    result.peak_rss_mb = round(peak_rss_mb(), 1)
    return result


def cpu_count() -> int:
    """The cores this process may run on (its CPU affinity: a cpuset or taskset, not a CPU quota)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Spent:
    """Wall and CPU seconds of one or more measured spans: ``loader`` is this process (every thread: DuckDB's,
    the COPY feeders), ``postgres`` the PostgreSQL server (PostgresServer.cpu_seconds; None if unknown)."""

    wall: float = 0.0
    loader: float = 0.0
    postgres: float | None = 0.0

    @contextmanager
    def adding(self, server: PostgresServer) -> Iterator[None]:
        postgres = server.cpu_seconds()  # read outside the timed span: it scans /proc
        loader, wall = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - wall
            self.loader += time.process_time() - loader
            after = server.cpu_seconds()
            known = None not in (self.postgres, postgres, after)
            self.postgres = self.postgres + after - postgres if known else None

    def cpu(self) -> dict[str, float] | None:
        """CPU seconds per process, or None where the server's are unknown."""
        if self.postgres is None:
            return None
        return {"loader": round(self.loader, 2), "postgres": round(self.postgres, 2)}


def copy_floor(
    duck: duckdb.DuckDBPyConnection, server: PostgresServer, url: str, date: str, work: Path
) -> tuple[Spent, int]:
    """The floor: the night's mapped LMS rows COPYed into unindexed PostgreSQL tables (only COPY is measured)
    in a schema of their own, dropped afterwards."""
    import psycopg

    from etl_project.lms.mapping import source_sql
    from etl_project.lms.schema import ENTITIES

    spent, rows = Spent(), 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS floor")
        types = {"text": "TEXT", "date": "DATE", "bool": "BOOLEAN", "int": "INTEGER"}
        for e in ENTITIES:
            cols = ", ".join(f"{f.name} {types[f.kind]}" for f in e.fields)
            conn.execute(
                f"CREATE TABLE floor.{e.name} "
                f"(id BIGINT, district TEXT, sourced_id TEXT, {cols}, active BOOLEAN)"
            )
        for e in ENTITIES:
            path = work / f"floor-{e.name}.csv"
            cols = ["id", "district", "sourced_id", *e.field_names, "active"]
            fields = ", ".join(e.field_names)
            source = source_sql(e, date)
            select = f"SELECT row_number() OVER (), 'bench', sourced_id, {fields}, true FROM ({source})"
            rows += duck.execute(f"COPY ({select}) TO '{path}' (FORMAT csv, HEADER false)").fetchone()[0]
            with (
                spent.adding(server),
                open(path, "rb") as src,
                conn.cursor().copy(
                    f"COPY floor.{e.name} ({', '.join(cols)}) FROM STDIN (FORMAT csv)"
                ) as copy,
            ):
                while block := src.read(1 << 20):
                    copy.write(block)
            path.unlink()
        conn.execute("DROP SCHEMA floor CASCADE")
    return spent, rows


def run_lms_bench(
    students: int,
    *,
    workdir: Path | None = None,
    seed: int = 1,
    memory_limit: str = "1GB",
    repeat: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> BenchResult:
    """First load of N students into a throwaway PostgreSQL, then day 2; against a bare COPY floor. With
    ``repeat`` > 1 the three are measured that many times, each attempt on a fresh database, and the best of
    each is kept (on a shared machine the best run is the least disturbed one)."""
    work = Path(workdir or tempfile.mkdtemp(prefix="etl-bench-lms-"))
    result = BenchResult(students=students)
    nights = {1: BENCH_NIGHT, 2: "2026-11-28"}
    try:
        warehouse = WarehouseResource(root=str(work / "warehouse"), memory_limit=memory_limit)
        _normalize_nights(warehouse, work, nights, seed, progress, result)
        attempts = _load_attempts(warehouse, work, nights, repeat, progress, result)
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    _lms_figures(result, *attempts)
    result.peak_rss_mb = round(peak_rss_mb(), 1)
    return result


def _normalize_nights(
    warehouse: WarehouseResource,
    work: Path,
    nights: dict[int, str],
    seed: int,
    progress: Callable[[str], None],
    result: BenchResult,
) -> None:
    """Generate and normalize each night into the district's DuckDB (day 1's normalize is timed), then
    publish its tables to a local archive, from which the LMS load reads them as a run does."""
    from etl_project.archive.base import sha256_of
    from etl_project.archive.local import LocalArchive, file_uri, version_id_for
    from etl_project.night_tables import publish_night
    from etl_project.oneroster.load import FileProvenance, load_drop

    for day, night in nights.items():
        drop = work / f"day{day}"
        progress(f"generating day {day}: {result.students} students (not measured) ...")
        generate_in_child(drop, result.students, day=day, seed=seed)
        # Provenance as the local archive records it, so ledger rows are as wide as in production.
        provenance = {}
        for path in drop.iterdir():
            size, sha256 = sha256_of(path)
            provenance[path.name] = FileProvenance(size, sha256, file_uri(path), version_id_for(sha256))
        progress(f"normalize day {day} into DuckDB ...")
        started = time.perf_counter()
        with warehouse.connect(BENCH_DISTRICT) as conn:
            load_drop(conn, drop, district=BENCH_DISTRICT, date=night, provenance=provenance)
            if day == 1:
                result.normalize_s = round(time.perf_counter() - started, 3)
            publish_night(conn, LocalArchive(work / "archive"), warehouse, BENCH_DISTRICT, night)
        if day == 1:
            result.bytes = sum(p.stat().st_size for p in drop.iterdir())
        shutil.rmtree(drop)


def _load_attempts(
    warehouse: WarehouseResource,
    work: Path,
    nights: dict[int, str],
    repeat: int,
    progress: Callable[[str], None],
    result: BenchResult,
) -> tuple[list[Spent], list[tuple[LoadResult, Spent]], list[tuple[LoadResult, Spent]]]:
    """Per attempt, on a fresh database: the COPY floor, the first load and day 2."""
    import psycopg

    from etl_project.archive.local import LocalArchive
    from etl_project.devservers.postgres import start_postgres
    from etl_project.lms import open_backend
    from etl_project.night_tables import read_nights

    floors: list[Spent] = []
    firsts: list[tuple[LoadResult, Spent]] = []
    seconds: list[tuple[LoadResult, Spent]] = []
    with start_postgres() as server:  # its own folder: the postgres OS user must reach it
        for attempt in range(1, repeat + 1):
            url = server.create_database(f"lms{attempt}")
            backend = open_backend(url)
            # the night's tables as a run's LMS steps read them: archived Parquet through the local cache
            archive = LocalArchive(work / "archive")
            with read_nights(warehouse, archive, BENCH_DISTRICT, list(nights.values())) as duck:
                progress(f"floor: bare COPY of the rows into unindexed tables (run {attempt}/{repeat}) ...")
                floor, result.rows = copy_floor(duck, server, url, nights[1], work)
                floors.append(floor)
                progress(
                    f"first load into the LMS (change set + one transaction) (run {attempt}/{repeat}) ..."
                )
                firsts.append(timed_load(duck, backend, server, nights[1], f"bench-1-{attempt}"))
                progress(f"day 2 into the LMS (run {attempt}/{repeat}) ...")
                seconds.append(timed_load(duck, backend, server, nights[2], f"bench-2-{attempt}"))
            with psycopg.connect(server.url(), autocommit=True) as admin:  # free the disk for the next run
                admin.execute(f'DROP DATABASE "lms{attempt}"')
    return floors, firsts, seconds


def _lms_figures(
    result: BenchResult,
    floors: list[Spent],
    firsts: list[tuple[LoadResult, Spent]],
    seconds: list[tuple[LoadResult, Spent]],
) -> None:
    """The best of each, with its own phases and counts, into ``result.extra``."""
    repeat = len(floors)
    floor = min(floors, key=lambda spent: spent.wall)
    first, first_spent = min(firsts, key=lambda run: run[1].wall)
    second, day2_spent = min(seconds, key=lambda run: run[1].wall)
    floor_s, first_s, day2_s = (round(s.wall, 3) for s in (floor, first_spent, day2_spent))
    result.extra.update(
        {
            "first_load_s": first_s,
            "copy_floor_s": floor_s,
            "first_load_ratio": round(first_s / max(floor_s, 1e-9), 2),
            "first_load_rows_written": first.rows_written,
            "day2_s": day2_s,
            "day2_ratio_to_first_load": round(day2_s / max(first_s, 1e-9), 3),
            "day2_rows_written": second.rows_written,
            "day2_state": second.state,
            "day2_written": second.written,
            # Day 2 reads the district's rows back from the LMS, narrow (id, sourced_id, active, row_hash).
            "day2_lms_rows_read_back": second.changes.read_back,
            "first_load_phases_s": first.durations,
            "day2_phases_s": second.durations,
        }
    )
    # What the kept attempts cost in CPU, so a ratio can be read against this machine's cores: however well
    # the work overlaps, a load cannot take less than its CPU-seconds divided by the cores.
    cpu = {
        "copy_floor_cpu_s": floor.cpu(),
        "first_load_cpu_s": first_spent.cpu(),
        "day2_cpu_s": day2_spent.cpu(),
    }
    if None not in cpu.values():
        cores, first_cpu = cpu_count(), sum(cpu["first_load_cpu_s"].values())
        result.extra.update(
            {
                "cpus": cores,
                **cpu,
                "first_load_cpu_bound_ratio": round(first_cpu / cores / max(floor_s, 1e-9), 2),
            }
        )
    if repeat > 1:
        result.extra.update(
            {
                "repeat": repeat,
                "copy_floor_runs_s": [round(s.wall, 3) for s in floors],
                "first_load_runs_s": [round(s.wall, 3) for _, s in firsts],
                "day2_runs_s": [round(s.wall, 3) for _, s in seconds],
            }
        )


def timed_load(
    duck: duckdb.DuckDBPyConnection, backend: LmsBackend, server: PostgresServer, night: str, run_id: str
) -> tuple[LoadResult, Spent]:
    """One night's LMS load (default thresholds) and its wall and CPU time."""
    from etl_project.lms import Thresholds, load_night

    spent = Spent()
    with spent.adding(server):
        loaded = load_night(
            duck, backend, BENCH_DISTRICT, night, run_id=run_id, thresholds=Thresholds.from_config({})
        )
    return loaded, spent
