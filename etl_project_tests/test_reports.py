"""District sync reports from a real pipeline run: contents, hints, escaping, history chart, CLI."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from etl_project_tests.report_server import http_get, serve_reports
from etl_project_tests.reports_helpers import NIGHT1, NIGHT2, sync_north_and_south


class _Text(HTMLParser):
    """Visible text per element id, plus every tag seen (to prove no script/external asset slipped in)."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Text:
    p = _Text()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """Synced once for the module (each test only reads, or rewrites the same reports)."""
    return sync_north_and_south(tmp_path_factory.mktemp("reports"))


def test_report_from_a_real_run(synced):
    result = synced.results[("north", NIGHT2)]
    assert result.success
    [mat] = result.asset_materializations_for_node("reports__district_sync_report")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["dagster/uri"].endswith(f"district=north/date={NIGHT2}/report.html")
    assert meta["lms_state"] == "applied"
    drop = synced.drops[("north", NIGHT2)]
    assert meta["rows_rejected"] >= len(drop.errors) > 0

    archive = synced.archive.open()
    html = archive.get_bytes("north", NIGHT2, "report.html").decode()
    page = parse(html)
    text = " ".join(page.text)
    assert "North Unified" in text and "Synced" in text and "new drop received at" in text
    assert "America/Chicago" not in text  # the time zone is shown by its abbreviation (CDT), not its name
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} C[DS]T", text)
    # every injected bad row is listed with its file and line, a plain reason and a fix hint
    rows = re.findall(r'<tr class="reject"><td>([^<]*)</td><td class="n">(\d+)</td>', html)
    listed = {(f, int(line)) for f, line in rows}
    for err in drop.errors:
        assert (err.file, err.line) in listed, err
    assert "day/month/year" in text and "YYYY-MM-DD" in text  # bad_date: Excel's D/M/Y
    assert "not one of the words OneRoster allows" in text  # invalid_enum
    assert "Values that contain commas must be inside double quotes" in text or "must be quoted" in text
    assert "Changes in the LMS" in text
    # self-contained: no scripts, no external resources
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe")]
    assert "http://" not in html and "https://" not in html.replace("http://www.w3.org/2000/svg", "")

    # the full list is next to it, as CSV
    csv_rows = list(csv.DictReader(io.StringIO(archive.get_bytes("north", NIGHT2, "rejects.csv").decode())))
    assert len(csv_rows) == meta["rows_rejected"] or len(csv_rows) >= meta["rows_rejected"]
    assert {(r["file"], int(r["line"])) for r in csv_rows} >= {(e.file, e.line) for e in drop.errors}
    assert all(r["reason"] and r["fix"] for r in csv_rows)

    # night 1 is clean
    clean = archive.get_bytes("north", NIGHT1, "report.html").decode()
    assert "None: every row was accepted." in clean

    # the history page beside it charts both nights
    history = archive.get_bytes("north", NIGHT2, "history.html").decode()
    assert "<svg" in history and f"../date={NIGHT1}/report.html" in history
    assert history.count('class="bar received"') == 2


def test_cli_report_writes_and_prints_the_path(synced, monkeypatch, capsys):
    from etl_project.cli.main import main

    for k, v in synced.env().items():
        monkeypatch.setenv(k, v)
    assert main(["report", "--district", "south"]) == 0  # latest synced night by default
    out = capsys.readouterr().out.strip().splitlines()
    path = Path(out[-1])
    assert (
        path
        == Path(synced.env()["ETL_PROJECT_HOME"]) / "reports" / "south" / f"date={NIGHT2}" / "report.html"
    )
    html = path.read_text()
    assert "South County Schools" in html and f"Night of {NIGHT2}" in html
    assert (path.parent / "rejects.csv").exists() and (path.parent / "history.html").exists()
    assert "rejected" in out[0] and "LMS applied" in out[0]
    assert synced.archive.open().get_bytes("south", NIGHT2, "report.html") == path.read_bytes()

    assert main(["report", "--district", "south", "--date", NIGHT1]) == 0
    assert capsys.readouterr().out.strip().endswith(f"date={NIGHT1}/report.html")
    assert main(["report", "--district", "nowhere"]) == 2
    assert "unknown district 'nowhere'" in capsys.readouterr().err
    assert main(["report", "--district", "../etc"]) == 2
    assert "invalid district id" in capsys.readouterr().err


def test_serve_reports_one_district_per_url(synced):
    with serve_reports(synced.env()) as server:
        assert server.base.startswith("http://127.0.0.1:")
        assert any(server.url("north") in line for line in server.banner)

        status, headers, body = http_get(server.url("north", f"date={NIGHT2}/report.html"))
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b"North Unified" in body and b"South County" not in body
        assert "script-src" not in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        status, headers, _ = http_get(server.url("north"))
        assert status == 302 and headers["Location"] == f"date={NIGHT2}/history.html"
        status, headers, body = http_get(server.url("north", f"date={NIGHT2}/rejects.csv"))
        assert status == 200 and body.startswith(b"file,line,column,code")
        status, _, body = http_get(server.url("south", f"date={NIGHT1}/history.html"))
        assert status == 200 and b"South County Schools" in body
        assert http_get(server.url("north", f"date={NIGHT2}/report.html"), "HEAD")[0] == 200

        north = server.url("north")
        refused = [
            north + f"date={NIGHT2}/../../south/date={NIGHT2}/report.html",
            north + f"../district=south/date={NIGHT2}/report.html",
            north + f"date={NIGHT2}/%2e%2e/%2e%2e/report.html",
            north + f"district=south/date={NIGHT2}/report.html",
            north + f"date={NIGHT2}/users.csv",  # raw roster files are never served
            north + f"date={NIGHT2}/_snapshot.json",
            north + "date=2030-01-01/report.html",
            server.base + f"/d/south/date={NIGHT2}/report.html",
            server.base + "/d/" + "A" * 32 + f"/date={NIGHT2}/report.html",
            server.base + "/../../../../etc/passwd",
            server.base + "/",
        ]
        for url in refused:
            status, _, body = http_get(url)
            assert status == 404, url
            assert b"South" not in body and b"North" not in body
        # a token that differs in one character opens nothing
        token = north.split("/d/")[1].strip("/")
        flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
        assert http_get(server.base + f"/d/{flipped}/date={NIGHT2}/report.html")[0] == 404
        assert http_get(server.url("north", f"date={NIGHT2}/report.html"), "POST")[0] == 405
        assert http_get(server.url("north", f"date={NIGHT2}/report.html"), "DELETE")[0] == 405
    log = "\n".join(server.banner)
    assert "reports-secret" not in log
