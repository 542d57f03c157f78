"""``DistrictsResource``: the district registry as a Dagster resource."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from etl_project.districts.model import District, DistrictConfigError, connected
from etl_project.districts.toml_format import load_districts
from etl_project.registry import Registry
from etl_project.registry.nights import NightStates


class DistrictsResource(ConfigurableResource):
    """The district registry as a Dagster resource: assets look a district up by its partition key.

    ``url`` is the registry database (``sqlite:///...`` or ``postgresql://...``; see etl_project/registry).
    Credentials are decrypted only by ``credentials(id)``, with ``ETL_PROJECT_SECRET_KEY`` from the
    environment. ``path`` instead reads a TOML districts file read-only (tests, migration); its secrets stay
    environment-variable references, resolved by the source when it connects.
    """

    url: str | None = Field(
        default=None, description="registry database URL: sqlite:///path or postgresql://"
    )
    path: str | None = Field(
        default=None, description="read-only TOML districts file instead of the registry"
    )

    def _registry(self) -> Registry:
        return Registry(self.url)

    def all(self) -> dict[str, District]:
        if self.path:
            return load_districts(self.path)
        return self._registry().all()

    def active(self) -> dict[str, District]:
        """Enabled districts with a source: the ones the sensor polls, the schedule starts and the freshness
        checks expect drops from (a district created in the portal has no source until its admin sets one)."""
        return {did: d for did, d in self.all().items() if d.enabled and connected(d)}

    def get(self, district_id: str) -> District:
        if self.path:
            district = self.all().get(district_id)
            if district is None:
                raise DistrictConfigError(f"district {district_id!r} is not configured in {self.path}")
            return district
        return self._registry().get(district_id)

    def night_states(self) -> NightStates:
        """The nights' states, in the registry database (``url``; else ETL_PROJECT_REGISTRY_URL or the
        default registry under ETL_PROJECT_HOME, also when districts come from a TOML ``path``)."""
        return NightStates(self.url)

    def credentials(self, district_id: str):
        """``SftpCredentials`` / ``RestCredentials`` decrypted from the registry, or None (local folder, or
        a TOML file whose secrets the source resolves from the environment)."""
        if self.path:
            return None
        return self._registry().credentials(district_id)
