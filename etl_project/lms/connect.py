"""``open_backend``: the LMS backend for ``LMS_URL``, ``postgresql://user:pass@host:port/db`` or
``sqlite:///path/to/lms.sqlite``."""

from __future__ import annotations

from etl_project.lms.backend import LmsBackend, LmsConfigError
from etl_project.lms.sqlite import SqliteBackend
from etl_project.urls import mask_url


def open_backend(url: str) -> LmsBackend:
    if url.startswith(("postgresql://", "postgres://")):
        from etl_project.lms.postgres import PostgresBackend  # psycopg: imported only for a PostgreSQL LMS

        return PostgresBackend(url)
    if url.startswith("sqlite:///"):
        return SqliteBackend(url)
    raise LmsConfigError(
        f"LMS_URL {mask_url(url)!r} is not supported: use postgresql://... or sqlite:///path/to/lms.sqlite"
    )
