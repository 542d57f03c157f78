"""The LMS database as a Dagster resource (``LMS_URL``; see etl_project/lms/connect.py)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from etl_project.lms.backend import LmsBackend, mask_url
from etl_project.lms.connect import open_backend


class LmsResource(ConfigurableResource):
    url: str = Field(
        description="postgresql://... (production) or sqlite:///path (embedded); may hold a secret"
    )
    _backend: LmsBackend | None = PrivateAttr(default=None)

    def backend(self) -> LmsBackend:
        if self._backend is None:
            self._backend = open_backend(self.url)
        return self._backend

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)
