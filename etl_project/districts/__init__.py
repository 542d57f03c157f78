"""Districts: the model (model.py), its TOML file format (toml_format.py) and the Dagster resource that reads
them from the registry (``etl_project.districts.resource.DistrictsResource``, not re-exported here: it
depends on the registry, which depends on the model)."""

from etl_project.districts.model import (
    REST_AUTH,
    REST_OAUTH1_SIGNATURE_METHODS,
    REST_VERSIONS,
    District,
    DistrictConfigError,
    LocalSource,
    MissingSecret,
    RestSource,
    SftpSource,
    Source,
    UnconnectedSource,
    connected,
    resolve_secret,
)
from etl_project.districts.toml_format import district_from_mapping, load_districts, to_toml

__all__ = [
    "REST_AUTH",
    "REST_OAUTH1_SIGNATURE_METHODS",
    "REST_VERSIONS",
    "District",
    "DistrictConfigError",
    "LocalSource",
    "MissingSecret",
    "RestSource",
    "SftpSource",
    "Source",
    "UnconnectedSource",
    "connected",
    "district_from_mapping",
    "load_districts",
    "resolve_secret",
    "to_toml",
]
