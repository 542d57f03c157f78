"""The portal server itself against hostile clients (as test_report_server_hostile.py does for
serve-reports): thousands of half-sent requests held open while a normal page is still served, threads
bounded, an oversized header refused, and the held connections closed by the header timeout."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from etl_project_tests.hostile_clients import survive_idle_connections
from etl_project_tests.portal_server import run_portal


def test_the_portal_serves_pages_while_thousands_of_half_sent_requests_are_held(tmp_path):
    with run_portal(tmp_path / "home") as portal:
        parts = urlsplit(portal.base)

        def answered() -> bool:
            page = httpx.get(portal.base + "/sign-in", timeout=30)
            return page.status_code == 200 and 'name="password"' in page.text

        survive_idle_connections(portal.process.pid, (parts.hostname, parts.port), "/sign-in", answered)
