"""The district portal in a real browser (Debian's chromium driven by Playwright): a district admin accepts
an invitation, sets a password, signs in and sees their home page. Screenshots in artifacts/screenshots/."""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from etl_project.portal.accounts import Role
from etl_project.portal.links import Links, Purpose
from etl_project.registry.db import Database
from etl_project_tests.portal_server import run_portal
from etl_project_tests.test_browser_reports import CHROMIUM_ARGS, SCREENSHOTS

pytestmark = pytest.mark.browser
PASSWORD = "maple admin browser password 42"
EMAIL = "browser.admin@maple.example.org"


def test_an_invited_admin_sets_a_password_signs_in_and_sees_their_district(tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with run_portal(tmp_path) as portal, sync_playwright() as p:
        token = Links(Database(portal.registry_url)).create(
            Purpose.INVITE, EMAIL, Role.DISTRICT_ADMIN, "maple"
        )
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{portal.base}/set-password?token={token}", wait_until="load")
        assert page.locator("#link-email").inner_text() == EMAIL
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=password2]", PASSWORD)
        page.screenshot(path=str(SCREENSHOTS / "portal-set-password.png"))
        page.click("button[type=submit]")
        page.wait_for_url(f"{portal.base}/district")
        page.click("text=Sign out >> nth=0")
        page.wait_for_url(f"{portal.base}/sign-in")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{portal.base}/district")
        assert "Maple Grove Unified" in page.title()
        assert "applied" in page.locator("#latest-night").inner_text()
        assert "Cedar" not in page.content()
        page.screenshot(path=str(SCREENSHOTS / "portal-district-home.png"), full_page=True)
        browser.close()
