"""The Dagster UI over a synced demo district: GraphQL lineage and checks, then the lineage page in Chromium.

``etl-project demo`` syncs two nights into a temp ETL_PROJECT_HOME / DAGSTER_HOME exactly as a new user
would; ``dagster-webserver -w workspace.yaml`` then serves that instance on a free loopback port (its own
process group, stopped on teardown). Screenshots go to ``artifacts/screenshots/`` (kept by CI).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from etl_project.devservers import free_port
from etl_project_tests.processes import stop_group

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ENTITIES = ("users", "enrollments")


def chain(entity: str) -> list[str]:
    """raw -> archive -> OneRoster -> LMS -> the district's sync report, for one entity."""
    return [
        "raw/oneroster_drop",
        "archive/oneroster_snapshot",
        f"oneroster/{entity}",
        f"lms/{entity}",
        "reports/district_sync_report",
    ]


class Webserver:
    def __init__(self, url: str, proc: subprocess.Popen, partition: str):
        self.url, self.proc, self.partition = url, proc, partition

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            self.url + "/graphql", body, {"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            payload = json.load(resp)
        assert "errors" not in payload, payload["errors"]
        return payload["data"]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "DAGSTER_", "LMS_"))}
    env.update(ETL_PROJECT_HOME=str(root / "home"), DAGSTER_HOME=str(root / "dagster"))
    demo = subprocess.run(
        [str(BIN / "etl-project"), "demo", "--students", "150"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    night = sorted(p.name for p in (root / "home" / "demo-dropbox").iterdir())[-1]

    port = free_port()
    log = open(root / "webserver.log", "w")  # noqa: SIM115 (closed on teardown)
    proc = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        env={**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"},
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:  # readiness poll with a bounded deadline (the code location loads before it answers)
            assert proc.poll() is None, (root / "webserver.log").read_text()
            try:
                with urllib.request.urlopen(url + "/server_info", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "webserver not ready: " + (root / "webserver.log").read_text()
            time.sleep(0.25)
        yield Webserver(url, proc, f"{night}|demo")
    finally:
        stop_group(proc)
        log.close()


ASSET_NODES = """{ assetNodes { assetKey { path } groupName kinds description owners { __typename }
  dependencyKeys { path } dependedByKeys { path }
  assetChecksOrError { ... on AssetChecks { checks { name blocking description } } } } }"""


def test_graphql_shows_the_chain_with_groups_kinds_descriptions_and_checks(webserver):
    nodes = {"/".join(n["assetKey"]["path"]): n for n in webserver.graphql(ASSET_NODES)["assetNodes"]}
    for entity in ENTITIES:
        hops = chain(entity)
        for up, down in itertools.pairwise(hops):
            assert down in {"/".join(k["path"]) for k in nodes[up]["dependedByKeys"]}, (up, down)
            assert up in {"/".join(k["path"]) for k in nodes[down]["dependencyKeys"]}, (up, down)
    expected_groups = {
        "raw": "ingest",
        "archive": "archive",
        "oneroster": "oneroster",
        "lms": "lms",
        "reports": "reports",
    }
    for key, node in nodes.items():
        assert node["description"] and node["owners"], key
        assert node["groupName"] == expected_groups.get(key.split("/")[0], node["groupName"]), key
        assert node["kinds"], key
    assert (
        "sftp" in nodes["raw/oneroster_drop"]["kinds"]
        and nodes["archive/oneroster_snapshot"]["kinds"] == ["local"]  # the demo's archive is a folder
    )
    assert nodes["oneroster/users"]["kinds"] == ["duckdb"]

    def checks(key: str) -> dict[str, dict]:
        return {c["name"]: c for c in nodes[key]["assetChecksOrError"]["checks"]}

    assert "drop_arrived_on_time" in checks("archive/oneroster_snapshot")
    assert "source_reachable" in checks("raw/oneroster_drop")
    for entity in ENTITIES:
        oneroster = checks(f"oneroster/{entity}")
        assert {"required_fields", "valid_values", "unique_sourced_ids", "references_resolve"} <= set(
            oneroster
        )
        assert oneroster["file_complete"]["blocking"] and not oneroster["row_count_drift"]["blocking"]
        assert all(c["description"] for c in oneroster.values())
        assert "required_fields" in checks(f"lms/{entity}")
    assert "references_resolve" in checks("lms/enrollments")
    assert checks("lms/change_plan")["within_safety_thresholds"]["blocking"]


MATERIALIZATIONS = """query ($path: [String!]!, $partition: String!) {
  assetNodeOrError(assetKey: {path: $path}) {
  ... on AssetNode { assetMaterializations(partitions: [$partition], limit: 5) { partition runId } } } }"""
CHECK_EXECUTIONS = """query ($path: [String!]!, $check: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 5) {
    status runId evaluation { partition severity description } } }"""


def test_the_demo_night_is_materialized_and_checked_along_the_chain(webserver):
    runs = set()
    for entity in ENTITIES:
        for key in chain(entity):
            data = webserver.graphql(
                MATERIALIZATIONS, {"path": key.split("/"), "partition": webserver.partition}
            )
            mats = data["assetNodeOrError"]["assetMaterializations"]
            assert [m["partition"] for m in mats] == [webserver.partition], key
            runs.add(mats[0]["runId"])
        data = webserver.graphql(CHECK_EXECUTIONS, {"path": ["oneroster", entity], "check": "file_complete"})
        [execution] = [
            e for e in data["assetCheckExecutions"] if e["evaluation"]["partition"] == webserver.partition
        ]
        assert execution["status"] == "SUCCEEDED" and "complete" in execution["evaluation"]["description"]
    assert len(runs) == 1, "the whole chain of the night comes from one nightly_sync run"


def test_lineage_page_in_chromium(webserver):
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Dagster's first-visit "Join the Dagster community" dialog (shown on localhost, a second after the page
    # loads) would cover the screenshots, and clicking its Skip button raced its appearing: mark it seen in
    # the instance, as that button does.
    webserver.graphql("mutation { setNuxSeen }")
    assert webserver.graphql("{ shouldShowNux }") == {"shouldShowNux": False}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)

        def show(path: str, *texts: str, shot: str) -> None:
            page = browser.new_page(viewport={"width": 1800, "height": 1100})  # fresh zoom per view
            page.goto(webserver.url + path, wait_until="networkidle", timeout=60_000)
            try:
                for text in texts:
                    page.get_by_text(text, exact=True).first.wait_for(timeout=60_000)
                expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0, timeout=60_000)
            finally:
                page.screenshot(path=str(SCREENSHOTS / shot))
                page.close()

        try:
            # the whole chain upstream of lms/users: ingest -> archive -> oneroster -> lms
            lineage = "/assets/lms/users?view=lineage&lineageDepth=3&lineageScope=upstream"
            names = ("oneroster_drop", "oneroster_snapshot", "enrollments", "change_plan", "roles")
            show(lineage, *names, shot="lineage.png")
            # one hop around lms/users, close enough for the cards to show checks, partitions and kinds
            neighbors = "/assets/lms/users?view=lineage&lineageDepth=1&lineageScope=neighbors"
            show(neighbors, "Asset checks", "SQLite", shot="lineage_lms_users.png")
        finally:
            browser.close()
    for shot in ("lineage.png", "lineage_lms_users.png"):
        assert (SCREENSHOTS / shot).stat().st_size > 20_000, shot
