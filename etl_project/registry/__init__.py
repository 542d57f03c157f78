"""The district registry: districts and their encrypted credentials in SQLite or PostgreSQL (see store.py)."""

from etl_project.registry.crypto import (
    PREVIOUS_KEYS_ENV,
    SECRET_KEY_ENV,
    CredentialDecryptError,
    MissingSecretKey,
    SecretBox,
    SecretKeyError,
    new_key,
)
from etl_project.registry.db import RegistryDatabaseError, mask_url
from etl_project.registry.store import (
    REGISTRY_URL_ENV,
    DistrictExists,
    DistrictNotFound,
    Registry,
    RegistryEntry,
    registry_url,
    with_pinned_key,
)

__all__ = [
    "PREVIOUS_KEYS_ENV",
    "REGISTRY_URL_ENV",
    "SECRET_KEY_ENV",
    "CredentialDecryptError",
    "DistrictExists",
    "DistrictNotFound",
    "MissingSecretKey",
    "Registry",
    "RegistryDatabaseError",
    "RegistryEntry",
    "SecretBox",
    "SecretKeyError",
    "mask_url",
    "new_key",
    "registry_url",
    "with_pinned_key",
]
