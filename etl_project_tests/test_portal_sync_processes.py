"""Sync now is one decision per district-night across portal processes, and the new-drop sensor does not
start a second run for a drop Sync now already started.

Two real `etl-project portal` processes share one registry (SQLite) and one `dagster-webserver` (no daemon:
the submitted run stays queued, which is all this needs). The same signed-in admin presses Sync now on both
at once, several times; then the new-drop sensor is evaluated on the same instance and district."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from dagster import DagsterInstance, RunsFilter

from etl_project.automation.sensors import build_new_drop_sensor
from etl_project.districts import District, LocalSource
from etl_project.districts.resource import DistrictsResource
from etl_project.generate import generate_drop
from etl_project.portal.accounts import Role
from etl_project.portal.links import Links, Purpose
from etl_project.registry import Registry
from etl_project.registry.db import Database
from etl_project_tests.automation import TickLog, night
from etl_project_tests.portal_server import run_portal
from etl_project_tests.processes import stop_group
from etl_project_tests.test_portal_security import accept, csrf_of
from etl_project_tests.test_portal_sync_now import _dagster_env, _webserver
from etl_project_tests.test_sensors import tick

PRESSES_PER_PORTAL = 3


def test_two_portals_pressing_sync_now_together_start_one_run_and_the_sensor_skips_it(tmp_path, monkeypatch):
    env = _dagster_env(tmp_path, monkeypatch)
    home, drops = tmp_path / "home", tmp_path / "drops"
    generate_drop(drops / night(1), 40, seed=3)

    def seed(_home, portal_env) -> None:
        Registry(portal_env["ETL_PROJECT_REGISTRY_URL"], portal_env).add(
            District("lincoln", "Lincoln", LocalSource(path=str(drops))), None
        )

    web, port = _webserver(env, tmp_path)
    shared = {k: env[k] for k in ("ETL_PROJECT_SECRET_KEY", "DAGSTER_HOME")}
    shared["ETL_PROJECT_DAGSTER_URL"] = f"http://127.0.0.1:{port}"
    try:
        with (
            run_portal(home, seed=seed, extra_env=shared) as one,
            run_portal(home, seed=lambda *_: None, extra_env=shared) as two,
        ):
            token = Links(Database(one.registry_url)).create(
                Purpose.INVITE, "it@lincoln.example.org", Role.DISTRICT_ADMIN, "lincoln"
            )
            browser = one.client()
            assert accept(browser, f"/set-password?token={token}").status_code == 303
            csrf, cookies = csrf_of(browser.get("/district").text), dict(browser.cookies)

            def press(portal) -> httpx.Response:  # the same session on either portal: sessions are shared
                with httpx.Client(base_url=portal.base, cookies=cookies, timeout=120) as c:
                    return c.post("/sync", data={"csrf": csrf}, headers={"Origin": portal.base})

            with ThreadPoolExecutor(max_workers=2 * PRESSES_PER_PORTAL) as pool:
                answers = list(pool.map(press, [one, two] * PRESSES_PER_PORTAL))
            logs = one.log[-20:] + two.log[-20:]
            assert [a.status_code for a in answers] == [303] * len(answers), logs
            pages = {a.headers["location"] for a in answers}
            assert len(pages) == 1 and next(iter(pages)).startswith("/runs/"), pages
            run_id = next(iter(pages)).split("/runs/")[1].split("?")[0]

        with DagsterInstance.get() as instance:
            runs = instance.get_run_records(RunsFilter(job_name="nightly_sync"))
            assert [r.dagster_run.run_id for r in runs] == [run_id]
            run = runs[0].dagster_run
            assert run.tags["etl_project/trigger"] == "sync_now" and run.tags["dagster/run_key"].startswith(
                "lincoln:"
            )

            log = TickLog()
            districts = DistrictsResource(url=one.registry_url)
            result = tick(build_new_drop_sensor(), instance, districts, log=log)
            assert result.run_requests == []
            assert f"already started by run {run_id} (sync_now, the same drop)" in "\n".join(log.lines)
    finally:
        stop_group(web)
