"""What the soak reads back from the Dagster instance: the runs, and the figures taken from them.

A run is one district-night (``dagster/partition/district`` + ``dagster/partition/date`` tags). Every figure
comes from the instance's run records and step stats, the same storage the UI reads.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dagster import DagsterInstance, DagsterRunStatus, RunRecord, RunsFilter

JOB = "nightly_sync"
DISTRICT_TAG = "dagster/partition/district"
DATE_TAG = "dagster/partition/date"
TERMINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
Key = tuple[str, str]  # (district, night)


def runs_by_night(instance: DagsterInstance, districts: set[str]) -> dict[Key, list[RunRecord]]:
    """The soak districts' nightly_sync runs, by (district, night), oldest first."""
    by_key: dict[Key, list[RunRecord]] = defaultdict(list)
    for record in instance.get_run_records(RunsFilter(job_name=JOB), ascending=True):
        tags = record.dagster_run.tags
        if tags.get(DISTRICT_TAG) in districts and DATE_TAG in tags:
            by_key[(tags[DISTRICT_TAG], tags[DATE_TAG])].append(record)
    return dict(by_key)


def settled(by_key: dict[Key, list[RunRecord]], expected: Iterable[Key]) -> bool:
    """Every expected night has a run and no run is still queued or going."""
    done = all(r.dagster_run.status in TERMINAL for runs in by_key.values() for r in runs)
    return done and all(key in by_key for key in expected)


def wait_for(
    instance: DagsterInstance,
    districts: set[str],
    done: Callable[[dict[Key, list[RunRecord]]], bool],
    timeout_s: float,
    on_poll: Callable[[dict[Key, list[RunRecord]]], None] = lambda _: None,
    poll_s: float = 2.0,
) -> dict[Key, list[RunRecord]]:
    """Poll run storage until ``done`` says so or ``timeout_s`` has passed (bounded); the last runs seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        by_key = runs_by_night(instance, districts)
        on_poll(by_key)
        if done(by_key) or time.monotonic() > deadline:
            return by_key
        time.sleep(poll_s)


def lost_and_duplicated(
    by_key: dict[Key, list[RunRecord]], expected: set[Key]
) -> tuple[list[str], list[str]]:
    """Lost: an expected night with no finished run (none at all, or left queued/started). Duplicated: a
    night with more than one run that is not a retry of the one before (``dagster/parent_run_id``)."""
    lost, duplicated = [], []
    for key in sorted(expected):
        runs = by_key.get(key, [])
        if not any(r.dagster_run.status in TERMINAL for r in runs):
            lost.append("|".join(key))
    for key, runs in sorted(by_key.items()):
        originals = [r for r in runs if not r.dagster_run.tags.get("dagster/parent_run_id")]
        if len(originals) > 1:
            duplicated.append("|".join(key))
    return lost, duplicated


@dataclass
class RunTiming:
    key: Key
    wall_s: float
    steps_s: float  # the union of its steps' spans: the work, however the executor overlaps them
    end: float

    @property
    def overhead_s(self) -> float:
        return max(0.0, self.wall_s - self.steps_s)


def union_seconds(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def timings(instance: DagsterInstance, by_key: dict[Key, list[RunRecord]]) -> list[RunTiming]:
    out = []
    for key, runs in by_key.items():
        for record in runs:
            if record.start_time is None or record.end_time is None:
                continue
            stats = instance.get_run_step_stats(record.dagster_run.run_id)
            spans = [(s.start_time, s.end_time) for s in stats if s.start_time and s.end_time]
            wall = record.end_time - record.start_time
            out.append(RunTiming(key, wall, union_seconds(spans), record.end_time))
    return out


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank], 3)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None
