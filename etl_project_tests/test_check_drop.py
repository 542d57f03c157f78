"""``etl-project check-drop`` as an operator runs it: a real subprocess, exit codes, JSON and plain words."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from etl_project_tests.oneroster_drops import CLEAN_11, write_drop


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "etl-project"), "check-drop", *args],
        capture_output=True,
        text=True,
    )


def test_clean_drop_exit_0_json_shape(tmp_path):
    result = check(str(write_drop(tmp_path / "d")), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["oneroster_version"] == "1.1" and data["drop_errors"] == []
    users = data["files"]["users.csv"]
    assert (users["rows"], users["accepted"], users["rejected"], users["errors"]) == (2, 2, 0, [])


def test_rejected_rows_exit_1_with_line_column_reason(tmp_path):
    users = CLEAN_11["users.csv"].replace("u2,,,true,s1,teacher", "u2,,,true,s1,Wizard")
    drop = write_drop(tmp_path / "d", {"users.csv": users})
    result = check(str(drop), "--json")
    assert result.returncode == 1
    error = json.loads(result.stdout)["files"]["users.csv"]["errors"][0]
    assert (
        error
        == {
            "line": 3,
            "column": "role",
            "code": "invalid_enum",
            "message": error["message"],
        }
        and '"Wizard"' in error["message"]
    )
    human = check(str(drop))
    assert human.returncode == 1
    assert "line 3, column role" in human.stdout and "Wizard" in human.stdout and "PROBLEMS" in human.stdout


def test_refused_drop_exit_2_and_no_traceback(tmp_path):
    drop = write_drop(tmp_path / "d")
    (drop / "manifest.csv").unlink()
    result = check(str(drop))
    assert result.returncode == 2 and "REFUSED" in result.stdout and "add manifest.csv" in result.stdout
    missing = check(str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr + result.stderr
    not_zip = tmp_path / "drop.zip"
    not_zip.write_bytes(b"PK\x03\x04 not really a zip")
    result = check(str(not_zip), "--json")
    assert result.returncode == 2 and json.loads(result.stdout)["drop_errors"]
    assert "Traceback" not in result.stderr
