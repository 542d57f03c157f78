"""The dashboard of one district: its current state and last 30 nights, each night's archived report as a
portal page, the rejected rows as CSV (formula cells neutralized) and trace search with a record's history.

``district_of`` decides which district a request acts on: a district admin's own (a request naming another
district is refused as not found), or for an operator the registered district the request names."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re

from starlette.requests import Request
from starlette.responses import Response

from etl_project.automation.district_status import district_statuses
from etl_project.partitions import validate_partition_night
from etl_project.portal.backends import Backends
from etl_project.portal.headers import CSP
from etl_project.portal.web import Access, Portal, Visitor, page, portal_of, render
from etl_project.portal_services.dashboard import recent_nights
from etl_project.portal_services.rejects_export import rejects_download
from etl_project.portal_services.trace_search import SEARCHED, record_history, search
from etl_project.reports.html import HISTORY_NAME, REJECTS_NAME, REPORT_NAME

ARCHIVED_PAGES = (REPORT_NAME, HISTORY_NAME)
_STYLE = re.compile(rb"<style>(.*?)</style>", re.S)
MAX_QUERY = 200


def district_of(request: Request, visitor: Visitor, form: dict[str, str]) -> str | None:
    """The district this request may act on, or None (refused: another district, unknown id)."""
    account = visitor.account
    assert account is not None
    params = request.path_params
    named = form.get("district") or params.get("district") or request.query_params.get("district")
    if not account.is_operator:
        return account.district if named in (None, "", account.district) else None
    return named if named and named in portal_of(request).registry.all() else None


def not_found(request: Request, visitor: Visitor) -> Response:
    message = "There is no such page for your account."
    return render(request, visitor, "message.html", status=404, title="Not found", message=message)


def backends_of(request: Request) -> Backends:
    portal = portal_of(request)
    if portal.backends is None:
        from etl_project.settings import Settings

        portal.backends = Backends(Settings.from_env())
    return portal.backends


def dashboard_context(request: Request, portal: Portal, district_id: str) -> dict:
    """What district.html shows: the current state, the last 30 nights with LMS counts, who may act."""
    district = portal.registry.get(district_id)
    (status,) = district_statuses({district_id: district}, portal.nights, dt.datetime.now(dt.UTC))
    backends = backends_of(request)
    nights = recent_nights(portal.nights, _lms_or_none(backends), district_id)
    for night in nights:  # LMS changes of the night: counts are {entity: {operation: rows}}
        night["total"] = sum(n for ops in (night.get("counts") or {}).values() for n in ops.values())
    chart = max((n["total"] for n in nights), default=0)
    return {"title": district.name, "district_id": district_id, "current": status, "nights": nights,
            "chart_max": chart or 1, "sync_on": bool(backends.dagster_url)}  # fmt: skip


def _lms_or_none(backends: Backends):
    try:
        return backends.lms
    except Exception:  # no LMS configured or reachable yet: the nights still show their states
        return None


def operator_dashboard(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    district_id = district_of(request, visitor, form)
    if district_id is None:
        return not_found(request, visitor)
    context = dashboard_context(request, portal_of(request), district_id)
    return render(request, visitor, "district.html", operator_view=True, **context)


def report_page(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    """An archived page of a night (report, 30-night history), as the archive holds it, with a CSP that
    allows exactly its own inline style and nothing else."""
    district_id, name = district_of(request, visitor, form), request.path_params["name"]
    night = _night(request.path_params["night"])
    if district_id is None or night is None:
        return not_found(request, visitor)
    if name == REJECTS_NAME:
        return _rejects(request, visitor, district_id, night)
    archive = backends_of(request).archive
    body = archive.get_bytes(district_id, night, name) if name in ARCHIVED_PAGES else None
    if body is None:
        return not_found(request, visitor)
    styles = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m).digest()).decode()}'" for m in _STYLE.findall(body)
    )
    csp = CSP.replace("style-src 'self'", f"style-src 'self' {styles}")
    return Response(body, media_type="text/html; charset=utf-8", headers={"content-security-policy": csp})


def _night(value: str) -> str | None:
    try:
        return validate_partition_night(value)
    except ValueError:
        return None


def _rejects(request: Request, visitor: Visitor, district_id: str, night: str) -> Response:
    backends = backends_of(request)
    name, data = rejects_download(backends.warehouse, backends.archive, district_id, night)
    portal_of(request).audit.record(
        "export", account=visitor.account, district=district_id, ip=visitor.ip, night=night, file=name
    )
    disposition = f'attachment; filename="{name}"'
    return Response(data, media_type="text/csv; charset=utf-8", headers={"content-disposition": disposition})


def trace(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    district_id = district_of(request, visitor, form)
    if district_id is None:
        return not_found(request, visitor)
    query = request.query_params.get("q", "").strip()[:MAX_QUERY]
    backends = backends_of(request)
    results = search(backends.warehouse, backends.archive, district_id, query) if query else []
    if query:
        portal_of(request).audit.record(
            "trace_search", account=visitor.account, district=district_id, ip=visitor.ip,
            query=query, found=len(results),
        )  # fmt: skip
    context = {"district_id": district_id, "query": query, "results": results}
    return render(request, visitor, "trace.html", title="Trace a record", **context)


def trace_record(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    district_id = district_of(request, visitor, form)
    entity = request.query_params.get("entity", "")
    sourced_id = request.query_params.get("id", "")[:MAX_QUERY]
    if district_id is None or entity not in SEARCHED or not sourced_id:
        return not_found(request, visitor)
    portal, backends = portal_of(request), backends_of(request)
    found = record_history(backends.warehouse, backends.archive, _lms_or_none(backends), portal.nights,
                           district_id, entity, sourced_id)  # fmt: skip
    portal.audit.record(
        "trace_record", account=visitor.account, district=district_id, ip=visitor.ip,
        entity=entity, sourced_id=sourced_id, changes=len(found["changes"]),
    )  # fmt: skip
    title = f"History of {entity} {sourced_id}"
    return render(request, visitor, "trace_record.html", title=title, district_id=district_id, record=found)


ROUTES = [
    page("/operator/district", operator_dashboard, Access.OPERATOR),
    page("/reports/{district}/date={night}/{name}", report_page, Access.SIGNED_IN),
    page("/trace", trace, Access.SIGNED_IN),
    page("/trace/record", trace_record, Access.SIGNED_IN),
]
