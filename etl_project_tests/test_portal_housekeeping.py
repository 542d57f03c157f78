"""Housekeeping and password-reset limits, on a real portal subprocess over its SQLite registry.

What the registry no longer needs (ended sessions, used or expired links, forgotten sign-in failures,
ended request windows) is purged when the portal starts; reset e-mails are limited per address and per
client address, and the page says the same whatever happened."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import create_engine, insert, text

from etl_project.portal import times
from etl_project.portal.accounts import Role
from etl_project.portal.housekeeping import Housekeeping
from etl_project.portal.links import Links, Purpose
from etl_project.portal.rate_limits import RESET_PER_ADDRESS, RESET_PER_EMAIL, RateLimits
from etl_project.portal.sessions import Sessions
from etl_project.portal.throttle import Throttle
from etl_project.registry.db import Database
from etl_project.registry.tables import request_counts, sessions, sign_in_attempts
from etl_project_tests.portal_server import run_portal, seed_registry
from etl_project_tests.test_portal_security import accept, csrf_of

ADMIN = "reset.me@maple.example.org"


def _ago(**delta: float) -> str:
    return times.iso(times.now() - dt.timedelta(**delta))


def plant_stale_and_live_rows(url: str) -> None:
    """Rows of each kind: ``stale-*`` must be purged, ``live-*`` kept."""
    links = Links(Database(url))
    links.create(
        Purpose.INVITE, "stale-expired@x.org", Role.OPERATOR, None, lifetime=dt.timedelta(seconds=-1)
    )
    used = links.create(Purpose.RESET, "stale-used@x.org", Role.OPERATOR, None)
    assert links.consume(used) is not None
    links.create(Purpose.INVITE, "live-invite@x.org", Role.DISTRICT_ADMIN, "maple")

    def session(name: str, created: dict, expires: dict, seen: dict) -> dict[str, object]:
        times_ = {"created_at": _ago(**created), "expires_at": _ago(**expires), "last_seen_at": _ago(**seen)}
        return {"token_hash": name, "account": "a1", "stage": "full", "ip": None, **times_}

    rows = {
        sessions: [
            session("stale-absolute", {"hours": 13}, {"hours": 1}, {"minutes": 1}),
            session("stale-idle", {"hours": 1}, {"hours": -11}, {"minutes": 31}),
            session("live-session", {"hours": 1}, {"hours": -11}, {"minutes": 1}),
        ],
        sign_in_attempts: [
            {"key": "stale-old", "failures": 9, "last_failure_at": _ago(hours=25),
             "locked_until": _ago(hours=24)},
            {"key": "live-recent", "failures": 2, "last_failure_at": _ago(hours=1), "locked_until": None},
        ],
        request_counts: [
            {"key": "stale-window", "window_started_at": _ago(minutes=61), "hits": 3},
            {"key": "live-window", "window_started_at": _ago(minutes=5), "hits": 1},
        ],
    }  # fmt: skip
    with Database(url).transaction() as conn:
        for table, values in rows.items():
            conn.execute(insert(table), values)


def kept(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    queries = {
        "links": "SELECT email FROM invitations",
        "sessions": "SELECT token_hash FROM sessions",
        "attempts": "SELECT key FROM sign_in_attempts",
        "counts": "SELECT key FROM request_counts",
    }
    with engine.connect() as conn:
        found = {name: sorted(r[0] for r in conn.execute(text(q))) for name, q in queries.items()}
    engine.dispose()
    return found


def seed_with_stale_rows(home, env) -> None:
    seed_registry(home, env)
    plant_stale_and_live_rows(env["ETL_PROJECT_REGISTRY_URL"])


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with run_portal(tmp_path_factory.mktemp("housekeeping"), seed=seed_with_stale_rows) as server:
        yield server


def test_the_portal_purges_stale_rows_when_it_starts(portal):
    found = kept(portal.registry_url)
    assert found["sessions"] == ["live-session"]
    assert found["attempts"] == ["live-recent"] and found["counts"] == ["live-window"]
    assert "live-invite@x.org" in found["links"]
    assert not any(email.startswith("stale") for email in found["links"])


def test_housekeeping_runs_once_per_interval_and_counts_what_it_purged(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    plant_stale_and_live_rows(url)
    db = Database(url)
    chores = Housekeeping(db, Sessions(db), Throttle(db), RateLimits(db))
    first = chores.due()
    assert first is not None
    assert (first.sessions, first.links, first.sign_in_attempts, first.request_counts) == (2, 2, 1, 1)
    assert chores.due() is None  # within the interval: nothing runs
    assert kept(url)["sessions"] == ["live-session"]


def _reset_deliveries(portal) -> list[tuple[str, str]]:
    engine = create_engine(portal.registry_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT email, detail FROM audit_log WHERE action = 'password_reset_requested' ORDER BY id")
        ).all()
    engine.dispose()
    return [(email, json.loads(detail)["delivery"]) for email, detail in rows]


def test_reset_e_mails_are_limited_per_address_and_per_client_with_one_neutral_answer(portal):
    token = Links(Database(portal.registry_url)).create(Purpose.INVITE, ADMIN, Role.DISTRICT_ADMIN, "maple")
    assert accept(portal.client(), f"/set-password?token={token}").status_code == 303
    client = portal.client()
    asked = [ADMIN] * (RESET_PER_EMAIL.limit + 1)
    asked += [f"nobody{i}@maple.example.org" for i in range(RESET_PER_ADDRESS.limit - len(asked) + 1)]
    answers = set()
    for email in asked:
        form = client.get("/forgot-password").text
        page = client.post("/forgot-password", data={"csrf": csrf_of(form), "email": email})
        answers.add((page.status_code, page.text.replace(csrf_of(form), "")))
    assert len(answers) == 1  # sent, limited or unknown: the same page
    status, body = answers.pop()
    assert status == 200 and "If an account uses that address" in body

    deliveries = _reset_deliveries(portal)
    to_admin = [d for e, d in deliveries if e == ADMIN]
    limited = "not sent: too many reset requests for this e-mail address"
    assert to_admin == ["printed"] * RESET_PER_EMAIL.limit + [limited]
    last_email, last_delivery = deliveries[-1]
    assert last_email.startswith("nobody")
    assert last_delivery == "not sent: too many reset requests from this client address"
    assert [d for _, d in deliveries].count("none") == RESET_PER_ADDRESS.limit - RESET_PER_EMAIL.limit - 1
