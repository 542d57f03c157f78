"""The sync reports in a real browser (Debian's chromium driven by Playwright), served by `serve-reports`.

Screenshots are kept in artifacts/screenshots/ (CI artifacts; see the README)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance
from playwright.sync_api import sync_playwright

from etl_project_tests.report_server import serve_reports
from etl_project_tests.reports_helpers import NIGHT1, NIGHT2, sync_districts

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with DagsterInstance.ephemeral() as instance:
        synced = sync_districts(
            tmp_path_factory.mktemp("browser-reports"),
            instance,
            {"maple": "Maple Grove Unified", "cedar": "Cedar Falls Schools"},
            errors_night2=8,
        )
    assert synced.results[("maple", NIGHT2)].success
    with serve_reports(synced.env()) as server:
        yield synced, server


@pytest.fixture(scope="module")
def page():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        yield page
        browser.close()


def test_report_shows_reasons_and_fix_hints(served, page):
    synced, server = served
    response = page.goto(server.url("maple", f"date={NIGHT2}/report.html"), wait_until="load")
    assert response.status == 200
    assert "Maple Grove Unified" in page.title()
    assert page.locator("#status").is_visible()
    rejects = page.locator("#rejects tr.reject")
    drop = synced.drops[("maple", NIGHT2)]
    assert rejects.count() >= len(drop.errors)
    table = page.locator("#rejects")
    assert table.is_visible()
    text = table.inner_text()
    for err in drop.errors:  # each injected bad row: its file and line are on the page
        assert err.file in text
    assert page.get_by_text("The date is written day/month/year").first.is_visible()
    assert page.get_by_text(
        "do not open and re-save the export in a spreadsheet"
    ).first.is_visible()  # the fix
    assert page.get_by_text("The same sourcedId appears on more than one row").first.is_visible()
    assert page.locator("td.fix").first.is_visible()
    page.screenshot(path=str(SCREENSHOTS / "report-night-with-rejects.png"), full_page=True)

    # the CSV link next to it downloads every rejected row
    with page.expect_download() as download:
        page.get_by_role("link", name="Rejected rows (CSV)").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("file,line,column,code") and len(lines) - 1 >= len(drop.errors)


def test_history_page_draws_the_chart(served, page):
    _, server = served
    response = page.goto(server.url("maple"), wait_until="load")  # redirects to the latest history page
    assert response.status == 200 and page.url.endswith(f"date={NIGHT2}/history.html")
    chart = page.locator("svg#history-chart")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box and box["width"] > 500 and box["height"] > 200
    bars = page.locator("svg#history-chart rect.bar.received")
    assert bars.count() == 2  # the two synced nights; the other 28 are marked as gaps
    for i in range(bars.count()):
        b = bars.nth(i).bounding_box()
        assert b and b["height"] > 0 and b["width"] > 0
    assert page.locator("svg#history-chart rect.gap").count() >= 28 * 3
    assert page.locator(f'a[href="../date={NIGHT1}/report.html"]').is_visible()
    page.screenshot(path=str(SCREENSHOTS / "history-chart.png"), full_page=True)


def test_another_districts_report_is_refused(served, page):
    _, server = served
    own = server.url("maple", f"date={NIGHT2}/report.html")
    for url in (
        own.replace("/report.html", "/../../cedar/date=" + NIGHT2 + "/report.html"),
        server.url("maple", f"district=cedar/date={NIGHT2}/report.html"),
        server.base + f"/d/cedar/date={NIGHT2}/report.html",
        server.url("maple", f"date={NIGHT2}/%2e%2e/%2e%2e/report.html"),
    ):
        response = page.goto(url, wait_until="load")
        assert response.status in (403, 404), url
        assert "Cedar Falls" not in page.content()
    page.screenshot(path=str(SCREENSHOTS / "other-district-refused.png"))
    # cedar's own URL works, and shows only cedar
    response = page.goto(server.url("cedar", f"date={NIGHT2}/report.html"), wait_until="load")
    assert response.status == 200 and "Cedar Falls Schools" in page.content()
    assert "Maple Grove" not in page.content()
