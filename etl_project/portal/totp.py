"""Time-based one-time codes (RFC 6238, 30-second steps, 6 digits) with pyotp; each code is accepted once."""

from __future__ import annotations

import time

import pyotp

ISSUER = "etl_project portal"
STEP = 30
_DRIFT = 1  # steps either side of now: a phone clock a little off still works


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def matching_step(secret: str, code: str, after_step: int | None, at: float | None = None) -> int | None:
    """The time step ``code`` belongs to, if it is valid now and newer than ``after_step`` (a replayed code,
    or an older one, is refused); else None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if at is None else at) // STEP)
    for step in range(current - _DRIFT, current + _DRIFT + 1):
        if (after_step is None or step > after_step) and pyotp.utils.strings_equal(
            totp.at(step * STEP), code
        ):
            return step
    return None
