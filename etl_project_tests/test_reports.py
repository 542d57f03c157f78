"""District sync reports from a real pipeline run: contents, hints, escaping, history chart, CLI."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser

import pytest

from etl_project_tests.reports_helpers import NIGHT1, NIGHT2, sync_districts


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


@pytest.fixture
def synced(tmp_path, instance):
    return sync_districts(tmp_path, instance, {"north": "North Unified", "south": "South County Schools"})


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
