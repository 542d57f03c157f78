"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile) and the policy."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 takes any length; a bound keeps one request's hashing bounded
_HASHER = PasswordHasher()  # argon2id


def password_problem(password: str, email: str) -> str | None:
    """Why ``password`` is refused, in one sentence, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters (a few words make a good password)."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if password.strip().lower() in (email.lower(), email.split("@")[0].lower()):
        return "Do not use your e-mail address as the password."
    return None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@functools.cache
def _decoy_hash() -> str:
    return _HASHER.hash("decoy password for accounts that do not exist")


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``. With no stored hash (an unknown account, or one without a
    password) a decoy hash is checked, so the answer takes as long either way."""
    try:
        return _HASHER.verify(stored or _decoy_hash(), password[:MAX_LENGTH]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
