"""Safe zip opening and exact physical line numbers."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import duckdb

from etl_project.oneroster import ZipLimits, check_drop, load_drop
from etl_project.warehouse import DUCKDB_CONFIG
from etl_project_tests.oneroster_drops import write_drop

ORGS_HEADER = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId"


def zip_drop(tmp_path: Path, extra: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    drop = write_drop(tmp_path / "d")
    archive = tmp_path / "drop.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in drop.iterdir():
            zf.write(path, path.name)
        for info, data in extra:
            zf.writestr(info, data)
    return archive


def test_zip_with_dot_dot_entry_refused_and_nothing_written_outside(tmp_path):
    archive = zip_drop(tmp_path, [("../../evil.csv", b"x")])
    staging = tmp_path / "staging"
    conn = duckdb.connect(config=dict(DUCKDB_CONFIG))
    report = load_drop(conn, archive, district="lincoln", date="2026-11-28", staging_dir=staging)
    assert report.refused and report.exit_code() == 2 and "unsafe path" in report.drop_errors[0]
    assert not list(tmp_path.rglob("evil.csv"))
    assert list(staging.iterdir()) == []  # the private staging folder is removed afterwards


def test_zip_with_absolute_path_refused(tmp_path):
    report = check_drop(zip_drop(tmp_path, [("/tmp/abs_evil.csv", b"x")]))
    assert report.refused and "unsafe path" in report.drop_errors[0]
    assert not Path("/tmp/abs_evil.csv").exists()


def test_zip_with_symlink_refused(tmp_path):
    info = zipfile.ZipInfo("link.csv")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    report = check_drop(zip_drop(tmp_path, [(info, b"/etc/passwd")]))
    assert report.refused and "symbolic link" in report.drop_errors[0]


def test_zip_bomb_refused_by_ratio_and_by_total(tmp_path):
    archive = zip_drop(tmp_path, [("bomb.csv", b"\0" * (20 << 20))])
    report = check_drop(archive)
    assert report.refused and "compression ratio" in report.drop_errors[0]
    report = check_drop(archive, zip_limits=ZipLimits(max_total_bytes=1 << 20, max_ratio=10**9))
    assert report.refused
    assert "more than" in report.drop_errors[0] or "inflates to" in report.drop_errors[0]


def test_corrupt_zip_refused(tmp_path):
    bad = tmp_path / "bad.zip"
    data = zip_drop(tmp_path, []).read_bytes()
    bad.write_bytes(data[:40] + b"garbage" * 10 + data[-200:])
    report = check_drop(bad)
    assert report.refused and report.drop_errors


def test_line_numbers_exact_on_a_large_parallel_read(tmp_path):
    """300k rows (DuckDB reads in parallel): quoted newlines and short rows shift the physical lines."""
    lines = [ORGS_HEADER]
    expected_rejects = []
    physical = 1
    for i in range(300_000):
        physical += 1
        if i % 50_000 == 7:
            lines.append(f"bad{i},,,short row")  # wrong number of fields
            expected_rejects.append(physical)
        elif i % 20_000 == 3:
            lines.append(f'o{i},,,"two\nline name",school,{physical},')
            physical += 1
        else:
            lines.append(f"o{i},,,Org {i},school,{physical},")
    orgs = "\n".join(lines) + "\n"
    drop = write_drop(tmp_path / "d", {"orgs.csv": orgs})
    conn = duckdb.connect(str(tmp_path / "w.duckdb"), config=dict(DUCKDB_CONFIG))
    report = load_drop(conn, drop, district="lincoln", date="2026-11-28")
    f = report.files["orgs.csv"]
    assert f.rows == 300_000 and f.rejected == len(expected_rejects)
    wrong = conn.execute("SELECT count(*) FROM oneroster.orgs WHERE _line <> identifier::BIGINT").fetchone()[
        0
    ]
    assert wrong == 0
    assert conn.execute("SELECT count(*) FROM oneroster.orgs").fetchone()[0] == 300_000 - len(
        expected_rejects
    )
    got = [
        r[0]
        for r in conn.execute(
            "SELECT line FROM oneroster.rejects WHERE file = 'orgs.csv' ORDER BY line"
        ).fetchall()
    ]
    assert got == expected_rejects


def test_line_numbers_with_blank_lines_and_crlf(tmp_path):
    rows = [
        ORGS_HEADER,
        "d1,,,District,district,2,",
        "",
        "s1,,,School,school,4,d1",
        "bad,,,x",
        "",
        "s2,,,School 2,school,7,d1",
        "s3,,,School 3,wrongtype,8,d1",
    ]
    drop = write_drop(tmp_path / "d", {"orgs.csv": "\r\n".join(rows)})
    conn = duckdb.connect(config=dict(DUCKDB_CONFIG))
    report = load_drop(conn, drop, district="lincoln", date="2026-11-28")
    assert (
        conn.execute("SELECT count(*) FROM oneroster.orgs WHERE _line <> identifier::BIGINT").fetchone()[0]
        == 0
    )
    assert [(e["line"], e["code"]) for e in report.files["orgs.csv"].errors] == [
        (5, "wrong_field_count"),
        (8, "invalid_enum"),
    ]
