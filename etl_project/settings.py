"""Where things live, read from the environment, with embedded defaults that need no server.

Nothing here is secret: credentials are referenced by environment-variable *name* and resolved at run time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _path(value: str) -> str:
    return str(Path(value).expanduser().resolve())


@dataclass(frozen=True)
class Settings:
    home: str
    districts_file: str
    districts_file_is_set: bool
    archive_url: str
    s3_endpoint_url: str | None
    s3_region: str
    s3_sse: str
    s3_kms_key_id: str | None
    warehouse_dir: str
    lms_default_url: str
    lms_kind: str  # postgres | sqlite: which LMS backend LMS_URL selects (for asset kinds)
    dagster_home: str
    registry_url_is_set: bool
    registry_default_url: str
    scratch_dir: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = _path(env.get("ETL_PROJECT_HOME", ".etl_project"))
        archive = env.get("ETL_PROJECT_ARCHIVE", os.path.join(home, "archive"))
        if not archive.startswith("s3://"):
            archive = _path(archive)
        return cls(
            home=home,
            districts_file=_path(env.get("ETL_PROJECT_DISTRICTS", os.path.join(home, "districts.toml"))),
            districts_file_is_set=bool(env.get("ETL_PROJECT_DISTRICTS")),
            archive_url=archive,
            s3_endpoint_url=env.get("ETL_PROJECT_S3_ENDPOINT") or None,
            s3_region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            s3_sse=env.get("ETL_PROJECT_S3_SSE", "AES256"),
            s3_kms_key_id=env.get("ETL_PROJECT_S3_KMS_KEY_ID") or None,
            warehouse_dir=_path(env.get("ETL_PROJECT_WAREHOUSE", os.path.join(home, "warehouse"))),
            lms_default_url="sqlite:///" + os.path.join(home, "lms.sqlite"),
            lms_kind="postgres"
            if env.get("LMS_URL", "").startswith(("postgresql://", "postgres://"))
            else "sqlite",
            dagster_home=_path(env.get("DAGSTER_HOME", os.path.join(home, "dagster"))),
            registry_url_is_set=bool(env.get("ETL_PROJECT_REGISTRY_URL")),
            registry_default_url="sqlite:///" + os.path.join(home, "registry.sqlite"),
            scratch_dir=_path(env.get("ETL_PROJECT_SCRATCH", os.path.join(home, "scratch"))),
        )

    def lms_url(self, env: dict[str, str] | None = None) -> str:
        """``LMS_URL`` (may hold a password: never print it, see etl_project.lms.mask_url) or the embedded
        SQLite default. Read at call time so the secret is not kept on this object."""
        env = dict(os.environ if env is None else env)
        return env.get("LMS_URL") or self.lms_default_url
