"""Resources for the code location, chosen from the environment (see etl_project/settings.py).

Secrets are only ever handed to Dagster as ``EnvVar`` (resolved at launch, never printed); paths and
switches are plain settings. With nothing set, everything is embedded: a local archive folder, DuckDB files
and a SQLite LMS under ``.etl_project/``.
"""

from __future__ import annotations

import os

from dagster import EnvVar

from etl_project.alerts.resource import build_alerts_resource
from etl_project.archive import Archive, ArchiveResource, open_archive
from etl_project.districts.resource import DistrictsResource
from etl_project.files import private_umask
from etl_project.lms.resource import LmsResource
from etl_project.settings import Settings
from etl_project.warehouse import WarehouseResource


def _env_secret(name: str) -> EnvVar | None:
    return EnvVar(name) if os.environ.get(name) else None


def _districts(settings: Settings) -> DistrictsResource:
    """The encrypted registry; or, when ETL_PROJECT_DISTRICTS names one, a read-only districts file."""
    if settings.districts_file_is_set:
        return DistrictsResource(path=settings.districts_file)
    # a PostgreSQL URL may hold a password: hand it over as EnvVar, resolved at launch
    if settings.registry_url_is_set:
        return DistrictsResource(url=EnvVar("ETL_PROJECT_REGISTRY_URL"))
    return DistrictsResource(url=settings.registry_default_url)


def build_resources(settings: Settings | None = None) -> dict[str, object]:
    """The code location's resources. Loading the code location is also where every Dagster process that runs
    our code starts (code server, run worker, step processes): it makes their files owner-only too."""
    private_umask()
    settings = settings or Settings.from_env()
    return {
        "districts": _districts(settings),
        "archive": ArchiveResource(
            url=settings.archive_url,
            s3_endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            sse=settings.s3_sse,
            kms_key_id=settings.s3_kms_key_id,
            aws_access_key_id=_env_secret("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=_env_secret("AWS_SECRET_ACCESS_KEY"),
        ),
        "warehouse": WarehouseResource(root=settings.warehouse_dir),
        # LMS_URL may hold a password: handed over as EnvVar, resolved at launch, never printed.
        "lms": LmsResource(url=_env_secret("LMS_URL") or settings.lms_default_url),
        # webhook URL and SMTP password are EnvVar too (etl_project/alerts/resource.py)
        "alerts": build_alerts_resource(home=settings.home),
    }


def open_settings_archive(settings: Settings) -> Archive:
    """The archive outside a Dagster run (CLI, portal): S3 credentials come from the AWS default chain (the
    environment), never through an ``EnvVar`` that only a run can resolve."""
    return open_archive(
        settings.archive_url,
        s3_endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        sse=settings.s3_sse,
        kms_key_id=settings.s3_kms_key_id,
    )
