"""Encryption at rest for district credentials: Fernet tokens under a key from the environment.

``ETL_PROJECT_SECRET_KEY`` holds the current key (``etl-project districts new-key`` makes one). During a key
rotation, ``ETL_PROJECT_SECRET_KEY_PREVIOUS`` holds the old key(s), comma-separated: tokens made with them are
still read, ``rotate`` re-encrypts a token under the current key. Key values never appear in messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SECRET_KEY_ENV = "ETL_PROJECT_SECRET_KEY"
PREVIOUS_KEYS_ENV = "ETL_PROJECT_SECRET_KEY_PREVIOUS"


class SecretKeyError(Exception):
    """The secret key is missing, malformed, or does not open a stored credential."""


class MissingSecretKey(SecretKeyError):
    pass


class CredentialDecryptError(SecretKeyError):
    pass


def new_key() -> str:
    """A fresh random key (32 bytes, url-safe base64), as ``ETL_PROJECT_SECRET_KEY`` expects."""
    return Fernet.generate_key().decode()


def _fernet(value: str, where: str) -> Fernet:
    try:
        return Fernet(value.strip().encode())
    except (ValueError, TypeError):
        raise SecretKeyError(
            f"{where} is not a valid key (expected 32 random bytes in url-safe base64, "
            "as printed by `etl-project districts new-key`)"
        ) from None


class SecretBox:
    """Encrypts with the current key; decrypts with the current key or any previous one."""

    def __init__(self, current: str, previous: Sequence[str] = ()):
        self._current = _fernet(current, SECRET_KEY_ENV)
        self._previous = [_fernet(k, f"{PREVIOUS_KEYS_ENV} entry {i}") for i, k in enumerate(previous, 1)]
        self._multi = MultiFernet([self._current, *self._previous])

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SecretBox:
        env = os.environ if env is None else env
        current = (env.get(SECRET_KEY_ENV) or "").strip()
        if not current:
            raise MissingSecretKey(
                f"{SECRET_KEY_ENV} is not set: district credentials are encrypted with it. Create a key once "
                f"with `etl-project districts new-key`, keep it in your secret manager, and export it as "
                f"{SECRET_KEY_ENV} for every etl-project process (CLI, Dagster webserver, daemon and runs)"
            )
        previous = [k.strip() for k in (env.get(PREVIOUS_KEYS_ENV) or "").split(",") if k.strip()]
        return cls(current, previous)

    def encrypt(self, plaintext: bytes) -> str:
        return self._current.encrypt(plaintext).decode()

    def decrypt(self, token: str, what: str) -> bytes:
        try:
            return self._multi.decrypt(token.encode())
        except InvalidToken:
            raise CredentialDecryptError(
                f"cannot decrypt {what}: it was encrypted with a key that is neither {SECRET_KEY_ENV} nor "
                f"one of {PREVIOUS_KEYS_ENV} (or the stored value was altered)"
            ) from None

    def rotate(self, token: str, what: str) -> str:
        """The same plaintext, encrypted under the current key."""
        try:
            return self._multi.rotate(token.encode()).decode()
        except InvalidToken:
            raise CredentialDecryptError(
                f"cannot re-encrypt {what}: none of the configured keys opens it (put the old key in "
                f"{PREVIOUS_KEYS_ENV}); nothing was changed"
            ) from None
