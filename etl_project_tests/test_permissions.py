"""Private at rest: everything the project writes is the owner's only, whatever umask it was started with."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from etl_project.files import private_dir, private_file


def not_private(root: Path) -> list[str]:
    """Every file or folder under ``root`` (and itself) that group or others may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & 0o077:
            found.append(f"{oct(mode & 0o777)} {path.relative_to(root.parent)}")
    return found


def test_the_demo_under_umask_022_leaves_nothing_readable_by_others(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_PROJECT_", "DAGSTER_", "LMS_"))}
    env["ETL_PROJECT_HOME"] = str(home)  # the Dagster home defaults to $ETL_PROJECT_HOME/dagster
    previous = os.umask(0o022)  # the child inherits it, as from an operator's shell
    try:
        done = subprocess.run(
            [sys.executable, "-m", "etl_project.cli.main", "demo", "--students", "150"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        os.umask(previous)
    assert done.returncode == 0, done.stdout + done.stderr
    # what must be there: archive, warehouse, embedded LMS, registry, Dagster storage, reports secret
    for part in ("archive", "warehouse/demo.duckdb", "lms.sqlite", "registry.sqlite", "dagster", "scratch"):
        assert (home / part).exists(), part
    assert not_private(home) == []


def test_private_roots_and_files_are_owner_only_even_under_a_loose_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        folder = private_dir(tmp_path / "a" / "b" / "c")
        existing = tmp_path / "open"
        existing.mkdir(mode=0o755)
        private_dir(existing)
        db = private_file(tmp_path / "x" / "lms.sqlite")
    finally:
        os.umask(previous)
    assert folder.is_dir() and db.is_file()
    assert not_private(tmp_path / "a") == [] and not_private(tmp_path / "x") == []
    assert oct(existing.stat().st_mode & 0o777) == "0o755"  # an existing folder keeps the mode it was given
