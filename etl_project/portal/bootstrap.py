"""The first operator: on a registry without an operator who can sign in, ``etl-project portal`` creates
one (``ETL_PROJECT_PORTAL_OPERATOR_EMAIL``) and prints a one-time setup link to choose its password. No
password is ever given on the command line; each start makes a new link and the previous one stops working."""

from __future__ import annotations

from etl_project.portal.accounts import Role
from etl_project.portal.links import LIFETIME, Purpose
from etl_project.portal.web import Portal


def first_operator_link(portal: Portal) -> str | None:
    """The setup link of the first operator, or None when an operator has a password already."""
    operators = portal.accounts.operators()
    if any(o.has_password and not o.disabled for o in operators):
        return None
    email = portal.config.operator_email
    account = portal.accounts.by_email(email) or portal.accounts.create(email, Role.OPERATOR, None)
    if account.role is not Role.OPERATOR:
        raise ValueError(
            f"{email} is a district admin's account: set ETL_PROJECT_PORTAL_OPERATOR_EMAIL to another address"
        )
    token = portal.links.create(Purpose.SETUP, email, Role.OPERATOR, None)
    portal.audit.record(
        "operator_setup_link", email=email, hours=int(LIFETIME[Purpose.SETUP].total_seconds() // 3600)
    )
    return portal.config.link(f"/set-password?token={token}")
