"""One truth per night and source health, in the registry database (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import pytest

from etl_project.registry.nights import NightState, NightStates


@pytest.fixture(params=["sqlite", "postgresql"])
def states(request, tmp_path):
    if request.param == "sqlite":
        return NightStates(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    return NightStates(request.getfixturevalue("pg_url"))


def test_a_night_has_exactly_one_current_state(states):
    states.record("lincoln", "2026-11-27", NightState.RUNNING, run_id="r1")
    states.record(
        "lincoln",
        "2026-11-27",
        NightState.BLOCKED,
        reason="users.csv is not UTF-8",
        step="oneroster_tables",
        run_id="r1",
        detail={"check": "files_readable", "file": "users.csv"},
    )
    states.record("lincoln", "2026-11-28", NightState.APPLIED, run_id="r2")
    states.record("adams", "2026-11-26", NightState.FAILED, reason="cannot connect")

    night = states.get("lincoln", "2026-11-27")
    assert night.state is NightState.BLOCKED and not night.state.lms_changed
    assert night.reason == "users.csv is not UTF-8" and night.step == "oneroster_tables"
    assert night.detail == {"check": "files_readable", "file": "users.csv"}
    assert [n.night for n in states.for_district("lincoln")] == ["2026-11-28", "2026-11-27"]
    assert states.latest("lincoln").state is NightState.APPLIED
    assert {d: n.night for d, n in states.latest_by_district().items()} == {
        "lincoln": "2026-11-28",
        "adams": "2026-11-26",
    }
    assert states.get("lincoln", "2026-11-29") is None


def test_source_polls_keep_the_last_success_beside_the_newest_error(states):
    ok = states.record_poll("lincoln", newest_drop="2026-11-28")
    assert ok.reachable and ok.last_success_at == ok.last_poll_at
    failed = states.record_poll("lincoln", error="cannot connect to sftp.example:22: connection refused")
    assert not failed.reachable
    assert failed.last_success_at == ok.last_success_at and failed.newest_drop == "2026-11-28"
    assert states.polls()["lincoln"].last_error.startswith("cannot connect")
    again = states.record_poll("lincoln")
    assert again.reachable and again.newest_drop == "2026-11-28"

    states.forget_district("lincoln")
    assert states.poll("lincoln") is None
