"""Hostile and broken CSV input: size limits, every line accounted for, what counts as cut off.

The limits (docs/validation-limits.md) are far above any real export, so small hostile files are enough:
a 2 MiB value against the 1 MiB value limit, a 5 MiB line against the 4 MiB line limit. One test runs
``etl-project check-drop`` on a drop with a 40 MiB value and a 10,000-column header and checks the child's
peak memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

from etl_project.checks.rules import evaluate_night
from etl_project.generate import generate_drop
from etl_project.oneroster import check_drop, load_drop
from etl_project.warehouse import DUCKDB_CONFIG
from etl_project_tests.oneroster_drops import CLEAN_11, write_drop

MiB = 1 << 20
USERS = CLEAN_11["users.csv"]
CLASSES = CLEAN_11["classes.csv"]
ORGS_HEADER = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId"
CLASS_ROW = "k{n},,,Algebra I - {n},09,c1,ALG1-{n},scheduled,101,s1,t1,Math,02052,1"


def teacher(n: int, family: str) -> str:
    return f"u{n},,,true,s1,teacher,t{n},,Tea,{family},,,t{n}@x.org,,,,,\n"


def test_value_over_the_field_limit_is_a_row_rejection_naming_column_size_and_limit(tmp_path):
    users = USERS + teacher(3, "X" * (2 * MiB)) + teacher(4, "Day")
    report = check_drop(write_drop(tmp_path / "d", {"users.csv": users}))
    f = report.files["users.csv"]
    assert (f.status, f.rows, f.accepted, f.rejected) == ("loaded", 4, 3, 1)
    [error] = f.errors
    assert (error["line"], error["column"], error["code"]) == (4, "familyName", "field_too_long")
    assert f"{2 * MiB:,} bytes" in error["message"] and "1,048,576 bytes (1 MiB)" in error["message"]
    assert report.exit_code() == 1


def test_line_over_the_line_limit_rejected_alone_and_later_lines_keep_their_numbers(tmp_path):
    """The over-long line never reaches DuckDB; quoted newlines after it still get exact line numbers."""
    rows = [
        ORGS_HEADER,
        "d1,,,District,district,2,",
        "s1,,,School,school,3,d1",
        f"s9,,,{'N' * (5 * MiB)},school,4,d1",
        's2,,,"Two\nLines",school,5,d1',
        "s3,,,School 3,school,7,d1",
    ]
    drop = write_drop(tmp_path / "d", {"orgs.csv": "\n".join(rows)})
    conn = duckdb.connect(config=dict(DUCKDB_CONFIG))
    report = load_drop(conn, drop, district="lincoln", date="2026-11-28")
    f = report.files["orgs.csv"]
    assert (f.status, f.rows, f.accepted, f.rejected) == ("loaded", 5, 4, 1)
    [error] = f.errors
    assert (error["line"], error["column"], error["code"]) == (4, "name", "line_too_long")
    assert f"{5 * MiB + 17:,} bytes" in error["message"] and "4,194,304 bytes (4 MiB)" in error["message"]
    assert f"{5 * MiB:,} bytes" in error["message"]  # the value itself, against the value limit
    lines = conn.execute("SELECT _line, identifier FROM oneroster.orgs ORDER BY _line").fetchall()
    assert [(line, int(identifier)) for line, identifier in lines] == [(2, 2), (3, 3), (5, 5), (7, 7)]
    assert conn.execute("SELECT line FROM oneroster.rejects WHERE file = 'orgs.csv'").fetchall() == [(4,)]


def test_lines_that_cannot_be_reconciled_refuse_the_file_never_drop_a_row(tmp_path):
    """A rejected record spanning 3,000 lines: the parser keeps only its start, so the count cannot close."""
    multi = 'u3,,,true,s1,teacher,"' + "line\n" * 3000 + '"\n'
    report = check_drop(write_drop(tmp_path / "d", {"users.csv": USERS + multi + teacher(4, "Day")}))
    f = report.files["users.csv"]
    assert f.status == "rejected" and f.errors[0]["code"] == "rows_unaccounted"
    assert f.error.startswith("users.csv: ")
    assert "the whole file was not loaded so that no row is lost" in f.error
    assert report.exit_code() == 1


def test_wide_header_rejects_the_file_before_it_is_parsed(tmp_path):
    header, *rows = USERS.splitlines()
    wide = header + "".join(f",x{i}" for i in range(300)) + "\n" + "\n".join(rows) + "\n"
    report = check_drop(write_drop(tmp_path / "d", {"users.csv": wide}))
    f = report.files["users.csv"]
    assert (f.status, f.errors[0]["code"]) == ("rejected", "too_many_columns")
    assert f.error == (
        "users.csv: the header has 318 columns, over the limit of 256 (OneRoster's widest file has about 30 "
        "plus metadata.* extensions); the whole file was not loaded: remove the extra columns from the export"
    )


def test_header_longer_than_its_limit_rejects_the_file(tmp_path):
    header, *rows = USERS.splitlines()
    long = header + ",metadata." + "n" * MiB + "\n" + "\n".join(rows) + "\n"
    f = check_drop(write_drop(tmp_path / "d", {"users.csv": long})).files["users.csv"]
    assert (f.status, f.errors[0]["code"]) == ("rejected", "header_too_long")
    assert "1,048,576 bytes (1 MiB)" in f.error


def night_of(tmp_path: Path, classes: str) -> tuple[dict, dict]:
    """The classes.csv report and its file_complete finding for one night."""
    conn = duckdb.connect(config=dict(DUCKDB_CONFIG))
    drop = write_drop(tmp_path / "d", {"classes.csv": classes})
    report = load_drop(conn, drop, district="lincoln", date="2026-11-28")
    [complete] = [
        f for f in evaluate_night(conn, "2026-11-28") if f.table == "classes" and f.check == "file_complete"
    ]
    return report.files["classes.csv"].to_json(), {"passed": complete.passed, "text": complete.description}


def test_an_extra_field_on_the_last_line_is_an_ordinary_row_rejection(tmp_path):
    extra = CLASS_ROW.format(n=2) + ",extra\n"
    for classes in (CLASSES + extra, CLASSES + extra + CLASS_ROW.format(n=3) + "\n"):
        report, complete = night_of(tmp_path, classes)
        assert [(e["line"], e["code"]) for e in report["errors"]] == [(3, "wrong_field_count")]
        assert complete["passed"], complete["text"]


def test_a_short_or_unterminated_last_line_is_cut_off_and_blocks(tmp_path):
    row = CLASS_ROW.format(n=2)
    for last in (row[:30] + "\n", row[:30], row + ",extra"):
        report, complete = night_of(tmp_path, CLASSES + last)
        assert [(e["line"], e["code"]) for e in report["errors"]] == [(3, "cut_off")]
        assert not complete["passed"]
        assert complete["text"].startswith("the last line (3) of classes.csv is cut off")
    report, complete = night_of(tmp_path, CLASSES + row)  # only the final line break missing: accepted
    assert report["errors"] == [] and complete["passed"]


def test_generated_drop_with_errors_is_not_cut_off(tmp_path):
    """--with-errors ends classes.csv with an unquoted grade list (one field too many)."""
    generate_drop(tmp_path / "g", 60, with_errors=30)
    conn = duckdb.connect(config=dict(DUCKDB_CONFIG))
    report = load_drop(conn, tmp_path / "g", district="lincoln", date="2026-11-28")
    classes = report.files["classes.csv"]
    codes = {e["code"] for e in classes.errors}
    assert codes == {"wrong_field_count"} and classes.rejected == 5
    last = (tmp_path / "g" / "classes.csv").read_text().count("\n")
    assert max(e["line"] for e in classes.errors) == last
    [complete] = [
        f for f in evaluate_night(conn, "2026-11-28") if f.table == "classes" and f.check == "file_complete"
    ]
    assert complete.passed, complete.description


def test_bom_crlf_quoted_newlines_and_no_final_newline_keep_exact_lines(tmp_path):
    rows = [
        ORGS_HEADER,
        "d1,,,District,district,2,",
        "",
        's1,,,"School, ""One""\r\nAnnex",school,4,d1',
        "s2,,,School 2,school,6,d1",
    ]
    drop = write_drop(tmp_path / "d", {"orgs.csv": b"\xef\xbb\xbf" + "\r\n".join(rows).encode()})
    conn = duckdb.connect(config=dict(DUCKDB_CONFIG))
    report = load_drop(conn, drop, district="lincoln", date="2026-11-28")
    f = report.files["orgs.csv"]
    assert (f.status, f.rows, f.accepted, f.rejected) == ("loaded", 3, 3, 0)
    lines = conn.execute("SELECT _line, identifier, name FROM oneroster.orgs ORDER BY _line").fetchall()
    assert [(a, int(b)) for a, b, _ in lines] == [(2, 2), (4, 4), (6, 6)]
    assert lines[1][2] == 'School, "One"\r\nAnnex'
    assert "orgs.csv: 1 blank line(s) skipped (line 3)" in report.warnings


def test_check_drop_on_a_40_mib_value_a_10000_column_header_and_a_linked_file(tmp_path):
    """The issue's drop: one clear message per problem, exit 2, the child's peak memory under 2 GB."""
    header = CLASSES.splitlines()[0]
    wide = header + "".join(f",metadata.x{i}" for i in range(10_000)) + "\n"
    wide += "".join(CLASS_ROW.format(n=n) + "\n" for n in range(2, 2100))
    users = USERS + teacher(3, "X" * (40 * MiB))
    drop = write_drop(tmp_path / "d", {"users.csv": users, "classes.csv": wide})
    secret = tmp_path / "shadow"
    secret.write_text("root:CANARY-7d1f:19000:0:99999:7:::\n")
    (drop / "orgs.csv").unlink()
    (drop / "orgs.csv").symlink_to(secret)
    exe = str(Path(sys.executable).parent / "etl-project")
    wrapper = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(r.returncode)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, exe, "check-drop", str(drop), "--json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2, result.stderr
    peak_kib = int(result.stderr.strip().splitlines()[-1])
    assert peak_kib < 2 * 1024 * 1024, f"check-drop peaked at {peak_kib // 1024} MiB"
    assert "CANARY" not in result.stdout + result.stderr
    report = json.loads(result.stdout)
    [refusal] = report["drop_errors"]
    assert refusal.startswith("SECURITY:") and "orgs.csv is a symbolic link" in refusal
    files = report["files"]
    assert files["orgs.csv"]["status"] == "rejected" and "symbolic link" in files["orgs.csv"]["error"]
    [users_error] = files["users.csv"]["errors"]
    where = (users_error["line"], users_error["column"], users_error["code"])
    assert where == (4, "familyName", "line_too_long")
    assert f"{40 * MiB:,} bytes" in users_error["message"]
    assert files["users.csv"]["accepted"] == 2
    classes = files["classes.csv"]
    assert classes["status"] == "rejected" and len(classes["errors"]) == 1
    assert classes["error"].startswith("classes.csv: the header has 10,014 columns, over the limit of 256")
