"""Settings read from the environment they are given, and the project's packaging metadata."""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path

from etl_project.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_lms_kind_follows_the_environment_the_settings_were_read_from(monkeypatch):
    monkeypatch.delenv("LMS_URL", raising=False)
    assert Settings.from_env({"LMS_URL": "postgresql://u:p@db:5432/lms"}).lms_kind == "postgres"
    assert Settings.from_env({"LMS_URL": "postgres://db/lms"}).lms_kind == "postgres"
    assert Settings.from_env({}).lms_kind == "sqlite"
    monkeypatch.setenv("LMS_URL", "postgresql://u:p@db:5432/lms")
    assert Settings.from_env({"ETL_PROJECT_HOME": "/srv/etl"}).lms_kind == "sqlite"


def test_pytest_is_a_test_dependency_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[\[=<>~! ]", r, maxsplit=1)[0].lower() for r in requirements}

    assert "pytest" not in names(project["dependencies"])
    assert "pytest" in names(project["optional-dependencies"]["test"])


def test_every_declared_pytest_marker_is_used():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    declared = {
        line.split(":", 1)[0].strip()
        for line in config["tool:pytest"]["markers"].splitlines()
        if line.strip()
    }
    tests = "\n".join(p.read_text() for p in (ROOT / "etl_project_tests").rglob("*.py"))
    assert declared and {m for m in declared if f"pytest.mark.{m}" not in tests} == set()
