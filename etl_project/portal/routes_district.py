"""A district admin's pages. The district is always the one on the signed-in account: no route reads a
district id from the path, the query or a form."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from etl_project.districts import DistrictConfigError
from etl_project.portal.routes_dashboard import dashboard_context
from etl_project.portal.web import Access, Visitor, page, portal_of, render

NIGHTS_SHOWN = 30


def own_district(visitor: Visitor) -> str:
    assert visitor.account is not None and visitor.account.district
    return visitor.account.district


def home(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal, district_id = portal_of(request), own_district(visitor)
    try:
        district = portal.registry.get(district_id)
    except DistrictConfigError:
        message = "Your district is not registered any more. Ask your operator."
        return render(request, visitor, "message.html", status=404, title="District", message=message)
    return render(request, visitor, "district.html", **dashboard_context(request, portal, district.id))


def audit(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    entries = portal_of(request).audit.entries(district=own_district(visitor))
    return render(request, visitor, "audit.html", title="Audit log", entries=entries)


ROUTES = [
    page("/district", home, Access.DISTRICT_ADMIN),
    page("/district/audit", audit, Access.DISTRICT_ADMIN),
]
