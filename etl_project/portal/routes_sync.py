"""Sync now, a run's page (queue place, step progress, refreshing itself until the run ends) and Release of
a held night (who: the signed-in account; why: a required reason). Every action is audited."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from etl_project.districts import DistrictConfigError
from etl_project.partitions import DistrictNight, validate_partition_night
from etl_project.portal.backends import SyncUnavailable
from etl_project.portal.routes_dashboard import backends_of, district_of, not_found
from etl_project.portal.web import Access, Visitor, page, portal_of, render
from etl_project.portal_services.run_progress import run_progress
from etl_project.portal_services.sync_now import NothingToSync, release_night, sync_now
from etl_project.registry.leases import LeaseBusy
from etl_project.sources import SourceError

REFRESH_SECONDS = 2
MAX_REASON = 500
DISTRICT_TAG = "dagster/partition/district"


def _refused(request: Request, visitor: Visitor, why: str, status: int = 409) -> Response:
    return render(request, visitor, "message.html", status=status, title="Not started", message=why)


def _run_page(run_id: str, district_id: str) -> RedirectResponse:
    return RedirectResponse(f"/runs/{run_id}?district={district_id}", status_code=303)


def sync(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    district_id = district_of(request, visitor, form)
    if district_id is None:
        return not_found(request, visitor)
    portal, backends = portal_of(request), backends_of(request)
    try:
        client = backends.client()
        district = portal.registry.get(district_id)
        credentials = portal.registry.credentials(district_id)
        started = sync_now(portal.leases, backends.instance, client, district, credentials)
    except (SyncUnavailable, NothingToSync, SourceError, DistrictConfigError, LeaseBusy) as exc:
        portal.audit.record("sync", account=visitor.account, district=district_id, ip=visitor.ip,
                            outcome="refused", why=str(exc))  # fmt: skip
        return _refused(request, visitor, str(exc))
    portal.audit.record(
        "sync", account=visitor.account, district=district_id, ip=visitor.ip,
        run_id=started.run_id, night=started.night.date, created=started.created,
    )  # fmt: skip
    return _run_page(started.run_id, district_id)


def run_page(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    """A run of the district (a run of another district, or none, is not found)."""
    district_id = district_of(request, visitor, form)
    run_id = request.path_params["run_id"]
    if district_id is None or len(run_id) > 64:
        return not_found(request, visitor)
    instance = backends_of(request).instance
    run = instance.get_run_by_id(run_id)
    if run is None or run.tags.get(DISTRICT_TAG) != district_id:
        return not_found(request, visitor)
    progress = run_progress(instance, run_id)
    refresh = None if progress.ended else REFRESH_SECONDS
    night = run.tags.get("dagster/partition/date")
    context = {"district_id": district_id, "progress": progress, "refresh": refresh, "night": night}
    context["job"] = run.job_name
    return render(request, visitor, "run.html", title="Sync", **context)


def release(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    district_id = district_of(request, visitor, form)
    if district_id is None:
        return not_found(request, visitor)
    reason, night = form.get("reason", "").strip(), form.get("night", "")
    if not reason or len(reason) > MAX_REASON:
        return _refused(request, visitor, "Say why you release this night (up to 500 characters).", 400)
    portal, backends = portal_of(request), backends_of(request)
    who = visitor.account.email  # type: ignore[union-attr]
    try:
        target = DistrictNight(validate_partition_night(night), district_id)
        started = release_night(
            portal.leases, backends.instance, backends.client(), portal.nights, target, who, reason
        )
    except (SyncUnavailable, NothingToSync, ValueError, LeaseBusy) as exc:
        return _refused(request, visitor, str(exc))
    portal.audit.record(
        "release", account=visitor.account, district=district_id, ip=visitor.ip,
        night=night, reason=reason, run_id=started.run_id, created=started.created,
    )  # fmt: skip
    return _run_page(started.run_id, district_id)


ROUTES = [
    page("/sync", sync, Access.SIGNED_IN, ("POST",)),
    page("/runs/{run_id}", run_page, Access.SIGNED_IN),
    page("/release", release, Access.SIGNED_IN, ("POST",)),
]
