"""The nightly schedule: each district starts once its local time passes its hour, and only if unsynced."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import DagsterRunStatus, SkipReason, build_schedule_context

from etl_project.automation.schedules import nightly_sync_schedule
from etl_project.automation.sync_status import TRIGGER_TAG
from etl_project.districts import District, UnconnectedSource
from etl_project.partitions import DISTRICTS_PARTITION
from etl_project_tests.automation import (
    local_district,
    make_defs,
    record_run,
    write_districts,
    write_oneroster_drop,
)

UTC = dt.UTC


@pytest.fixture
def setup(tmp_path, instance):
    districts = [
        local_district("chicago", tmp_path / "chicago", timezone="America/Chicago", expected_by_hour=6),
        local_district("berlin", tmp_path / "berlin", timezone="Europe/Berlin", expected_by_hour=5),
        local_district("sydney", tmp_path / "sydney", timezone="Australia/Sydney", expected_by_hour=7),
        local_district("kolkata", tmp_path / "kolkata", timezone="Asia/Kolkata", expected_by_hour=6),
        local_district("paused", tmp_path / "paused", timezone="UTC", expected_by_hour=1, enabled=False),
        local_district("newcomer", tmp_path / "newcomer", timezone="UTC", expected_by_hour=1),
    ]
    resource = write_districts(tmp_path, districts)
    registered = ["chicago", "berlin", "sydney", "kolkata", "paused"]  # newcomer: the sensor adds it later
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, registered)
    return resource


def evaluate(instance, districts, when: dt.datetime) -> dict[str, str]:
    resources = {"districts": districts}
    ctx = build_schedule_context(instance=instance, scheduled_execution_time=when, resources=resources)
    result = nightly_sync_schedule(ctx)
    if isinstance(result, SkipReason):
        return {}
    out = {}
    for request in result:
        assert request.tags[TRIGGER_TAG] == "schedule"
        night, district = str(request.partition_key).split("|")
        out[district] = night
    return out


def test_each_district_starts_after_its_own_local_hour(tmp_path, instance, setup):
    # 2026-11-28 04:30 UTC: Berlin 05:30 (due), Sydney 15:30 (due), Kolkata 10:00 (due), Chicago 22:30 on
    # Nov 27 (its latest due night is Nov 26, due Nov 27 06:00 local).
    assert evaluate(instance, setup, dt.datetime(2026, 11, 28, 4, 30, tzinfo=UTC)) == {
        "berlin": "2026-11-27",
        "sydney": "2026-11-27",
        "kolkata": "2026-11-27",
        "chicago": "2026-11-26",
    }
    # 2026-11-28 00:00 UTC: Kolkata is 05:30 (not yet 06:00), Berlin 01:00, Sydney 11:00 on Nov 28.
    assert evaluate(instance, setup, dt.datetime(2026, 11, 28, 0, 0, tzinfo=UTC)) == {
        "berlin": "2026-11-26",
        "sydney": "2026-11-27",
        "kolkata": "2026-11-26",
        "chicago": "2026-11-26",
    }
    # Half-hour time zone: Kolkata's 06:00 is 00:30 UTC, which the 30-minute cron hits.
    assert evaluate(instance, setup, dt.datetime(2026, 11, 28, 0, 30, tzinfo=UTC))["kolkata"] == "2026-11-27"
    # Chicago passes 06:00 local (CST, UTC-6) at 12:00 UTC.
    assert evaluate(instance, setup, dt.datetime(2026, 11, 28, 11, 30, tzinfo=UTC))["chicago"] == "2026-11-26"
    assert evaluate(instance, setup, dt.datetime(2026, 11, 28, 12, 0, tzinfo=UTC))["chicago"] == "2026-11-27"


def test_already_synced_or_requested_nights_and_disabled_or_unregistered_districts_are_skipped(
    tmp_path, instance, setup
):
    when = dt.datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    assert set(evaluate(instance, setup, when)) == {"chicago", "berlin", "sydney", "kolkata"}

    # berlin: synced for real (its snapshot is materialized); sydney: the sensor already requested a run.
    write_oneroster_drop(tmp_path / "berlin" / "2026-11-27")
    result = (
        make_defs(tmp_path)
        .resolve_job_def("nightly_sync")
        .execute_in_process(
            partition_key="2026-11-27|berlin",
            run_config={"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}},
            instance=instance,
        )
    )
    assert result.success
    record_run(
        instance,
        "nightly_sync",
        DagsterRunStatus.STARTED,
        tags={"dagster/partition": "2026-11-27|sydney", TRIGGER_TAG: "new_drop"},
    )
    assert evaluate(instance, setup, when) == {"chicago": "2026-11-27", "kolkata": "2026-11-27"}


def test_the_schedule_requests_resolve_against_the_definitions(tmp_path, instance, setup):
    defs = make_defs(tmp_path)
    schedule = defs.resolve_schedule_def("nightly_sync_schedule")
    assert schedule.cron_schedule == "*/30 * * * *" and schedule.execution_timezone == "UTC"
    ctx = build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime(2026, 11, 28, 13, 0, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
        resources={"districts": setup},
    )
    data = schedule.evaluate_tick(ctx)
    tags = [dict(r.tags) for r in data.run_requests]
    assert sorted(t["dagster/partition"] for t in tags) == [
        "2026-11-27|berlin",
        "2026-11-27|chicago",
        "2026-11-27|kolkata",
        "2026-11-27|sydney",
    ]


def test_a_district_without_a_source_is_never_started(tmp_path, instance):
    """Created in the portal, its partition registered by a first Sync now, still no source: not due."""
    birch = District("birch", "Birch", UnconnectedSource(), timezone="UTC", expected_by_hour=1)
    opened = local_district("open", tmp_path / "open", expected_by_hour=1)
    districts = write_districts(tmp_path, [opened, birch])
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["open", "birch"])
    when = dt.datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    assert evaluate(instance, districts, when) == {"open": "2026-11-27"}
