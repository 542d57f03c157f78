"""The OneRoster CSV standard: read a drop safely, validate it, normalize it into typed DuckDB tables."""

from etl_project.oneroster.load import (
    TABLES,
    DropReport,
    FileProvenance,
    FileReport,
    check_drop,
    load_drop,
)
from etl_project.oneroster.read import ZipLimits

__all__ = ["TABLES", "DropReport", "FileProvenance", "FileReport", "ZipLimits", "check_drop", "load_drop"]
