"""The operator's pages: every district with its health (the ``etl-project status`` facts) and filters,
the invitation of district admins, and the whole audit log."""

from __future__ import annotations

import datetime as dt
import re

from starlette.requests import Request
from starlette.responses import Response

from etl_project.automation.district_status import DistrictStatus, district_statuses
from etl_project.portal.accounts import Role
from etl_project.portal.links import Purpose
from etl_project.portal.mailer import NotifyError
from etl_project.portal.web import Access, Visitor, page, portal_of, render
from etl_project.registry.nights import NightState

FILTERS = {
    "all": lambda s: True,
    "failing": lambda s: s.health in ("failing", "unreachable"),
    "held": lambda s: s.night is not None and s.night.state is NightState.HELD,
    "late": lambda s: s.district.enabled and s.overdue,
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ACTIONS = ("disable", "enable", "remove")


def _statuses(request: Request) -> list[DistrictStatus]:
    portal = portal_of(request)
    return district_statuses(portal.registry.all(), portal.nights, dt.datetime.now(dt.UTC))


def districts(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    show = request.query_params.get("show", "all")
    keep = FILTERS.get(show, FILTERS["all"])
    rows = [s for s in _statuses(request) if keep(s)]
    return render(
        request, visitor, "operator.html", title="Districts", rows=rows, show=show, filters=list(FILTERS)
    )


def invite_form(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    ids = sorted(portal_of(request).registry.all())
    return render(request, visitor, "invite.html", title="Invite a district admin", districts=ids)


def email_problem(request: Request, email: str) -> str | None:
    """Why an invitation cannot go to ``email`` (one sentence), or None."""
    if not _EMAIL.match(email) or len(email) > 320:
        return "Enter the admin's e-mail address, such as it.admin@district.org."
    if portal_of(request).accounts.by_email(email) is not None:
        return f"{email} has an account already."
    return None


def _invite_problem(request: Request, email: str, district: str) -> str | None:
    if district not in portal_of(request).registry.all():
        return "Choose one of the registered districts."
    return email_problem(request, email)


def invite(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal = portal_of(request)
    email, district = form.get("email", "").strip().lower(), form.get("district", "")
    problem = _invite_problem(request, email, district)
    if problem:
        ids = sorted(portal.registry.all())
        context = {"districts": ids, "error": problem, "email": email}
        return render(request, visitor, "invite.html", status=400, title="Invite a district admin", **context)
    return deliver_invitation(request, visitor, email, district, show=form.get("delivery") == "show")


def deliver_invitation(request: Request, visitor: Visitor, email: str, district: str, show: bool) -> Response:
    """Make the one-time invitation link, show it once (``show``) or e-mail it, audit it, and say so."""
    portal, operator = portal_of(request), visitor.account
    assert operator is not None
    token = portal.links.create(
        Purpose.INVITE, email, Role.DISTRICT_ADMIN, district, invited_by=operator.email
    )
    url = portal.config.link(f"/set-password?token={token}")
    shown, delivery = None, "shown"
    if show:
        shown = url  # this response only: the link is not stored
    else:
        try:
            delivery = portal.mailer.send(
                email,
                "You are invited to the etl_project district portal",
                f"You are invited as an administrator of {district}. "
                "Open this link within 7 days to choose your password:",
                url,
            )
        except NotifyError as exc:
            delivery = f"failed: {exc}"
    portal.audit.record(
        "invite", account=operator, district=district, ip=visitor.ip, invited=email, delivery=delivery
    )
    context = {"email": email, "district": district, "link": shown, "delivery": delivery}
    return render(request, visitor, "invited.html", title="Invitation made", **context)


def district_action(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    """Disable, enable or remove a district: the operator types the district's id to confirm. Remove does
    what `etl-project districts remove` does (warehouse data, partition, registry entry and credentials;
    the archive is kept)."""
    from etl_project.cli.offboard import remove_district
    from etl_project.portal.routes_dashboard import backends_of

    portal, action, district = portal_of(request), request.path_params["action"], form.get("district", "")
    if action not in ACTIONS or district not in portal.registry.all():
        message = "No such district."
        return render(request, visitor, "message.html", status=404, title="Not found", message=message)
    if form.get("confirm", "").strip() != district:
        message = f"Nothing done: type the district's id ({district}) to confirm."
        return render(request, visitor, "message.html", status=400, title="Not confirmed", message=message)
    done = [f"{district}: {action}d"]
    if action == "remove":
        done = remove_district(portal.registry, backends_of(request).settings, district)
    else:
        portal.registry.set_enabled(district, action == "enable")
    portal.audit.record(action + "_district", account=visitor.account, district=district, ip=visitor.ip)
    return render(request, visitor, "message.html", title=f"District {action}d", message="; ".join(done))


def audit(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    entries = portal_of(request).audit.entries()
    return render(request, visitor, "audit.html", title="Audit log", entries=entries)


ROUTES = [
    page("/operator", districts, Access.OPERATOR),
    page("/operator/invite", invite_form, Access.OPERATOR),
    page("/operator/invite", invite, Access.OPERATOR, ("POST",)),
    page("/operator/audit", audit, Access.OPERATOR),
    page("/operator/districts/{action}", district_action, Access.OPERATOR, ("POST",)),
]
