"""The soak from start to end: plan, generate, publish night 1, let the sensor queue the runs, publish
night 2, wait for every run, then measure (runs, UI, ticks), run the floor and compare the LMS district by
district."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterInstance

from etl_project.bench import cpu_count
from etl_project.soak import drops, observe
from etl_project.soak import fleet as fleet_mod
from etl_project.soak.fleet import HEALTHY, SoakDistrict
from etl_project.soak.report import SoakReport
from etl_project.soak.stack import Stack, child_env, local_env, read_cluster, start_local


@dataclass
class SoakOptions:
    districts: int
    cluster: Path | None = None
    history_nights: int = 90
    history_districts: int = 0  # seed history for this many districts (padding beyond the soak's own)
    kill_worker: bool = False
    out: Path | None = None
    workdir: Path | None = None
    scale: float = 1.0
    students: int | None = None
    failure_rate: float = 0.03
    seed: int = 1
    timeout_s: float = 6 * 3600
    ui_repeat: int = 10
    floor_sample: float = 1.0  # the share of districts (by stratum) the floor runs; its wall is scaled up
    command: str = ""  # the command line that started the soak, kept in the JSON
    progress: Callable[[str], None] = lambda _: None


def soak_dates(today: dt.date | None = None) -> dict[int, str]:
    """Night 1 the day before yesterday, night 2 yesterday (UTC): recent nights, as the sensor wants."""
    today = today or dt.datetime.now(dt.UTC).date()
    return {1: (today - dt.timedelta(days=2)).isoformat(), 2: (today - dt.timedelta(days=1)).isoformat()}


def run_soak(opts: SoakOptions) -> dict[str, object]:
    from etl_project.devservers.sshd import start_sshd
    from etl_project.registry import new_key
    from etl_project.soak.safety_net import restart_schedule, stop_schedule

    work = Path(opts.workdir or tempfile.mkdtemp(prefix="etl-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    report = SoakReport(opts.out)
    plan = fleet_mod.plan_fleet(opts.districts, rate=opts.failure_rate, scale=opts.scale,
                                students=opts.students, seed=opts.seed)  # fmt: skip
    dates = soak_dates()
    report.update(phase="generating", command=opts.command, districts=len(plan), nights=dates,
                  workdir=str(work), students_total=sum(d.students for d in plan),
                  failures_injected=fleet_mod.failures_by_kind(plan))  # fmt: skip
    _generate(work, plan, dates, opts)
    stack = read_cluster(opts.cluster) if opts.cluster else None
    env = stack.env if stack else local_env(work, new_key())
    os.environ.update(env)
    if stack is None:
        from etl_project.instance import ensure_dagster_home
        from etl_project.settings import Settings

        ensure_dagster_home(Settings.from_env())
        opts.progress("starting dagster-webserver and dagster-daemon ...")
        stack = start_local(work, env)
    try:
        schedule_before = stop_schedule(stack.webserver_url)
        report.update(nightly_schedule="stopped during the soak (the sensor path is measured)")
        try:
            with start_sshd(str(work / "sshd")) as sshd, DagsterInstance.get() as instance:
                _soak(work, plan, dates, opts, report, stack, sshd, instance)
        finally:
            restart_schedule(stack.webserver_url, schedule_before)
    finally:
        stack.stop()
    _floor_and_compare(work, plan, dates, opts, report, stack)
    report.update(phase="done")
    return report.data


def floor_again(opts: SoakOptions, earlier: dict[str, object]) -> dict[str, object]:
    """The floor and the comparison, again, for a soak whose runs have ended (``earlier``, its ``--out``
    JSON; say, one stopped during its floor): ``opts`` are that soak's, with ``floor_sample``."""
    if "partition_page_p95_s" not in earlier:
        raise SystemExit(f"{opts.out}: that soak ended before its floor (phase: {earlier.get('phase')}); "
                         "run the soak again")  # fmt: skip
    report = SoakReport(opts.out)
    report.update(**{**earlier, "phase": "UI measured; running the floor", "floor_command": opts.command})
    plan = fleet_mod.plan_fleet(opts.districts, rate=opts.failure_rate, scale=opts.scale,
                                students=opts.students, seed=opts.seed)  # fmt: skip
    dates = {int(k): str(v) for k, v in dict(earlier["nights"]).items()}  # type: ignore[call-overload]
    work = Path(str(earlier["workdir"]))
    if opts.cluster:
        stack = read_cluster(opts.cluster)
    else:  # the embedded default under the soak's folder; its services are gone, its files are read
        from etl_project.registry import new_key

        stack = Stack(webserver_url="", env=local_env(work, new_key()))
    os.environ.update(stack.env)
    _floor_and_compare(work, plan, dates, opts, report, stack)
    report.update(phase="done")
    return report.data


def _generate(work: Path, plan: list[SoakDistrict], dates: dict[int, str], opts: SoakOptions) -> None:
    opts.progress(
        f"generating {2 * len(plan)} drops ({sum(d.students for d in plan):,} students a night) ..."
    )
    for i, district in enumerate(plan):
        if district.runs:
            for night, date in dates.items():
                drops.stage_night(work, district, night, date, seed=opts.seed * 100_000 + i)


def _publish(work: Path, plan: list[SoakDistrict], date: str) -> dict[str, float]:
    return {d.id: drops.publish(work, d, date) for d in plan if d.runs}


def _soak(work, plan, dates, opts, report, stack: Stack, sshd, instance: DagsterInstance) -> None:
    from etl_project.soak.kill import kill_one, what_became
    from etl_project.soak.sources import register

    ids = {d.id for d in plan}
    expected = {(d.id, date) for d in plan if d.runs for date in dates.values()}
    published = {dates[1]: _publish(work, plan, dates[1])}
    register(work, plan, sshd)
    started = time.time()
    report.update(phase="night 1 published; waiting for the sensor", published_at=started)
    opts.progress(f"night 1 published for {len(published[dates[1]])} districts; waiting for the sensor ...")
    night1 = {k for k in expected if k[1] == dates[1]}
    observe.wait_for(instance, ids, lambda by_key: night1 <= set(by_key), opts.timeout_s)
    published[dates[2]] = _publish(work, plan, dates[2])
    opts.progress("night 2 published; waiting for every run to end ...")
    state = {"killed": None, "tried": not opts.kill_worker}

    def on_poll(by_key):
        done = sum(1 for runs in by_key.values() for r in runs if r.dagster_run.status in observe.TERMINAL)
        report.update(phase=f"running: {done}/{len(expected)} district-nights ended")
        if not state["tried"] and done >= len(expected) // 4:
            state["killed"] = kill_one(instance, ids, stack.workers)
            state["tried"] = state["killed"] is not None or done >= len(expected) // 2
            if state["killed"]:
                opts.progress(
                    f"SIGKILL {state['killed'].pids} running {sorted(state['killed'].runs.values())}"
                )

    settled = lambda by_key: observe.settled(by_key, expected)  # noqa: E731
    by_key = observe.wait_for(instance, ids, settled, opts.timeout_s, on_poll=on_poll)
    _run_figures(instance, plan, dates, expected, by_key, published, report, stack, opts)
    report.update(worker_killed_run=what_became(instance, state["killed"], opts.kill_worker))
    _ui_figures(instance, plan, dates, opts, report, stack, started)


def _run_figures(instance, plan, dates, expected, by_key, published, report, stack: Stack, opts) -> None:
    from etl_project.soak.outcomes import count_outcomes

    lost, duplicated = observe.lost_and_duplicated(by_key, expected)
    timings = observe.timings(instance, by_key)
    first_created = min(r.create_timestamp.timestamp() for runs in by_key.values() for r in runs)
    last_end = max((t.end for t in timings), default=first_created)
    wall = last_end - first_created
    applied = _drop_to_applied(by_key, published)
    cores = _cores(stack)
    district_nights = len(timings)
    report.update(
        phase="runs ended; measuring the UI",
        district_nights=district_nights,
        wall_s=round(wall, 3),
        soak_elapsed_s=round(last_end - min(min(p.values()) for p in published.values()), 3),
        cores=cores,
        district_nights_per_hour=round(district_nights / wall * 3600, 1) if wall > 0 else None,
        district_nights_per_hour_per_core=round(district_nights / wall * 3600 / cores, 1)
        if wall > 0
        else None,
        per_run_overhead_s=observe.median([t.overhead_s for t in timings]),
        per_run_wall_s=observe.median([t.wall_s for t in timings]),
        per_run_steps_s=observe.median([t.steps_s for t in timings]),
        p50_drop_to_applied_s=observe.percentile(applied, 50),
        p95_drop_to_applied_s=observe.percentile(applied, 95),
        lost_runs=len(lost),
        duplicate_runs=len(duplicated),
        unexpected_runs=sorted("|".join(k) for k in set(by_key) - expected),
        lost=lost,
        duplicated=duplicated,
        **count_outcomes(plan, dates, set(by_key)),
    )


def _drop_to_applied(by_key, published: dict[str, dict[str, float]]) -> list[float]:
    """Seconds from a drop's publication to the end of the run that applied it (applied nights only)."""
    from etl_project.registry.nights import NightStates

    states, out = NightStates(), []
    for (district, date), runs in by_key.items():
        record = states.get(district, date)
        if record is None or str(record.state) != "applied":
            continue
        ends = [r.end_time for r in runs if r.dagster_run.run_id == record.run_id and r.end_time]
        if ends and district in published.get(date, {}):
            out.append(ends[0] - published[date][district])
    return out


def _cores(stack: Stack) -> int:
    """The workers' cores on a cluster (as cluster.json lists them), else this machine's."""
    listed = sum(int(w.get("cores") or 0) for w in stack.workers)
    return listed or cpu_count()


def _ui_figures(instance, plan, dates, opts, report, stack: Stack, started: float) -> None:
    from etl_project.soak.history import history_dates, seed_history
    from etl_project.soak.ui import page_latency, sensor_ticks

    ticks = sensor_ticks(stack.webserver_url, since=started - 1)
    report.update(sensor_ticks=len(ticks), max_sensor_tick_s=round(max(ticks), 3) if ticks else None,
                  p50_sensor_tick_s=observe.percentile(ticks, 50))  # fmt: skip
    nights = history_dates(dates[1], opts.history_nights)
    ids = [d.id for d in plan] + [f"h{i:04d}" for i in range(max(0, opts.history_districts - len(plan)))]
    opts.progress(
        f"seeding {len(nights)} nights of history for {len(ids)} districts (materialization events) ..."
    )
    report.update(history_districts=len(ids), **seed_history(instance, ids, nights))
    partitions = _partitions_per_asset(instance)
    opts.progress(f"timing the UI's GraphQL queries ({partitions:,} partitions with history per asset) ...")
    sample = next(d.id for d in plan if d.kind == HEALTHY)
    latency = page_latency(stack.webserver_url, f"{dates[2]}|{sample}", repeat=opts.ui_repeat)
    report.update(phase="UI measured; running the floor", partitions_per_asset=partitions,
                  partition_page_p95_s=latency["partition_page_p95_s"], ui=latency)  # fmt: skip


def _partitions_per_asset(instance: DagsterInstance) -> int:
    """Nights so far (the daily dimension) times districts (the dynamic one): the partitions of each asset."""
    from etl_project.partitions import DISTRICTS_PARTITION, nights_partitions

    nights = len(nights_partitions.get_partition_keys())
    return nights * len(instance.get_dynamic_partitions(DISTRICTS_PARTITION))


def _floor_and_compare(work: Path, plan, dates, opts, report: SoakReport, stack: Stack) -> None:
    """The floor on a home of its own (on ``opts.floor_sample`` of the districts, scaled up), then every
    floored district's LMS rows, and every district's night states, against it."""
    import shutil

    from etl_project.soak.floor import floor_env, plan_json, run_floor

    killed = report.data.get("worker_killed_run")
    victims = (
        {r["night"].split("|")[1]: r for r in killed["runs"].values()} if isinstance(killed, dict) else {}
    )
    sample = fleet_mod.floor_sample(plan, opts.floor_sample, set(victims), seed=opts.seed)
    opts.progress(f"floor: {len(sample)} districts' nights one after another in one process ...")
    shutil.rmtree(work / "floor", ignore_errors=True)  # a floor stopped before: start it over
    env = child_env(floor_env(stack, work / "floor", os.environ["ETL_PROJECT_SECRET_KEY"]))
    floor = run_floor(plan_json(work, dates, sample), work / "floor", env)
    effects, mismatched_states = _compare(plan, dates, floor, victims)
    floor_wall = fleet_mod.scale_floor(plan, floor["night_wall_s"])
    wall, cores = report.data.get("wall_s"), report.data.get("cores")
    report.update(
        floor_wall_s=round(floor_wall, 3),
        floor_runs=floor["runs"],
        floor_sample={
            "fraction": opts.floor_sample,
            "districts": len(sample),
            "of": sum(d.runs for d in plan),
            "measured_wall_s": floor["wall_s"],
        },
        overhead_ratio=round(wall * cores / floor_wall, 2) if wall and floor_wall else None,
        cross_district_effects=len(effects),
        cross_district_districts=effects,
        lms_compared_districts=len(floor["lms"]),
        state_mismatches=mismatched_states,
        worker_killed_run=killed,
    )


def _compare(plan, dates, floor: dict, victims: dict) -> tuple[list[str], list[str]]:
    """Healthy districts whose LMS rows differ from the floor's (of those it ran; a victim's sameness goes
    on its kill record instead), and nights whose state differs from the floor's, else from the plan's."""
    from etl_project.lms.connect import open_backend
    from etl_project.registry.nights import NightStates
    from etl_project.settings import Settings
    from etl_project.soak.lms_rows import fingerprint

    backend, states = open_backend(Settings.from_env().lms_url()), NightStates()
    effects, mismatched_states = [], []
    for district in (d for d in plan if d.runs):
        if district.id in floor["lms"]:
            same = fingerprint(backend, district.id) == floor["lms"][district.id]
            if district.id in victims:  # the kill's own effect, not another district's
                victims[district.id]["lms_same_as_floor"] = same
            elif district.kind == HEALTHY and not same:
                effects.append(district.id)
        for night, date in dates.items():
            record = states.get(district.id, date)
            want = floor["states"].get(district.id, {}).get(str(night), district.expected(night))
            if (str(record.state) if record else None) != want:
                mismatched_states.append(f"{date}|{district.id}")
    return effects, mismatched_states
