"""The code's structure, read statically: Dagster's public API only."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "etl_project"
TESTS = Path(__file__).resolve().parent


PRIVATE_DAGSTER = re.compile(r"^\s*(from|import)\s+dagster(_\w+)?\._", re.MULTILINE)


def test_only_dagsters_public_api_is_imported():
    """No ``dagster._...`` (or ``dagster_aws._...``, ...) import in the package or its tests: private modules
    change without notice between Dagster releases."""
    private = [
        f"{path.relative_to(PACKAGE.parent)}:{source[: m.start()].count(chr(10)) + 1}"
        for root in (PACKAGE, TESTS)
        for path in sorted(root.rglob("*.py"))
        for source in [path.read_text()]
        for m in PRIVATE_DAGSTER.finditer(source)
    ]
    assert not private, "private Dagster imports: " + ", ".join(private)
