"""Hints for every rejection code, escaping of hostile values, and the 30-night chart (no pipeline needed)."""

from __future__ import annotations

import re
from pathlib import Path

from etl_project.oneroster.load import load_drop
from etl_project.reports import build_history, build_night_report, hint_for, render_history, render_night
from etl_project.reports.build import History, NightPoint
from etl_project.reports.hints import CODES, UNKNOWN
from etl_project.warehouse import WarehouseResource

ONEROSTER = Path(__file__).resolve().parents[1] / "etl_project" / "oneroster"


def test_every_code_the_loader_writes_has_a_reason_and_a_fix():
    source = "\n".join(p.read_text() for p in ONEROSTER.glob("*.py"))
    written = set(re.findall(r"'([a-z]+(?:_[a-z0-9]+)+)'", source)) & {
        c for c in re.findall(r"[\"']([a-z]+_[a-z_]+)[\"']", source)
    }
    codes = {c for c in written if c in CODES} | {
        "manifest_mismatch", "missing_column", "not_utf8", "empty_file", "unknown_header", "duplicate_header",
        "unreadable_csv", "required_missing", "invalid_enum", "bad_date", "bad_datetime", "bad_boolean",
        "bad_year", "duplicate_sourced_id", "unknown_reference", "parent_rejected", "wrong_field_count",
        "line_too_long", "csv_syntax", "field_too_long", "cut_off", "rows_unaccounted", "header_too_long",
        "too_many_columns",
    }  # fmt: skip
    for code in codes:
        assert code in source, code  # the loader really writes it
        hint = hint_for(code)
        assert hint is not UNKNOWN and len(hint.reason) > 20 and len(hint.fix) > 20, code
    assert len({hint_for(c).fix for c in codes}) == len(codes)  # each code its own advice


def test_recognised_export_accidents():
    assert "PowerSchool" in hint_for("unknown_header", None, "columns such as 'Students.First_Name' carry a "
                                     "table prefix; ...").reason  # fmt: skip
    assert "Windows-1252" in hint_for("not_utf8", None, "bytes ...; saved by Excel in Windows-1252").reason
    assert "day/month/year" in hint_for("bad_date", "beginDate", "x", "17/08/2026").reason
    assert "without quotes" in hint_for("wrong_field_count", None, "", "cls-1,active,,T,09,10,crs-1").reason
    assert "leading zero" in hint_for("", "grades", None, "9").reason
    assert hint_for("bad_date", "beginDate", "x", "2026-13-45").reason == CODES["bad_date"].reason


def _drop(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    manifest = ["propertyName,value", "manifest.version,1.0", "oneroster.version,1.1"]
    for name in ("academicSessions", "classes", "courses", "demographics", "enrollments", "orgs", "users"):
        manifest.append(f"file.{name},{'bulk' if name + '.csv' in files else 'absent'}")
    (path / "manifest.csv").write_text("\n".join(manifest) + "\n")
    for name, text in files.items():
        (path / name).write_bytes(text.encode("cp1252") if name == "classes.csv" else text.encode())
    return path


def test_hostile_values_are_escaped_and_file_problems_come_first(tmp_path):
    users = (
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,"
        "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n"
        "u1,active,2026-09-01T00:00:00Z,true,sch-1,student,u1,,Ann,Lee,,,,,,,9,\n"
        '<script>alert(1)</script>,active,2026-09-01T00:00:00Z,true,sch-1,"<img src=x onerror=alert(2)>",'
        "x,,<script>,Hacker,,,,,,,9,\n"
    )
    orgs = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\nsch-1,,,School,school,,\n"
    classes = "Classes.SourcedId,Classes.Title,Classes.School\nc1,Café,sch-1\n"  # PowerSchool prefix, cp1252
    drop = _drop(tmp_path / "drop", {"users.csv": users, "orgs.csv": orgs, "classes.csv": classes})
    warehouse = WarehouseResource(root=str(tmp_path / "wh"))
    with warehouse.connect("t1") as conn:
        load_drop(conn, drop, district="t1", date="2026-09-15")
        report = build_night_report(conn, None, None, "t1", "2026-09-15", district_name="T <b>1</b>")
    html = render_night(report)
    assert "<script>" not in html and "<img" not in html and "T <b>1</b>" not in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # the rejected value, shown escaped
    assert report.file_problems and report.rejects[0].line is None  # whole-file problems first
    assert report.rejects[0].file == "classes.csv"
    assert html.index('id="file-problems"') < html.index('id="rejects"')
    assert "not one of the words OneRoster allows" in html
    assert any("instead of 09" in n for n in report.notes)  # grade 9 accepted, but flagged


def test_history_chart_draws_the_last_30_of_35_nights(tmp_path):
    nights = [
        NightPoint(f"2026-10-{d:02d}", None if d % 7 == 0 else 1000 + d, d % 3, 10 * d,
                   "held" if d == 20 else "applied")
        for d in range(1, 36) if d <= 31
    ]  # fmt: skip
    svg_page = render_history(History("t1", "T1", "2026-10-31", nights[-30:]))
    bars = re.findall(
        r'<rect class="bar received" x="([\d.]+)" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg_page
    )
    gaps = svg_page.count('class="gap"')
    assert len(bars) + gaps // 3 == 30 and gaps == 3 * 4  # 4 nights without a drop, gap in all three panels
    xs = [float(x) for x, _, _ in bars]
    assert xs == sorted(xs)
    heights = [float(h) for _, _, h in bars]
    assert max(heights) == 150.0 and min(heights) > 140  # one scale per panel: 1002..1031 of 1031
    assert 'fill="#e0a100"' in svg_page  # the held night is amber
    assert "<script" not in svg_page

    # from a warehouse: 30 calendar nights ending at the report's night, missing nights are gaps
    warehouse = WarehouseResource(root=str(tmp_path / "wh"))
    orgs = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\nsch-1,,,School,school,,\n"
    with warehouse.connect("t1") as conn:
        for day in ("2026-09-01", "2026-09-20", "2026-10-05"):
            load_drop(conn, _drop(tmp_path / day, {"orgs.csv": orgs}), district="t1", date=day)
        history = build_history(conn, None, "t1", "2026-10-05")
    assert len(history.nights) == 30 and history.nights[0].date == "2026-09-06"
    assert [p.date for p in history.nights if p.received is not None] == ["2026-09-20", "2026-10-05"]
