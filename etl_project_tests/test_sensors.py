"""The new-drop sensor against real local folders and real (unreachable, hung) SFTP endpoints."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import asyncssh
import pytest
from dagster import AssetKey, DagsterInstance, SensorResult, build_sensor_context

from etl_project.automation.sensors import build_new_drop_sensor, load_cursor
from etl_project.automation.sync_status import TRIGGER_TAG
from etl_project.districts import District, SftpSource, UnconnectedSource
from etl_project.districts.resource import DistrictsResource
from etl_project.drop_settle import FINGERPRINT_TAG, STABLE_SINCE_TAG, remaining_settle_seconds
from etl_project.partitions import DISTRICTS_PARTITION
from etl_project.registry import Registry, registry_url
from etl_project.registry.nights import NightState, NightStates
from etl_project_tests.automation import (
    TickLog,
    local_district,
    make_defs,
    night,
    registry_home,
    write_districts,
    write_oneroster_drop,
)
from etl_project_tests.drops import write_folder_drop

__all__ = ["registry_home"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("registry_home")
SNAPSHOT = AssetKey(["archive", "oneroster_snapshot"])
PW_ENV = "AUTOMATION_TEST_SFTP_PASSWORD"


@pytest.fixture
def tick_log():
    return TickLog()


def tick(sensor_def, instance, districts, cursor=None, log: TickLog | None = None) -> SensorResult:
    ctx = build_sensor_context(instance=instance, cursor=cursor, resources={"districts": districts})
    if log is not None:
        ctx.log.addHandler(log)
    result = sensor_def(ctx)
    assert isinstance(result, SensorResult)
    for request in result.dynamic_partitions_requests or []:  # what the daemon does with them
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def keys(result: SensorResult) -> list[str]:
    return [str(r.partition_key) for r in result.run_requests]


def test_partial_uploads_are_not_taken_a_complete_drop_is_taken_once_and_a_changed_one_again(
    tmp_path, instance, tick_log
):
    folder = tmp_path / "dropbox"
    districts = write_districts(tmp_path, [local_district("lincoln", folder)])
    sensor = build_new_drop_sensor(budget_seconds=20)
    r = tick(sensor, instance, districts, log=tick_log)  # registration + first sync: nothing there yet
    assert [list(q.partition_keys) for q in r.dynamic_partitions_requests] == [["lincoln"]]
    assert r.run_requests == []

    drop = folder / night(1)
    write_folder_drop(drop)
    (drop / "manifest.csv").unlink()
    r = tick(sensor, instance, districts, r.cursor, log=tick_log)
    assert r.run_requests == [], "no manifest yet"

    write_folder_drop(drop)
    (drop / "users.csv.filepart").write_text("u9,,,")
    r = tick(sensor, instance, districts, r.cursor, log=tick_log)
    assert r.run_requests == [], "an upload is still in progress"

    (drop / "users.csv.filepart").unlink()
    r = tick(sensor, instance, districts, r.cursor, log=tick_log)
    assert r.run_requests == [], "complete, but seen for the first time"
    assert "waiting for" in tick_log.text and "new since the last poll" in tick_log.text

    with open(drop / "users.csv", "a") as f:
        f.write("u7,,,true,org1,student,s7,,S,7\n")  # still growing between two polls
    r = tick(sensor, instance, districts, r.cursor, log=tick_log)
    assert r.run_requests == [], "sizes changed since the previous poll"

    r = tick(sensor, instance, districts, r.cursor, log=tick_log)
    assert keys(r) == [f"{night(1)}|lincoln"]
    (first,) = r.run_requests
    assert first.tags[TRIGGER_TAG] == "new_drop"
    assert first.run_key.startswith("lincoln:")
    # the run carries when the sensor saw this drop (the previous poll): its fetch step waits no window again
    assert first.run_config == {}
    seen = float(first.tags[STABLE_SINCE_TAG])
    assert first.tags[FINGERPRINT_TAG] in first.run_key and seen <= time.time()
    assert remaining_settle_seconds(first.tags, first.run_key.split(":", 1)[1], 10, seen + 10) == 0

    for _ in range(2):
        r = tick(sensor, instance, districts, r.cursor, log=tick_log)
        assert r.run_requests == [], "the same drop is taken once"

    with open(drop / "users.csv", "a") as f:  # re-uploaded with a change
        f.write("u8,,,true,org1,student,s8,,S,8\n")
    r = tick(sensor, instance, districts, r.cursor, log=tick_log)
    assert r.run_requests == []
    r = tick(sensor, instance, districts, r.cursor, log=tick_log)
    assert keys(r) == [f"{night(1)}|lincoln"]
    assert r.run_requests[0].run_key != first.run_key


def test_cursor_is_per_district_and_survives_a_new_sensor_process(tmp_path, instance):
    a, b = local_district("adams", tmp_path / "a"), local_district("baker", tmp_path / "b")
    districts = write_districts(tmp_path, [a, b])
    r = tick(build_new_drop_sensor(), instance, districts)
    write_folder_drop(tmp_path / "a" / night(1))
    r = tick(build_new_drop_sensor(), instance, districts, r.cursor)
    state = load_cursor(r.cursor)
    assert set(state) == {"adams", "baker"}
    assert list(state["adams"].seen) == [str(tmp_path / "a" / night(1))]
    assert state["baker"].seen == {}
    json.loads(r.cursor)  # plain JSON, readable with `dagster sensor cursor`

    # A fresh sensor definition (a restarted code server) continues from the stored cursor.
    r2 = tick(build_new_drop_sensor(), instance, districts, r.cursor)
    assert keys(r2) == [f"{night(1)}|adams"]
    # A foreign or corrupt cursor starts afresh instead of crashing the tick.
    assert load_cursor("not json") == {} and load_cursor('{"v": 99}') == {}


def test_first_sync_registers_the_district_and_its_run_materializes_the_snapshot(tmp_path, instance):
    folder = tmp_path / "dropbox"
    write_oneroster_drop(folder / night(3))  # an older drop: not backfilled
    write_oneroster_drop(folder / night(1))
    districts = write_districts(tmp_path, [local_district("lincoln", folder, timezone="America/Chicago")])
    defs = make_defs(tmp_path)
    assert not instance.has_dynamic_partition(DISTRICTS_PARTITION, "lincoln")

    r = tick(build_new_drop_sensor(), instance, districts)
    assert [(q.partitions_def_name, list(q.partition_keys)) for q in r.dynamic_partitions_requests] == [
        (DISTRICTS_PARTITION, ["lincoln"])
    ]
    assert keys(r) == [f"{night(1)}|lincoln"]
    (request,) = r.run_requests
    assert request.tags[TRIGGER_TAG] == "first_sync"
    assert instance.has_dynamic_partition(DISTRICTS_PARTITION, "lincoln")

    result = defs.resolve_job_def("nightly_sync").execute_in_process(
        partition_key=request.partition_key,
        run_config={"ops": {"fetch_and_archive_drop": {"config": {"settle_seconds": 0}}}},
        tags=request.tags,
        instance=instance,
    )
    assert result.success
    mats = [e.materialization for e in result.get_asset_materialization_events()]
    assert any(m.asset_key == SNAPSHOT and m.partition == f"{night(1)}|lincoln" for m in mats)
    assert instance.get_latest_materialization_event(SNAPSHOT) is not None

    r = tick(build_new_drop_sensor(), instance, districts, r.cursor)
    r = tick(build_new_drop_sensor(), instance, districts, r.cursor)
    assert r.run_requests == [] and not r.dynamic_partitions_requests, "older drops are not backfilled"


def test_disabled_districts_are_not_registered_polled_or_run(tmp_path, instance):
    on, off = tmp_path / "on", tmp_path / "off"
    write_folder_drop(on / night(1))
    write_folder_drop(off / night(1))
    districts = write_districts(
        tmp_path, [local_district("open", on), local_district("closed", off, enabled=False)]
    )
    sensor = build_new_drop_sensor()
    r = tick(sensor, instance, districts)
    assert keys(r) == [f"{night(1)}|open"]
    assert [list(q.partition_keys) for q in r.dynamic_partitions_requests] == [["open"]]
    assert "closed" not in load_cursor(r.cursor)

    # Disabling a district that was syncing stops its runs, even for a brand-new drop.
    districts = write_districts(
        tmp_path, [local_district("open", on, enabled=False), local_district("closed", off, enabled=False)]
    )
    write_folder_drop(on / night(0))
    for _ in range(3):
        r = tick(sensor, instance, districts, r.cursor)
        assert r.run_requests == []
    assert load_cursor(r.cursor) == {}


# ------------------------------------------------------------------------------ many districts, bad servers


@pytest.fixture
def hung_port():
    """A port that accepts connections (kernel backlog) but never says a word: a hung SSH server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # bound, never listening, then closed: connections are refused


def sftp_district(did: str, port: int, host_key: str) -> District:
    source = SftpSource(
        host="127.0.0.1", port=port, username="alice", remote_dir="/", host_key=host_key, password_env=PW_ENV
    )
    return District(id=did, name=did, source=source)


def test_200_districts_within_the_budget_with_unreachable_and_hung_ones(
    tmp_path, instance, tick_log, monkeypatch, hung_port, closed_port
):
    monkeypatch.setenv(PW_ENV, "not-used-for-a-refused-port")
    host_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    local = [local_district(f"d{i:03d}", tmp_path / "drops" / f"d{i:03d}") for i in range(190)]
    for d in local:
        write_folder_drop(tmp_path / "drops" / d.id / night(1))
    refused = [sftp_district(f"refused{i}", closed_port, host_key) for i in range(5)]
    hung = [sftp_district(f"hung{i}", hung_port, host_key) for i in range(5)]
    districts = write_districts(tmp_path, [*hung, *local, *refused])
    budget = 4.0
    sensor = build_new_drop_sensor(budget_seconds=budget, connect_timeout=60, max_workers=16)

    r = tick(sensor, instance, districts, log=tick_log)
    (add,) = r.dynamic_partitions_requests
    assert sorted(add.partition_keys) == sorted({d.id for d in [*local, *refused, *hung]})
    assert len(add.partition_keys) == 200
    for d in refused:
        assert (
            f"District {d.id} unreachable: cannot open an SSH session to 127.0.0.1:{closed_port}"
            in tick_log.text
        )
    for d in hung:  # the tick did not wait for their 60 s connect timeout
        assert f"District {d.id}: still polling when the {budget:g} s budget ran out" in tick_log.text
    assert "refused0" in load_cursor(r.cursor) and "hung0" in load_cursor(r.cursor)

    taken = set(keys(r))
    for _ in range(3):  # districts not reached in one tick are polled first in the next one
        if len(taken) == 190:
            break
        tick_log.clear()
        r = tick(sensor, instance, districts, r.cursor, log=tick_log)
        taken |= set(keys(r))
    assert taken == {f"{night(1)}|{d.id}" for d in local}
    assert not (set(keys(r)) & {f"{night(1)}|{d.id}" for d in [*refused, *hung]})


def test_districts_not_reached_within_the_budget_are_polled_first_next_tick(
    tmp_path, instance, tick_log, monkeypatch, hung_port
):
    monkeypatch.setenv(PW_ENV, "unused")
    host_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    locals_ = [local_district(f"b{i}", tmp_path / f"b{i}") for i in range(4)]
    for d in locals_:
        write_folder_drop(tmp_path / d.id / night(1))
    districts = write_districts(tmp_path, [sftp_district("a-hung", hung_port, host_key), *locals_])
    sensor = build_new_drop_sensor(budget_seconds=2, connect_timeout=60, max_workers=1)

    r = tick(sensor, instance, districts, log=tick_log)  # the hung server holds the only worker
    assert r.run_requests == []
    assert "Not reached within the budget, polled first next tick: b0, b1, b2, b3" in tick_log.text
    r = tick(sensor, instance, districts, r.cursor, log=tick_log)
    assert sorted(keys(r)) == sorted(f"{night(1)}|{d.id}" for d in locals_)


def test_the_code_location_loads_with_its_automation():
    from dagster import DefaultScheduleStatus, DefaultSensorStatus, Definitions

    from etl_project.definitions import defs

    Definitions.validate_loadable(defs)
    sensors = {s.name: s for s in defs.sensors}
    assert {"new_drop_sensor", "missing_drop_sensor"} <= set(sensors)
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors.values())
    assert sensors["new_drop_sensor"].minimum_interval_seconds == 120
    (schedule,) = defs.schedules
    assert schedule.name == "nightly_sync_schedule"
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    steps = set(defs.resolve_job_def("nightly_sync").graph.node_dict)
    assert "archive__oneroster_snapshot_drop_arrived_on_time" in steps  # the check runs in every sync
    # source_reachable is declared (it shows in the UI) but reported by the sensor, not run per night
    checks = {key.name: key for c in defs.asset_checks for key in c.check_keys}
    assert checks["source_reachable"].asset_key == AssetKey(["raw", "oneroster_drop"])
    assert "raw__oneroster_drop_source_reachable" not in steps


# ------------------------------------------------------------------------------ nights synced by another path


CONSOLE = shutil.which("etl-project", path=os.path.dirname(sys.executable))


def test_a_night_synced_by_the_cli_is_not_synced_again_but_a_changed_drop_is(
    tmp_path, registry_home, tick_log
):
    folder = tmp_path / "dropbox"
    write_oneroster_drop(folder / night(1))
    Registry().add(local_district("lincoln", folder))
    env = {**os.environ, "DAGSTER_HOME": str(registry_home / "dagster")}
    env.pop("ETL_PROJECT_DISTRICTS", None)
    done = subprocess.run(
        [CONSOLE, "sync", "--district", "lincoln", "--date", night(1), "--settle-seconds", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        districts = DistrictsResource(url=registry_url())
        sensor = build_new_drop_sensor()
        r = tick(sensor, instance, districts, log=tick_log)  # the sensor's first look at lincoln
        assert r.run_requests == []
        assert f"District lincoln: not run again, night {night(1)} already synced by run" in tick_log.text
        for _ in range(2):
            r = tick(sensor, instance, districts, r.cursor)
            assert r.run_requests == []

        with open(folder / night(1) / "users.csv", "a") as f:  # re-uploaded with a change
            f.write("u9,,,true,org1,student,s9,,S,9\n")
        r = tick(sensor, instance, districts, r.cursor)
        r = tick(sensor, instance, districts, r.cursor)
        assert keys(r) == [f"{night(1)}|lincoln"]


def test_a_night_with_a_state_is_not_requested_unless_it_failed(tmp_path, instance, tick_log):
    for did in ("done", "retry"):
        write_folder_drop(tmp_path / did / night(1))
    districts = write_districts(
        tmp_path, [local_district("done", tmp_path / "done"), local_district("retry", tmp_path / "retry")]
    )
    states = NightStates()
    states.record("done", night(1), NightState.APPLIED, run_id="on-another-worker")
    states.record(
        "retry", night(1), NightState.FAILED, reason="cannot connect", step="fetch_and_archive_drop"
    )

    r = tick(build_new_drop_sensor(), instance, districts, log=tick_log)
    assert keys(r) == [f"{night(1)}|retry"]
    assert f"District done: not run again, night {night(1)} already applied" in tick_log.text


def test_a_district_without_a_source_is_not_registered_polled_or_reported(tmp_path, instance, tick_log):
    """A district an operator created in the portal has no source until its admin connects one."""
    folder = tmp_path / "open"
    write_folder_drop(folder / night(1))
    birch = District("birch", "Birch", UnconnectedSource(), timezone="America/Denver")
    districts = write_districts(tmp_path, [local_district("open", folder), birch])
    r = tick(build_new_drop_sensor(), instance, districts, log=tick_log)
    assert keys(r) == [f"{night(1)}|open"]
    assert [list(q.partition_keys) for q in r.dynamic_partitions_requests] == [["open"]]
    assert set(load_cursor(r.cursor)) == {"open"}
    descriptions = [e.description for e in r.asset_events]  # source health: the polled district only
    assert descriptions == ["District open: source reachable (0 of 1 enabled district(s) unreachable)"]
    assert "birch" not in tick_log.text
    assert "birch" not in NightStates(registry_url()).polls()


def test_a_drop_waits_while_another_trigger_s_run_of_its_night_is_running(tmp_path, instance, tick_log):
    """The nightly schedule started a run of the night between two polls: the sensor does not request a
    second run of it, and takes the drop once that run has ended without syncing it."""
    from dagster import DagsterRunStatus

    from etl_project.jobs import nightly_sync

    folder = tmp_path / "dropbox"
    districts = write_districts(tmp_path, [local_district("lincoln", folder)])
    sensor = build_new_drop_sensor()
    r = tick(sensor, instance, districts)  # first look: nothing there yet
    write_folder_drop(folder / night(1))
    r = tick(sensor, instance, districts, r.cursor)  # seen for the first time: waits a poll
    job = make_defs(tmp_path).resolve_job_def(nightly_sync.name)
    running = instance.create_run_for_job(
        job,
        status=DagsterRunStatus.STARTED,
        tags={"dagster/partition": f"{night(1)}|lincoln", TRIGGER_TAG: "schedule"},
    )
    r = tick(sensor, instance, districts, r.cursor, log=tick_log)
    assert r.run_requests == []
    assert f"run {running.run_id} of this night is queued or running" in tick_log.text
    instance.report_run_failed(running, "ended by the test")  # ended without syncing the drop
    r = tick(sensor, instance, districts, r.cursor)
    assert keys(r) == [f"{night(1)}|lincoln"]
