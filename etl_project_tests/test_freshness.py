"""Missing-drop alert: fails with the district and its lateness after the expected hour, passes on arrival."""

from __future__ import annotations

import datetime as dt

import pytest
from dagster import (
    AssetCheckSeverity,
    DagsterRunStatus,
    SensorResult,
    build_sensor_context,
)

from etl_project.assets.keys import SNAPSHOT
from etl_project.automation.freshness import CHECK_KEY, CHECK_NAME, build_missing_drop_sensor
from etl_project.automation.sync_status import TRIGGER_TAG
from etl_project.districts import District, UnconnectedSource
from etl_project.partitions import DISTRICTS_PARTITION
from etl_project.registry.nights import NightState, NightStates
from etl_project_tests.automation import (
    TickLog,
    local_district,
    make_defs,
    record_run,
    registry_home,
    write_districts,
    write_oneroster_drop,
)

__all__ = ["registry_home"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("registry_home")
UTC = dt.UTC
# Chicago is UTC-6 in November: lincoln's drop for night Nov 27 is due Nov 28 06:00 local = 12:00 UTC.
DUE = dt.datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def evaluate(sensor, instance, districts, log: TickLog | None = None) -> SensorResult:
    ctx = build_sensor_context(instance=instance, resources={"districts": districts})
    if log is not None:
        ctx.log.addHandler(log)
    result = sensor(ctx)
    assert isinstance(result, SensorResult)
    for event in result.asset_events:  # what the daemon does with them: record them on the instance
        instance.report_runless_asset_event(event)
    return result


def test_missing_drop_fails_with_lateness_then_passes_once_the_drop_arrives(tmp_path, instance):
    folder = tmp_path / "lincoln"
    lincoln = local_district("lincoln", folder, timezone="America/Chicago", expected_by_hour=6)
    paused = local_district("paused", tmp_path / "paused", enabled=False)
    districts = write_districts(tmp_path, [lincoln, paused])
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["lincoln", "paused"])
    clock = Clock(DUE + dt.timedelta(hours=2, minutes=15))
    sensor = build_missing_drop_sensor(clock=clock)

    r = evaluate(sensor, instance, districts)
    (failed,) = r.asset_events  # the disabled district is not checked
    assert failed.check_name == CHECK_NAME and failed.asset_key == SNAPSHOT
    assert failed.partition == "2026-11-27|lincoln"
    assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
    assert failed.description.startswith("District lincoln (Lincoln): no drop for night 2026-11-27")
    assert "expected by 2026-11-28 06:00 America/Chicago; 2 h 15 min late" in failed.description
    assert failed.metadata["late_minutes"].value == 135

    # Still missing an hour later: the tick log says how late it is now; the failure is recorded once.
    clock.now += dt.timedelta(hours=1, minutes=5)
    log = TickLog()
    r = evaluate(sensor, instance, districts, log=log)
    assert r.asset_events == []
    assert (
        "no drop for night 2026-11-27, expected by 2026-11-28 06:00 America/Chicago; 3 h 20 min late"
        in log.text
    )
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([CHECK_KEY])[CHECK_KEY]
    assert latest.status.value == "FAILED" and latest.partition == "2026-11-27|lincoln"

    # The drop lands and is synced for real: the check passes and says how late it was.
    write_oneroster_drop(folder / "2026-11-27")
    result = (
        make_defs(tmp_path)
        .resolve_job_def("nightly_sync")
        .execute_in_process(
            partition_key="2026-11-27|lincoln",
            run_config={"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}},
            instance=instance,
        )
    )
    assert result.success
    # the check also runs inside every nightly_sync run
    in_run = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_NAME]
    assert [e.passed for e in in_run] == [True]

    in_run_description = in_run[0].description
    assert "the drop for night 2026-11-27 arrived" in in_run_description
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([CHECK_KEY])[CHECK_KEY]
    assert latest.status.value == "SUCCEEDED" and latest.partition == "2026-11-27|lincoln"

    clock.now += dt.timedelta(minutes=5)
    assert evaluate(sensor, instance, districts).asset_events == []  # arrived: nothing more to alert


def test_a_drop_the_sensor_has_seen_counts_as_arrived_and_each_district_has_its_own_deadline(
    tmp_path, instance
):
    berlin = local_district("berlin", tmp_path / "berlin", timezone="Europe/Berlin", expected_by_hour=5)
    sydney = local_district("sydney", tmp_path / "sydney", timezone="Australia/Sydney", expected_by_hour=7)
    kolkata = local_district("kolkata", tmp_path / "kolkata", timezone="Asia/Kolkata", expected_by_hour=11)
    districts = write_districts(tmp_path, [berlin, sydney, kolkata])
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["berlin", "sydney", "kolkata"])
    record_run(
        instance,
        "nightly_sync",
        DagsterRunStatus.STARTED,
        tags={"dagster/partition": "2026-11-27|berlin", TRIGGER_TAG: "new_drop"},
    )
    # 2026-11-28 04:30 UTC: Berlin 05:30 (drop seen by the sensor, its run still going), Sydney 15:30 (missing
    # since 07:00 local), Kolkata 10:00 (night Nov 27 not due until 11:00; Nov 26 is due and missing).
    sensor = build_missing_drop_sensor(clock=Clock(dt.datetime(2026, 11, 28, 4, 30, tzinfo=UTC)))
    r = evaluate(sensor, instance, districts)
    verdicts = {e.partition: e.description for e in r.asset_events}
    assert set(verdicts) == {"2026-11-27|sydney", "2026-11-26|kolkata"}
    assert verdicts["2026-11-27|sydney"] == (
        "District sydney (Sydney): no drop for night 2026-11-27, expected by 2026-11-28 07:00 "
        "Australia/Sydney; 8 h 30 min late"
    )
    assert "expected by 2026-11-27 11:00 Asia/Kolkata; 23 h 0 min late" in verdicts["2026-11-26|kolkata"]


def test_a_missing_night_is_recorded_once_and_a_night_with_a_state_keeps_it(tmp_path, instance):
    lincoln = local_district("lincoln", tmp_path / "lincoln", timezone="America/Chicago", expected_by_hour=6)
    adams = local_district("adams", tmp_path / "adams", timezone="America/Chicago", expected_by_hour=6)
    districts = write_districts(tmp_path, [lincoln, adams])
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["lincoln", "adams"])
    states = NightStates()
    states.record("adams", "2026-11-27", NightState.FAILED, reason="cannot connect", step="fetch")
    clock = Clock(DUE + dt.timedelta(minutes=30))
    sensor = build_missing_drop_sensor(clock=clock)

    r = evaluate(sensor, instance, districts)
    assert [e.partition for e in r.asset_events] == ["2026-11-27|lincoln"]
    missing = states.get("lincoln", "2026-11-27")
    assert missing.state is NightState.MISSING
    assert missing.reason == "no complete drop for 2026-11-27 by 2026-11-28 06:00 America/Chicago"
    assert states.get("adams", "2026-11-27").state is NightState.FAILED  # its own story, kept

    clock.now += dt.timedelta(hours=1)
    assert evaluate(sensor, instance, districts).asset_events == []
    assert states.get("lincoln", "2026-11-27").updated_at == missing.updated_at


def test_a_district_without_a_source_has_no_missing_nights(tmp_path, instance):
    """Created in the portal and not connected yet: no drop is expected, nothing is recorded missing."""
    lincoln = local_district("lincoln", tmp_path / "lincoln", timezone="America/Chicago", expected_by_hour=6)
    birch = District("birch", "Birch", UnconnectedSource(), timezone="America/Chicago", expected_by_hour=6)
    districts = write_districts(tmp_path, [lincoln, birch])
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["lincoln", "birch"])
    log = TickLog()
    r = evaluate(build_missing_drop_sensor(clock=Clock(DUE + dt.timedelta(days=3))), instance, districts, log)
    assert [e.partition for e in r.asset_events] == ["2026-11-30|lincoln"]
    assert "birch" not in log.text
    assert NightStates().latest_by_district().keys() == {"lincoln"}
