"""The dashboard, Sync now, the run page, Release, trace search, the rejected rows CSV and the operator's
district actions, through `etl-project portal` as a real subprocess on the embedded default: no registry URL,
no secret key, no Dagster URL, so the portal creates its key file and runs dagster-daemon and
dagster-webserver itself (as right after `make demo`). Sync now starts a real run the daemon finishes.

The districts are registered disabled so the daemon's new-drop sensor leaves them alone (Sync now runs a
disabled district, as `etl-project sync` does)."""

from __future__ import annotations

import csv
import io
import re
import stat
import time
from pathlib import Path

import pyotp
import pytest
from dagster import DagsterInstance

from etl_project.districts import District, LocalSource
from etl_project.generate import generate_drop
from etl_project.portal.accounts import Role
from etl_project.portal.links import Links, Purpose
from etl_project.registry.db import Database
from etl_project.registry.nights import NightStates
from etl_project.registry.store import Registry
from etl_project_tests.portal_server import CEDAR_REASON, run_portal
from etl_project_tests.test_portal_security import accept, audit_actions, csrf_of

NIGHT, HELD_NIGHT = "2026-11-28", "2026-11-29"
BAD_ID, BAD_ROLE = "=2+3", "=SUM(1)"
HELD_REASON = "enrollments dropped 40%"
WAIT = 420.0


def seed(home: Path, env: dict[str, str]) -> None:
    drop = home / "maple" / NIGHT
    generate_drop(drop, 40, seed=2)
    with open(drop / "users.csv", "a") as f:  # a row rejected for its role, with formula-like cells
        f.write(f"{BAD_ID},,,true,dst-0001,{BAD_ROLE},bad.user,,Bad,Row,,,,,,,,\n")
    registry = Registry(env["ETL_PROJECT_REGISTRY_URL"], env)
    registry.add(District("maple", "Maple Grove Unified", LocalSource(str(home / "maple")), enabled=False))
    registry.add(District("cedar", "Cedar Falls Schools", LocalSource(str(home / "cedar")), enabled=False))
    nights = NightStates(env["ETL_PROJECT_REGISTRY_URL"])
    nights.record("cedar", "2026-11-30", "failed", reason=CEDAR_REASON, step="oneroster_tables")


def signed_in(portal, email: str, role: Role, district: str | None):
    token = Links(Database(portal.registry_url)).create(Purpose.INVITE, email, role, district)
    client = portal.client()
    assert accept(client, f"/set-password?token={token}").status_code == 303
    return client


def until(condition, what: str, portal):
    """Bounded wait on ``condition()`` (truthy result returned)."""
    deadline = time.monotonic() + WAIT
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what}: " + "\n".join(portal.log[-30:])
        time.sleep(0.5)
    return result


def form_post(client, path: str, data: dict[str, str]):
    return client.post(path, data={"csrf": csrf_of(client.get("/district").text), **data})


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    home = tmp_path_factory.mktemp("portal-sync")
    with run_portal(home, seed=seed, embedded=True) as server:
        until(lambda: any("Sync now ready" in line for line in server.log), "Dagster ready", server)
        yield server
    logs = home / "logs"  # the portal's Dagster children stop with it
    until(lambda: not _children_of(logs), "Dagster children stopped", server)


def _children_of(logs: Path) -> list[str]:
    workspace = "workspace.yaml"
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes()
        except (OSError, ValueError):
            continue
        if "dagster-" in cmd and workspace in cmd and str(logs.parent).encode() in environ:
            found.append(cmd)
    return found


@pytest.fixture(scope="module")
def admin(portal):
    client = signed_in(portal, "it@maple.example.org", Role.DISTRICT_ADMIN, "maple")
    yield client
    client.close()


@pytest.fixture(scope="module")
def synced(portal, admin):
    """Sync now pressed twice: one run; the run page refreshes itself until the run ends."""
    first = form_post(admin, "/sync", {"district": "maple"})
    again = form_post(admin, "/sync", {})
    assert first.status_code == 303, first.text
    assert again.headers["location"] == first.headers["location"]
    run_path = first.headers["location"]
    pages = []

    def ended():
        pages.append(admin.get(run_path).text)
        return "run-ended" in pages[-1]

    until(ended, "run end", portal)
    yield run_path.split("/runs/")[1].split("?")[0], pages


def test_embedded_default_creates_a_private_key_file(portal):
    key = Path(portal.env["ETL_PROJECT_HOME"]) / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_text().strip()
    assert key.read_text().strip() not in "\n".join(portal.log)


def test_sync_now_runs_the_newest_night_and_the_page_shows_progress(portal, admin, synced):
    run_id, pages = synced
    assert 'http-equiv="refresh"' in pages[0] and 'http-equiv="refresh"' not in pages[-1]
    assert 'id="run-status">SUCCESS<' in pages[-1] and "fetch_and_archive_drop" in pages[-1]
    with DagsterInstance.from_config(str(Path(portal.env["ETL_PROJECT_HOME"]) / "dagster")) as instance:
        run = instance.get_run_by_id(run_id)
    assert run.tags["dagster/partition/district"] == "maple" and run.tags["etl_project/trigger"] == "sync_now"
    home = admin.get("/district").text
    assert re.search(rf"<td>{NIGHT}</td><td>applied</td>", home), home
    assert "sync" in audit_actions(portal, "it@maple.example.org")


def test_the_night_report_is_a_portal_page_with_its_own_look(portal, admin, synced):
    page = admin.get(f"/reports/maple/date={NIGHT}/report.html")
    assert page.status_code == 200 and "<style>" in page.text and "Maple" in page.text
    assert "'sha256-" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]


def test_rejected_rows_csv_neutralizes_formula_cells(portal, admin, synced):
    got = admin.get(f"/reports/maple/date={NIGHT}/rejects.csv")
    assert got.status_code == 200 and "attachment" in got.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert any(r["sourcedId"] == "'" + BAD_ID for r in rows), rows
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values() if cell)
    assert "export" in audit_actions(portal, "it@maple.example.org")


def test_trace_search_finds_a_student_and_why_a_record_is_kept_out(portal, admin, synced):
    found = admin.get("/trace", params={"q": "adm-d01"})
    assert found.status_code == 200 and "adm-d01" in found.text
    history = admin.get("/trace/record", params={"entity": "users", "id": "adm-d01"})
    assert history.status_code == 200 and NIGHT in history.text
    assert '<td class="file">users.csv</td>' in history.text  # its name: never a path on our server
    assert portal.env["ETL_PROJECT_HOME"] not in history.text and "file://" not in history.text
    assert re.search(r"<div>\w+: \(empty\) → [^<]+</div>", history.text)  # field: before → after
    kept = admin.get("/trace/record", params={"entity": "users", "id": BAD_ID})
    assert 'id="kept-out"' in kept.text and "role" in kept.text
    assert "trace_search" in audit_actions(portal, "it@maple.example.org")


def test_release_records_who_and_why(portal, admin, synced):
    NightStates(portal.registry_url).record("maple", HELD_NIGHT, "held", reason=HELD_REASON)
    home = admin.get("/district").text
    assert f"Release {HELD_NIGHT}" in home
    no_reason = form_post(admin, "/release", {"night": HELD_NIGHT, "reason": " "})
    assert no_reason.status_code == 400
    done = form_post(admin, "/release", {"night": HELD_NIGHT, "reason": "checked with the registrar"})
    assert done.status_code == 303, done.text
    run_id = done.headers["location"].split("/runs/")[1].split("?")[0]
    with DagsterInstance.from_config(str(Path(portal.env["ETL_PROJECT_HOME"]) / "dagster")) as instance:
        tags = instance.get_run_by_id(run_id).tags
    assert tags["etl_project/release_by"] == "it@maple.example.org"
    assert tags["etl_project/release_reason"] == "checked with the registrar"
    log = admin.get("/district/audit").text
    assert "release" in log and "checked with the registrar" in log


def test_another_district_is_unreachable_on_every_new_route(portal, admin, synced):
    run_id, _ = synced
    tries = [
        admin.get(f"/reports/cedar/date={NIGHT}/report.html"),
        admin.get(f"/reports/cedar/date={NIGHT}/rejects.csv"),
        admin.get(f"/reports/maple/date={NIGHT}/..%2f..%2fregistry.sqlite"),
        admin.get(f"/reports/maple/date=../../{NIGHT}/report.html"),
        admin.get("/trace", params={"q": "adm-d01", "district": "cedar"}),
        admin.get("/trace/record", params={"entity": "users", "id": "adm-d01", "district": "cedar"}),
        admin.get(f"/runs/{run_id}", params={"district": "cedar"}),
        admin.get("/runs/00000000-0000-0000-0000-000000000000"),
        form_post(admin, "/sync", {"district": "cedar"}),
        form_post(admin, "/release", {"district": "cedar", "night": HELD_NIGHT, "reason": "x"}),
        form_post(admin, "/operator/districts/remove", {"district": "cedar", "confirm": "cedar"}),
        admin.post("/sync", data={"csrf": "forged", "district": "maple"}),
        admin.get("/operator/district", params={"district": "cedar"}),
    ]
    codes = [t.status_code for t in tries]
    assert all(c in (303, 403, 404) for c in codes), codes
    assert all("Cedar Falls" not in t.text and CEDAR_REASON not in t.text for t in tries)
    assert "cedar" in Registry(portal.registry_url, portal.env).all()


def operator_client(portal):
    links = Links(Database(portal.registry_url))
    token = links.create(Purpose.INVITE, "ops@example.org", Role.OPERATOR, None)
    client = portal.client()
    assert accept(client, f"/set-password?token={token}").headers["location"] == "/totp"
    enrol = client.get("/totp")
    secret = re.search(r'id="totp-key">([A-Z2-7]+)<', enrol.text).group(1)
    signed = client.post("/totp", data={"csrf": csrf_of(enrol.text), "code": pyotp.TOTP(secret).now()})
    assert signed.headers["location"] == "/operator"
    return client


def test_operator_dashboard_and_typed_confirmation(portal, synced):
    op = operator_client(portal)
    registry = Registry(portal.registry_url, portal.env)

    def act(action: str, confirm: str):
        page = op.get("/operator/district", params={"district": "cedar"})
        assert page.status_code == 200 and 'id="operate"' in page.text
        return op.post(f"/operator/districts/{action}", data={"csrf": csrf_of(page.text), "district": "cedar",
                                                             "confirm": confirm})  # fmt: skip

    maple = op.get("/operator/district", params={"district": "maple"})
    assert maple.status_code == 200 and re.search(rf"<td>{NIGHT}</td><td>applied</td>", maple.text)
    assert op.get(f"/reports/maple/date={NIGHT}/report.html").status_code == 200
    assert op.get("/operator/district", params={"district": "nope"}).status_code == 404
    assert act("enable", "maple").status_code == 400 and not registry.get("cedar").enabled
    assert act("enable", "cedar").status_code == 200 and registry.get("cedar").enabled
    assert act("disable", "cedar").status_code == 200 and not registry.get("cedar").enabled
    archive = Path(portal.env["ETL_PROJECT_HOME"]) / "archive"
    removed = act("remove", "cedar")
    assert removed.status_code == 200 and "cedar" not in registry.all(), removed.text
    assert any("maple" in str(p) for p in archive.rglob("*"))  # another district's archive untouched
    assert {"enable_district", "disable_district", "remove_district"} <= set(audit_actions(portal))
    op.close()
