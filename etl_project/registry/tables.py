"""The registry's tables as the code reads and writes them; migrations/ creates and changes them.

``test_registry.py`` checks that the migrated database and these definitions agree (Alembic's
``compare_metadata``), so a column added here without a migration (or the reverse) fails the tests.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, PrimaryKeyConstraint, Table, Text

metadata = MetaData()

districts = Table(
    "districts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("enabled", Integer, nullable=False),
    Column("expected_by_hour", Integer, nullable=False),
    Column("thresholds", Text, nullable=False),  # JSON
    Column("source_kind", Text, nullable=False),
    Column("source_settings", Text, nullable=False),  # JSON, never a secret
    Column("host_key", Text),
    Column("host_key_pinned_at", Text),
    Column("secret_fields", Text, nullable=False),  # comma-separated names of the stored secrets
    Column("credentials", Text),  # one Fernet token bound to the district id
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)

# One current state per district-night, written by whatever runs the night (CLI, daemon, any worker).
night_states = Table(
    "night_states",
    metadata,
    Column("district", Text, nullable=False),
    Column("night", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("reason", Text),
    Column("step", Text),
    Column("run_id", Text),
    Column("detail", Text, nullable=False),  # JSON
    Column("updated_at", Text, nullable=False),
    PrimaryKeyConstraint("district", "night"),
)

# The outcome of the newest poll of each district's source (sensor or `districts test`).
source_polls = Table(
    "source_polls",
    metadata,
    Column("district", Text, primary_key=True),
    Column("last_poll_at", Text, nullable=False),
    Column("last_success_at", Text),
    Column("newest_drop", Text),
    Column("last_error", Text),
    Column("last_error_at", Text),
)

# --- the district portal (etl_project/portal): accounts, sessions, one-time links, throttling, audit ------

# A person who signs in: an operator (every district) or a district admin (``district``). password_hash is
# argon2id, or NULL for an account that signs in only through an identity provider (``identities``);
# totp_secret is a Fernet token (the registry's SecretBox), never the secret itself.
accounts = Table(
    "accounts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("email", Text, nullable=False, unique=True),  # lower-cased
    Column("role", Text, nullable=False),  # operator | district_admin
    Column("district", Text),
    Column("password_hash", Text),
    Column("password_changed_at", Text),
    Column("totp_secret", Text),
    Column("totp_last_step", Integer),  # the newest accepted TOTP time step: a code is used once
    Column("disabled", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)

# Single sign-on later (Google, Microsoft): the provider's stable subject id, linked to an account.
identities = Table(
    "identities",
    metadata,
    Column("provider", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("account", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    PrimaryKeyConstraint("provider", "subject"),
)

# Server-side sessions: the cookie holds a random token, the table its SHA-256. ``stage`` is ``mfa`` between
# the password and the TOTP code, ``full`` after.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("account", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),  # absolute expiry
    Column("last_seen_at", Text, nullable=False),  # idle expiry counts from here
    Column("ip", Text),
)
Index("sessions_account", sessions.c.account)

# One-time links: ``invite`` (a new district admin or operator), ``reset`` (password reset) and ``setup``
# (the first operator). Only the token's SHA-256 is stored; used_at is set when the link is used.
invitations = Table(
    "invitations",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("purpose", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("district", Text),
    Column("invited_by", Text),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("used_at", Text),
)
Index("invitations_email", invitations.c.email)

# Failed sign-ins per key (``account:<email>``, ``address:<ip>``): the back-off and lockout read these.
sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("key", Text, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", Text, nullable=False),
    Column("locked_until", Text),
)

# Every action in the portal: who, when, from where, what. ``detail`` is JSON and never holds a secret.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Text, nullable=False),
    Column("account", Text),
    Column("email", Text),
    Column("district", Text),
    Column("action", Text, nullable=False),
    Column("ip", Text),
    Column("detail", Text, nullable=False),
)
Index("audit_log_district_at", audit_log.c.district, audit_log.c.at)

# Requests counted in a fixed window per key (``reset-email:<email>``, ``reset-address:<ip>``): the
# password-reset e-mail limits read these (etl_project/portal/rate_limits.py).
request_counts = Table(
    "request_counts",
    metadata,
    Column("key", Text, primary_key=True),
    Column("window_started_at", Text, nullable=False),
    Column("hits", Integer, nullable=False),
)

# Registry-wide locks with an expiry (etl_project/registry/leases.py): one holder per name across every
# process sharing the registry; a crashed holder's lease ends by itself at expires_at.
leases = Table(
    "leases",
    metadata,
    Column("name", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
)
