"""Source health: every poll is recorded in the registry, the UI's ``source_reachable`` check says which
district cannot be reached and why, and ``etl-project status`` shows the same facts.

Real SFTP server (asyncssh) stopped and started on its port, the real registry (SQLite), a real Dagster
instance; the sensor is evaluated without a daemon and its asset events are stored the way the daemon does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import asyncssh
import pytest
from dagster import AssetCheckSeverity, SensorResult, build_sensor_context

from etl_project.assets.keys import DROP
from etl_project.automation.district_status import next_night
from etl_project.automation.sensors import build_new_drop_sensor
from etl_project.automation.source_health import CHECK_KEY, CHECK_NAME, source_reachable
from etl_project.cli.main import main
from etl_project.districts.resource import DistrictsResource
from etl_project.registry import Registry, new_key, registry_url
from etl_project.registry.nights import NightRecord, NightState, NightStates
from etl_project_tests.automation import local_district, night
from etl_project_tests.drops import write_folder_drop
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD, SFTP_USER, SftpTestServer


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("ETL_PROJECT_HOME", str(home))
    monkeypatch.setenv("ETL_PROJECT_SECRET_KEY", new_key())
    for name in ("ETL_PROJECT_REGISTRY_URL", "ETL_PROJECT_SECRET_KEY_PREVIOUS", "ETL_PROJECT_DISTRICTS"):
        monkeypatch.delenv(name, raising=False)
    return home


def tick(sensor, instance, cursor=None) -> SensorResult:
    ctx = build_sensor_context(
        instance=instance, cursor=cursor, resources={"districts": DistrictsResource(url=registry_url())}
    )
    result = sensor(ctx)
    for request in result.dynamic_partitions_requests or []:  # what the daemon does with them
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def status(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()  # what the sensor logged before
    code = main(["status", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def latest_check(instance):
    return instance.event_log_storage.get_latest_asset_check_execution_by_key([CHECK_KEY])[CHECK_KEY]


def by_district(result: SensorResult) -> dict[str, object]:
    return {e.metadata["district"].value: e for e in result.asset_events}


def test_an_unreachable_source_fails_its_check_and_status_until_it_answers_again(
    home, tmp_path, instance, capsys
):
    root = tmp_path / "sftp-root"
    write_folder_drop(root / "outbox" / night(1))
    server = SftpTestServer(root, {SFTP_USER: SFTP_PASSWORD})
    sensor = build_new_drop_sensor(budget_seconds=30, connect_timeout=10)
    with server:
        Registry().add(server.district(did="lincoln"), {"password": SFTP_PASSWORD})
        Registry().add(local_district("adams", tmp_path / "adams"))
        r = tick(sensor, instance)
        assert [str(q.partition_key) for q in r.run_requests] == [f"{night(1)}|lincoln"]
        reported = by_district(r)
        assert sorted(reported) == ["adams", "lincoln"]
        assert all(e.passed and e.check_name == CHECK_NAME and e.asset_key == DROP for e in reported.values())
        assert NightStates().poll("lincoln").newest_drop == night(1)
        assert status(capsys)[0] == 0

    r = tick(sensor, instance, r.cursor)  # the server is down
    (failed,) = r.asset_events  # adams did not change: not reported again
    assert failed.metadata["district"].value == "lincoln"
    assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
    assert f"cannot open an SSH session to 127.0.0.1:{server.port}" in failed.description
    assert "(1 of 2 enabled district(s) unreachable)" in failed.description
    assert latest_check(instance).status.value == "FAILED"
    poll = NightStates().poll("lincoln")
    assert not poll.reachable and poll.last_success_at and poll.newest_drop == night(1)
    assert r.run_requests == [] and r.skip_reason.skip_message.endswith("; 1 unreachable")

    code, out = status(capsys)
    assert code == 1
    (line,) = [line for line in out.splitlines() if line.startswith("lincoln ")]
    assert "UNREACHABLE" in line and f"cannot open an SSH session to 127.0.0.1:{server.port}" in line
    code, out = status(capsys, "--json")
    rows = {row["district"]: row for row in json.loads(out)}
    assert code == 1 and rows["lincoln"]["health"] == "unreachable" and rows["adams"]["health"] == "ok"
    assert rows["lincoln"]["last_error"] == poll.last_error
    assert rows["lincoln"]["last_successful_poll_at"] == poll.last_success_at
    assert status(capsys, "--district", "adams")[0] == 0
    assert SFTP_PASSWORD not in out + failed.description

    # Run by hand in the UI, the check rolls up every district's newest poll.
    rolled_up = source_reachable(DistrictsResource(url=registry_url()))
    assert not rolled_up.passed and "1 of 2 enabled district(s) unreachable" in rolled_up.description

    assert tick(sensor, instance, r.cursor).asset_events == [], "unchanged health: reported once an hour"

    back = SftpTestServer(root, {SFTP_USER: SFTP_PASSWORD})
    back.port, back.host_key, back.host_key_openssh = server.port, server.host_key, server.host_key_openssh
    with back:
        r = tick(sensor, instance, r.cursor)
    (passed,) = r.asset_events
    assert passed.passed and passed.metadata["district"].value == "lincoln"
    assert "(0 of 2 enabled district(s) unreachable)" in passed.description
    assert latest_check(instance).status.value == "SUCCEEDED"
    assert NightStates().poll("lincoln").reachable and status(capsys)[0] == 0


def test_a_missing_secret_key_is_reported_as_the_reason(home, instance, capsys, monkeypatch, sftp_server):
    Registry().add(sftp_server.district(did="lincoln"), {"password": SFTP_PASSWORD})
    monkeypatch.delenv("ETL_PROJECT_SECRET_KEY")  # the daemon was started without it

    r = tick(build_new_drop_sensor(budget_seconds=30), instance)
    (failed,) = r.asset_events
    assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
    assert "ETL_PROJECT_SECRET_KEY is not set" in failed.description
    assert r.run_requests == []
    assert "ETL_PROJECT_SECRET_KEY is not set" in NightStates().poll("lincoln").last_error

    code, out = status(capsys, "--district", "lincoln")
    assert code == 1 and "UNREACHABLE" in out and "ETL_PROJECT_SECRET_KEY is not set" in out
    assert SFTP_PASSWORD not in out


def test_with_one_source_down_the_check_stays_red_when_another_one_recovers(
    home, tmp_path, instance, monkeypatch
):
    folders = {did: tmp_path / did for did in ("adams", "baker", "clark")}
    for did, folder in folders.items():
        Registry().add(local_district(did, folder))
    sensor = build_new_drop_sensor()
    r = tick(sensor, instance)
    assert all(e.passed for e in r.asset_events) and len(r.asset_events) == 3

    folders["adams"].rename(tmp_path / "adams-gone")
    folders["baker"].rename(tmp_path / "baker-gone")
    r = tick(sensor, instance, r.cursor)
    assert [(e.metadata["district"].value, e.passed) for e in r.asset_events] == [
        ("adams", False),
        ("baker", False),
    ]

    (tmp_path / "baker-gone").rename(folders["baker"])
    r = tick(sensor, instance, r.cursor)
    # baker's recovery is reported; adams, still down, is repeated last so the check's status stays failed
    assert [(e.metadata["district"].value, e.passed) for e in r.asset_events] == [
        ("baker", True),
        ("adams", False),
    ]
    assert latest_check(instance).status.value == "FAILED"


def test_the_next_night_is_the_due_one_until_its_drop_came_then_the_one_after(tmp_path):
    chicago = local_district("lincoln", tmp_path / "lincoln", timezone="America/Chicago", expected_by_hour=6)
    now = dt.datetime(2026, 11, 28, 13, 0, tzinfo=dt.UTC)  # 07:00 in Chicago: night Nov 27 was due at 06:00

    def record(state: NightState) -> NightRecord:
        return NightRecord("lincoln", "2026-11-27", state)

    night_, due = next_night(chicago, None, now)
    assert (night_, due.isoformat()) == ("2026-11-27", "2026-11-28T06:00:00-06:00")
    assert next_night(chicago, record(NightState.MISSING), now)[0] == "2026-11-27"
    night_, due = next_night(chicago, record(NightState.APPLIED), now)
    assert (night_, due.isoformat()) == ("2026-11-28", "2026-11-29T06:00:00-06:00")
    assert next_night(chicago, record(NightState.APPLIED), now - dt.timedelta(hours=2))[0] == "2026-11-27"
    # a complete drop for the due night already seen at the source: not owed any more
    assert next_night(chicago, None, now, newest_drop="2026-11-27")[0] == "2026-11-28"


@pytest.mark.parametrize("what", ["refused login", "changed host key"])
def test_a_refused_login_or_a_changed_host_key_fails_the_check_with_its_reason(
    home, instance, capsys, sftp_server, what
):
    district, password = sftp_server.district(did="lincoln"), SFTP_PASSWORD
    if what == "refused login":
        password, expected = "not-the-password-51c2", f"refused the password for {SFTP_USER}@127.0.0.1"
    else:
        other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
        district = dataclasses.replace(district, source=dataclasses.replace(district.source, host_key=other))
        expected = "HOST KEY CHANGED"
    Registry().add(district, {"password": password})

    (failed,) = tick(build_new_drop_sensor(budget_seconds=30), instance).asset_events
    assert not failed.passed and expected in failed.description
    assert "(permanent, fix the district's configuration)" in failed.description
    code, out = status(capsys, "--json")
    assert code == 1 and expected in json.loads(out)[0]["last_error"]
    assert password not in out + failed.description
