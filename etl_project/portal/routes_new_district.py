"""An operator creates a new district and invites its first admin in one form.

The district is registered with no source yet (``UnconnectedSource``: nothing polls, schedules or expects
its drops) and its admin connects their SFTP server or OneRoster API from the invitation onwards. The id is
validated as ``etl-project districts add`` validates it (it becomes partition keys and file names)."""

from __future__ import annotations

import zoneinfo

from starlette.requests import Request
from starlette.responses import Response

from etl_project.districts import District, DistrictConfigError, UnconnectedSource
from etl_project.portal.routes_operator import deliver_invitation, email_problem
from etl_project.portal.web import Access, Visitor, page, portal_of, render
from etl_project.registry import SecretKeyError

TITLE = "New district"
FIELDS = ("district", "name", "timezone", "email")


def _zones() -> list[str]:
    return sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith("Etc/"))


def _form(request: Request, visitor: Visitor, status: int = 200, **context) -> Response:
    values = {"timezone": "America/New_York", **context.pop("values", {})}
    return render(
        request, visitor, "new_district.html", status=status, title=TITLE, zones=_zones(), v=values, **context
    )


def new_district_form(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    return _form(request, visitor)


def _district(form: dict[str, str]) -> District:
    """The district the form describes (DistrictConfigError in one sentence otherwise)."""
    from etl_project.registry.store import validate_district

    name = form.get("name", "").strip()
    if not name or len(name) > 200 or any(c in name for c in "\r\n\t\0"):
        raise DistrictConfigError("Enter the district's name, one line of at most 200 characters.")
    district = District(
        id=form.get("district", "").strip(),
        name=name,
        source=UnconnectedSource(),
        timezone=form.get("timezone", "").strip() or "UTC",
    )
    validate_district(district)
    return district


def create_district(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal = portal_of(request)
    email = form.get("email", "").strip().lower()
    values = {k: form.get(k, "").strip() for k in FIELDS}
    try:
        district = _district(form)
        problem = email_problem(request, email)
        if district.id in portal.registry.all():
            problem = f"District {district.id} exists already: invite its admin from Invite."
        if problem is not None:
            raise DistrictConfigError(problem)
        portal.registry.add(district)
    except (DistrictConfigError, SecretKeyError) as exc:
        return _form(request, visitor, status=400, error=str(exc), values=values)
    portal.audit.record(
        "district_created", account=visitor.account, district=district.id, ip=visitor.ip,
        name=district.name, timezone=district.timezone,
    )  # fmt: skip
    return deliver_invitation(request, visitor, email, district.id, show=form.get("delivery") == "show")


# registered before routes_operator's /operator/districts/{action}, which would take POST .../new
ROUTES = [
    page("/operator/districts/new", new_district_form, Access.OPERATOR),
    page("/operator/districts/new", create_district, Access.OPERATOR, ("POST",)),
]
