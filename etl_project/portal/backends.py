"""What the dashboard and Sync now pages read and start: the warehouse, the archive, the LMS, and Dagster
(the instance on DAGSTER_HOME for run facts, the webserver's GraphQL API to submit runs).

``dagster_url`` is the webserver's address (``http://127.0.0.1:3000``); None when Sync now is off on this
portal. Opened once, on first use."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlsplit

from etl_project.archive.base import Archive
from etl_project.lms.backend import LmsBackend
from etl_project.lms.connect import open_backend
from etl_project.settings import Settings
from etl_project.warehouse import WarehouseResource


class SyncUnavailable(Exception):
    """Sync now is off on this portal, or its Dagster webserver is not ready yet (one sentence)."""


@dataclass
class Backends:
    settings: Settings
    dagster_url: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)  # set once the webserver answers

    @cached_property
    def warehouse(self) -> WarehouseResource:
        return WarehouseResource(root=self.settings.warehouse_dir)

    @cached_property
    def archive(self) -> Archive:
        from etl_project.resources import open_settings_archive

        return open_settings_archive(self.settings)

    @cached_property
    def lms(self) -> LmsBackend:
        return open_backend(self.settings.lms_url())

    @cached_property
    def instance(self):
        from dagster import DagsterInstance

        from etl_project.instance import ensure_dagster_home

        ensure_dagster_home(self.settings)
        return DagsterInstance.get()

    def client(self):
        """The GraphQL client of the webserver; SyncUnavailable when there is none or it is not up yet."""
        from dagster_graphql import DagsterGraphQLClient

        if not self.dagster_url:
            raise SyncUnavailable("Sync now is off on this portal: ask your operator.")
        if not self.ready.is_set():
            raise SyncUnavailable("The sync service is still starting: try again in a minute.")
        parts = urlsplit(self.dagster_url)
        return DagsterGraphQLClient(
            parts.hostname or "127.0.0.1", port_number=parts.port, use_https=parts.scheme == "https"
        )
