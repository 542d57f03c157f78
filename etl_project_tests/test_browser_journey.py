"""The whole journey in a real browser (Debian's chromium driven by Playwright), as a newcomer does it:
`etl-project demo` leaves a home; `etl-project portal` on the embedded default (it runs its Dagster daemon
and webserver); the operator sets up with TOTP, creates district birch and invites its admin; the admin
accepts, enters SFTP credentials for the OpenSSH sshd the tests start, tests the connection, confirms the
server's fingerprint, sees the newest drop's report, presses Sync now, watches the run end, sees the night
applied, finds a student by sourcedId and by name, and that night's rows are in the LMS database.

Every page is screenshotted into artifacts/screenshots/journey-NN-<page>.png (CI keeps them). Waits are on
page states (Playwright expectations), with generous bounds: 2 shared cores run a Dagster run meanwhile."""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from etl_project.generate import generate_drop
from etl_project_tests.portal_server import run_portal
from etl_project_tests.test_browser_reports import CHROMIUM_ARGS, SCREENSHOTS
from etl_project_tests.test_portal_onboarding_web import ALLOW_LOOPBACK, fingerprint
from etl_project_tests.test_portal_sync import until

pytestmark = pytest.mark.browser
OPERATOR_PASSWORD = "operator journey password 2026"
ADMIN_PASSWORD = "birch admin journey password 7"
ADMIN = "it.admin@birch.example.org"
STUDENTS = 60
NIGHT = (dt.date.today() - dt.timedelta(days=1)).isoformat()
PAGE_MS = 90_000  # a page under load (the Dagster run shares the 2 cores)
RUN_MS = 900_000  # the run from Sync now to its end, queued and started by the daemon


class Shots:
    """journey-NN-<page>.png, numbered in the order the pages were seen."""

    def __init__(self) -> None:
        self.n = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Page, name: str) -> None:
        self.n += 1
        page.screenshot(path=str(SCREENSHOTS / f"journey-{self.n:02d}-{name}.png"), full_page=True)


def demo_home(home: Path, env: dict[str, str]) -> None:
    """What `make demo` leaves: `etl-project demo` run as a newcomer runs it, on the embedded defaults."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "DAGSTER_", "LMS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "etl_project.cli.main", "demo", "--students", str(STUDENTS)],
        env={**clean, "ETL_PROJECT_HOME": str(home)}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "etl-project portal" in done.stdout  # the demo points the newcomer to the browser


@pytest.fixture
def portal(tmp_path) -> Iterator:
    with run_portal(tmp_path / "home", seed=demo_home, embedded=True, extra_env=ALLOW_LOOPBACK) as server:
        yield server


def birch_drop(openssh_sftp) -> tuple[Path, list[dict[str, str]]]:
    """A complete drop for last night in birch's folder on the sshd; its users.csv rows."""
    folder = openssh_sftp.files / "birch"
    generate_drop(folder / NIGHT, STUDENTS, seed=11, district_id="birch", district_name="Birch Valley")
    with open(folder / NIGHT / "users.csv", newline="") as f:
        return folder, list(csv.DictReader(f))


def operator_sets_up(page: Page, portal, shot: Shots) -> None:
    page.goto(portal.setup_link())
    page.fill("input[name=password]", OPERATOR_PASSWORD)
    page.fill("input[name=password2]", OPERATOR_PASSWORD)
    shot(page, "operator-set-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal.base}/totp")
    secret = page.locator("#totp-key").inner_text()
    shot(page, "operator-totp")
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click('form[action="/totp"] button')
    page.wait_for_url(f"{portal.base}/operator")
    shot(page, "operator-districts")


def operator_creates_birch(page: Page, portal, shot: Shots) -> str:
    page.click("text=New district")
    page.wait_for_url(f"{portal.base}/operator/districts/new")
    page.fill("input[name=district]", "birch")
    page.fill("input[name=name]", "Birch Valley Schools")
    page.select_option("select[name=timezone]", "America/Denver")
    page.fill("input[name=email]", ADMIN)
    page.check("input[name=delivery][value=show]")
    shot(page, "operator-new-district")
    page.click("#new-district button[type=submit]")
    link = page.locator("#invite-link")
    expect(link).to_contain_text("/set-password?token=")
    url = link.inner_text()  # shown once: read it before leaving the page
    shot(page, "operator-invited")
    page.goto(f"{portal.base}/operator")
    expect(page.locator('tr[data-district="birch"]')).to_have_class(re.compile(r"\bnot-connected\b"))
    shot(page, "operator-birch-not-connected")
    return url


def admin_accepts(page: Page, portal, link: str, shot: Shots) -> None:
    page.goto(link)
    expect(page.locator("#link-email")).to_have_text(ADMIN)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.fill("input[name=password2]", ADMIN_PASSWORD)
    shot(page, "admin-set-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{portal.base}/district")
    expect(page.locator("#health")).to_have_text("not connected")
    shot(page, "admin-home-not-connected")


def admin_connects_sftp(page: Page, portal, openssh_sftp, folder: Path, shot: Shots) -> None:
    page.click('a[href="/district/source"]')
    page.wait_for_url(f"{portal.base}/district/source")
    expect(page.locator("#not-connected")).to_be_visible()
    form = page.locator("#sftp-form")
    form.locator("input[name=host]").fill(openssh_sftp.host)
    form.locator("input[name=port]").fill(str(openssh_sftp.port))
    form.locator("input[name=username]").fill(openssh_sftp.user)
    form.locator("input[name=remote_dir]").fill(str(folder))
    form.locator("textarea[name=private_key]").fill(openssh_sftp.client_key.private_openssh)
    shot(page, "admin-sftp-form")
    form.locator("button").click()
    page.wait_for_url(f"{portal.base}/district/source?saved=1")
    shot(page, "admin-sftp-saved")

    page.click("#test")
    shown = page.locator("#server-fingerprint")
    expect(shown).to_have_text(fingerprint(openssh_sftp.host_key_openssh))  # computed here independently
    expect(page.locator("#server-command")).to_contain_text("ssh-keygen -lf")
    shot(page, "admin-confirm-fingerprint")
    page.fill("#fingerprint input[name=fingerprint]", shown.inner_text())
    page.click("#fingerprint button")
    expect(page.locator('li.step[data-step="validate"]')).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("li.step.failed")).to_have_count(0)
    expect(page.locator("#report")).to_contain_text(NIGHT)
    shot(page, "admin-connection-ok-report")


def admin_syncs(page: Page, portal, shot: Shots) -> None:
    page.goto(f"{portal.base}/district")
    expect(page.locator("#health")).to_have_text("ok")  # the test's listing was recorded as a poll
    shot(page, "admin-home-connected")
    page.click("#sync-now")
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+\?district=birch$"))
    expect(page.locator("#run-status")).to_be_visible()
    shot(page, "admin-run-started")
    expect(page.locator("#run-ended")).to_be_visible(timeout=RUN_MS)  # the page refreshes itself until then
    expect(page.locator("#run-status")).to_have_text("SUCCESS")
    shot(page, "admin-run-success")
    page.click("#run-ended a")
    page.wait_for_url(f"{portal.base}/district")
    expect(page.locator("#latest-night")).to_contain_text(f"Newest night {NIGHT}: applied")
    expect(page.locator(f'#nights tr.night.applied:has-text("{NIGHT}")')).to_have_count(1)
    shot(page, "admin-dashboard-applied")


def admin_traces(page: Page, portal, student: dict[str, str], shot: Shots) -> None:
    sid = student["sourcedId"]
    page.fill("#trace input[name=q]", sid)
    page.click("#trace button")
    found = page.locator(f'#results a:text-is("{sid}")')
    expect(found).to_have_count(1)
    shot(page, "admin-trace-by-id")
    found.click()
    page.wait_for_url(re.compile(r"/trace/record\?"))
    expect(page.locator("#changes td.file").first).to_have_text("users.csv")
    expect(page.locator("#changes td.changes").first).to_contain_text(f"→ {student['familyName']}")
    shot(page, "admin-trace-record")
    page.click("text=Search again")
    page.wait_for_url(re.compile(r"/trace\?district=birch$"))
    page.fill("main input[name=q]", student["familyName"])
    page.click("main form button")
    expect(page.locator(f'#results a:text-is("{sid}")')).to_have_count(1)
    shot(page, "admin-trace-by-name")


def lms_rows(home: Path, sid: str) -> tuple[int, int, list[str]]:
    """birch's active users, this student's rows and birch's sync_runs states for NIGHT, in lms.sqlite."""
    with sqlite3.connect(home / "lms.sqlite") as db:
        users = db.execute("SELECT count(*) FROM users WHERE district = 'birch' AND active = 1").fetchone()[0]
        mine = db.execute(
            "SELECT count(*) FROM users WHERE district = 'birch' AND sourced_id = ?", [sid]
        ).fetchone()[0]
        states = [r[0] for r in db.execute(
            "SELECT state FROM sync_runs WHERE district = 'birch' AND partition_date = ?", [NIGHT]
        )]  # fmt: skip
    return users, mine, states


def test_a_new_district_from_invitation_to_its_first_night_in_the_lms(portal, openssh_sftp):
    folder, users = birch_drop(openssh_sftp)
    student = next(u for u in users if u["role"] == "student")
    home = Path(portal.env["ETL_PROJECT_HOME"])
    until(lambda: any("Sync now ready" in line for line in portal.log), "Dagster ready", portal)
    shot = Shots()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            operator = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            admin = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            for page in (operator, admin):
                page.set_default_timeout(PAGE_MS)
                page.set_default_navigation_timeout(PAGE_MS)
            expect.set_options(timeout=PAGE_MS)
            operator_sets_up(operator, portal, shot)
            link = operator_creates_birch(operator, portal, shot)
            admin_accepts(admin, portal, link, shot)
            admin_connects_sftp(admin, portal, openssh_sftp, folder, shot)
            admin_syncs(admin, portal, shot)
            admin_traces(admin, portal, student, shot)
        finally:
            browser.close()
    active, mine, states = lms_rows(home, student["sourcedId"])
    assert active == len(users) and mine == 1 and states and set(states) <= {"applied"}
