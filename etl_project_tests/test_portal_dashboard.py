"""Dashboard services over two real synced nights (DuckDB warehouse, SQLite LMS, the registry's night
states): the nights with state and counts, a night's report, the rejected-rows CSV with formula cells
neutralized, and trace search by sourcedId and by name down to a record's history and why it was kept out."""

from __future__ import annotations

import csv
import io

import pytest
from dagster import DagsterInstance

from etl_project.lms.connect import open_backend
from etl_project.night_tables import publish_night
from etl_project.portal_services.dashboard import night_report, night_report_html, recent_nights
from etl_project.portal_services.rejects_export import rejects_download
from etl_project.portal_services.trace_search import change_lines, file_name, record_history, search
from etl_project.registry.nights import NightStates
from etl_project_tests.reports_helpers import NIGHT1, NIGHT2, sync_districts


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    root = tmp_path_factory.mktemp("portal-dashboard")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ETL_PROJECT_HOME", str(root / "home"))
        with DagsterInstance.ephemeral() as instance:
            done = sync_districts(root, instance, {"north": "North Unified"}, students=60, errors_night2=6)
        for name, value in done.env().items():
            mp.setenv(name, value)
        yield done, open_backend(f"sqlite:///{root}/lms.sqlite"), NightStates()


def test_recent_nights_newest_first_with_state_and_counts(synced):
    _, backend, states = synced
    nights = recent_nights(states, backend, "north")
    assert [n["date"] for n in nights] == [NIGHT2, NIGHT1]
    assert nights[1]["state"] == "applied" and nights[1]["counts"]["users"]["created"] > 60
    assert recent_nights(states, backend, "north", limit=1)[0]["date"] == NIGHT2


def test_night_report_and_its_page(synced):
    done, backend, states = synced
    archive = done.resources["archive"].open()
    report = night_report(done.resources["warehouse"], backend, archive, states, "north", NIGHT2)
    assert report.rejects and report.lms_state == nights_state(states, NIGHT2)
    assert "North Unified" in night_report_html(report) or "north" in night_report_html(report)


def nights_state(states: NightStates, night: str) -> str:
    return str(states.get("north", night).state)


def test_rejects_csv_neutralizes_formula_cells(synced):
    done, _, _ = synced
    warehouse, archive = done.resources["warehouse"], done.resources["archive"].open()
    with warehouse.connect("north") as conn:
        conn.execute(
            """INSERT INTO oneroster.rejects SELECT * REPLACE ('=HYPERLINK("http://x")' AS message,
                   '@SUM(A1)' AS "sourcedId", '-2+3' AS "column")
               FROM oneroster.rejects WHERE _date = ? LIMIT 1""",
            [NIGHT2],
        )
        want = conn.execute("SELECT count(*) FROM oneroster.rejects WHERE _date = ?", [NIGHT2]).fetchone()[0]
        publish_night(conn, archive, warehouse, "north", NIGHT2)  # the night rebuilt: readers see it
    name, body = rejects_download(warehouse, archive, "north", NIGHT2)
    assert name == f"north-{NIGHT2}-rejected-rows.csv"
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == want
    cells = [v for row in rows for v in row.values() if v]
    assert not [c for c in cells if c[0] in "=+-@\t\r"], cells
    planted = [r for r in rows if r["sourcedId"] == "'@SUM(A1)"]
    assert planted and planted[0]["details"] == '\'=HYPERLINK("http://x")' and planted[0]["column"] == "'-2+3"


def test_trace_search_by_id_and_name_to_the_history(synced):
    done, backend, states = synced
    warehouse, archive = done.resources["warehouse"], done.resources["archive"].open()
    with warehouse.connect("north") as conn:
        sid, family = conn.execute(
            """SELECT "sourcedId", "familyName" FROM oneroster.users WHERE _date = ? ORDER BY 1 LIMIT 1""",
            [NIGHT2],
        ).fetchone()
    (hit,) = [m for m in search(warehouse, archive, "north", sid) if m["sourced_id"] == sid]
    assert hit["entity"] == "users" and family in hit["label"] and hit["found"] == ["loaded"]
    by_name = search(warehouse, archive, "north", family[:-1].upper())  # a prefix, in any case
    assert sid in {m["sourced_id"] for m in by_name}
    assert all(family[:-1].lower() in (m["label"] or "").lower() for m in by_name if m["entity"] == "users")
    (given,) = [m["label"].split()[0] for m in by_name if m["sourced_id"] == sid]
    both = search(warehouse, archive, "north", f"{given[:2]} {family[:3]}")  # "given family" prefixes
    assert sid in {m["sourced_id"] for m in both}
    assert sid not in {
        m["sourced_id"] for m in search(warehouse, archive, "north", family[1:])
    }  # not mid-name
    assert search(warehouse, archive, "north", "%") == [] and search(warehouse, archive, "north", "_a") == []
    history = record_history(warehouse, archive, backend, states, "north", "users", sid)
    assert history["changes"] and history["changes"][-1]["operation"] == "created"
    created = history["changes"][-1]
    assert created["file"] == "users.csv" and created["line"] > 1  # the name only, never our server's path
    assert "file_uri" not in created and any(line.endswith(f" → {family}") for line in created["changes"])
    assert all(": (empty) → " in line for line in created["changes"])  # created: nothing before


def test_a_change_is_shown_as_field_before_after_and_a_file_by_its_name():
    changes = {"email": {"before": "a@north.org", "after": "b@north.org"}, "grades": {"before": ["09"],
               "after": ["10"]}, "status": {"before": "active", "after": None}}  # fmt: skip
    assert change_lines(changes) == [
        "email: a@north.org → b@north.org",
        'grades: ["09"] → ["10"]',
        "status: active → (empty)",
    ]
    assert file_name("file:///srv/etl/archive/north/2026-11-28/users.csv") == "users.csv"
    assert file_name("s3://roster-archive/north/date%3D2026-11-28/classes.csv") == "classes.csv"
    assert file_name(None) == ""


def test_trace_search_finds_a_rejected_record_and_explains_it(synced):
    done, backend, states = synced
    warehouse, archive = done.resources["warehouse"], done.resources["archive"].open()
    with warehouse.connect("north") as conn:
        (sid,) = conn.execute(
            """SELECT "sourcedId" FROM oneroster.rejects WHERE file = 'users.csv' AND "sourcedId" IS NOT NULL
               AND "sourcedId" NOT IN (SELECT "sourcedId" FROM oneroster.users) LIMIT 1"""
        ).fetchone()
    (hit,) = search(warehouse, archive, "north", sid)
    assert hit["found"] == ["rejected"] and hit["night"] == NIGHT2
    history = record_history(warehouse, archive, backend, states, "north", "users", sid)
    assert not history["changes"]
    assert history["kept_out"] and history["kept_out"][0]["fix"] and history["kept_out"][0]["line"] > 1
