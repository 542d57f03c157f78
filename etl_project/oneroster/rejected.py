"""What counts as rejected, defined once for every surface (report, history, checks, asset metadata, CLI).

- A **rejected row** is a data row of an accepted file that was left out (``status`` loaded, counted in
  ``rejected``).
- A **rejected file** is a whole file refused (``status`` rejected: not UTF-8, no OneRoster header, ...). Its
  rows are not rejected rows: the file is reported once, with its row count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar


class FileCounts(Protocol):
    file: str
    status: str
    rows: int
    rejected: int


F = TypeVar("F", bound=FileCounts)


def rejected_rows(files: Iterable[FileCounts]) -> int:
    """Rows left out of accepted files (whole rejected files excluded)."""
    return sum(f.rejected for f in files if f.status != "rejected")


def rejected_files(files: Iterable[F]) -> list[F]:
    """Files refused as a whole."""
    return [f for f in files if f.status == "rejected"]


def describe_rejected(files: Iterable[FileCounts]) -> str:
    """'N rejected row(s)', plus 'M rejected file(s) (a.csv: R rows, ...)' when files were refused."""
    files = list(files)
    text = f"{rejected_rows(files):,} rejected row(s)"
    refused = rejected_files(files)
    if refused:
        text += f", {len(refused)} rejected file(s) (" + ", ".join(
            f"{f.file}: {f.rows:,} rows" for f in refused
        )
        text += ")"
    return text
