"""What ``etl-project sync`` shows on a terminal: one line per step, and one sentence when it cannot run.

The console script runs as a subprocess against a local drop folder (generated) and a fresh home, so what is
asserted is exactly what an operator sees.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl_project.districts import District, LocalSource
from etl_project.generate import generate_drop
from etl_project.partitions import PARTITIONS_START
from etl_project.registry import Registry


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    dropbox = tmp_path / "dropbox"
    dropbox.mkdir()
    registry = Registry(f"sqlite:///{home / 'registry.sqlite'}")
    registry.add(District(id="lincoln", name="Lincoln", source=LocalSource(path=str(dropbox))))
    return home


def etl_project(home: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "LMS_"))}
    env.update(ETL_PROJECT_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
    cli = [sys.executable, "-m", "etl_project.cli.main", *argv]
    return subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300)


def test_tonights_drop_syncs_now_with_one_line_per_step(home, tmp_path):
    today = utc_today().isoformat()
    generate_drop(tmp_path / "dropbox" / today, 60, seed=3)
    done = etl_project(home, "sync", "--district", "lincoln", "--date", today, "--settle-seconds", "0.2")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Traceback" not in out + done.stderr
    assert "fetch_and_archive_drop: started" in out
    assert "fetch_and_archive_drop: waiting 0.2 s for the drop to settle" in out
    assert "fetch_and_archive_drop: succeeded in " in out
    assert "oneroster_tables: succeeded in " in out
    assert f"succeeded for {today}|lincoln" in out
    # one line per step start and end (plus waits), not Dagster's console log
    assert "STEP_START" not in out + done.stderr and "dagster - DEBUG" not in out + done.stderr


def _outside(which: str) -> str:
    """A night outside the partitions, computed when the test runs (a collection before midnight UTC would
    otherwise name tomorrow's night after it became today's)."""
    if which == "tomorrow":
        return (utc_today() + dt.timedelta(days=1)).isoformat()
    return (dt.date.fromisoformat(PARTITIONS_START) - dt.timedelta(days=1)).isoformat()


@pytest.mark.parametrize("which", ["tomorrow", "before_the_first_night"])
def test_a_night_outside_the_partitions_is_one_sentence(home, which):
    for _ in range(2):  # once more if midnight UTC passed during the sync (tomorrow became today)
        night, today = _outside(which), utc_today()
        done = etl_project(home, "sync", "--district", "lincoln", "--date", night)
        if utc_today() == today:
            break
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"no night {night}" in lines[0]
    assert f"from {PARTITIONS_START} to {today.isoformat()}" in lines[0]


def test_a_missing_drop_fails_at_once_with_the_newest_complete_one_named(home, tmp_path):
    today = utc_today()
    older = (today - dt.timedelta(days=3)).isoformat()
    generate_drop(tmp_path / "dropbox" / older, 30, seed=1)
    night = (today - dt.timedelta(days=1)).isoformat()
    done = etl_project(home, "sync", "--district", "lincoln", "--date", night, "--settle-seconds", "0")
    assert done.returncode == 1
    text = done.stdout + done.stderr
    assert "Traceback" not in text and "dagster._core" not in text
    assert "retry" not in text.lower()
    expected = f"no complete drop for {night} in {tmp_path / 'dropbox'}; newest complete drop is {older}"
    assert "fetch_and_archive_drop: FAILED after" in text and expected in text
    assert "Run " in text and "Dagster UI" in text
    assert len(text.strip().splitlines()) <= 12, text


def test_unknown_district_is_named_as_unknown(home):
    done = etl_project(home, "sync", "--district", "nosuch", "--date", utc_today().isoformat())
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "etl-project sync: unknown district 'nosuch': etl-project districts list shows the registered ones"
    )


def test_a_blocked_night_says_blocked_with_its_reason_not_a_dagster_error(home, tmp_path):
    night = (utc_today() - dt.timedelta(days=1)).isoformat()
    generate_drop(tmp_path / "dropbox" / night, 40, seed=2)
    users = tmp_path / "dropbox" / night / "users.csv"
    users.write_bytes(users.read_bytes().replace(b"e", "é".encode("cp1252"), 1))  # saved by Excel
    done = etl_project(home, "sync", "--district", "lincoln", "--date", night, "--settle-seconds", "0")
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "Traceback" not in out and "DagsterAssetCheckFailedError" not in out
    assert "oneroster_quality: FAILED after" in out and "blocked by a failed check" in out
    [state] = [line for line in out.splitlines() if line.strip().startswith("night:")]
    assert state.strip().startswith("night: BLOCKED: check file_complete failed for users.csv")
    assert state.endswith("the LMS is unchanged")
