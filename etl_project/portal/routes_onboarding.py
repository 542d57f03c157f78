"""A district admin sets up their source (SFTP or OneRoster REST), rotates its password or key, and tests
the connection step by step, pinning the SFTP server's host key once they confirm its fingerprint.

The district is always the signed-in admin's. Secrets go straight into the registry's encrypted store and
are never shown back: the page says which are set and when and by whom they changed (from the audit log).
Every save, test and pin is audited with facts only."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from etl_project.districts import District, DistrictConfigError
from etl_project.portal.routes_district import own_district
from etl_project.portal.source_form import (
    REST_SETTINGS,
    SFTP_SETTINGS,
    FormProblem,
    SourceChange,
    read_source,
)
from etl_project.portal.web import Access, Visitor, page, portal_of, render
from etl_project.portal_services.onboarding import (
    Step,
    confirmed_fingerprint,
    connection_steps,
    record_listing,
)
from etl_project.registry import RegistryEntry, SecretKeyError
from etl_project.registry.hostkey import pinned_fingerprints

CREDENTIALS_CHANGED = "credentials_changed"
AUDIT_NAMES = {"token_url": "oauth_url"}  # audit detail keys may not name secrets ("token")
FORM_SETTINGS = ("kind", *SFTP_SETTINGS, *REST_SETTINGS)  # what a refused form shows again: never a secret
LOCAL_NOT_TESTED = (
    "Your source is a folder on our server that your operator set up: enter your SFTP server or OneRoster "
    "API first, then test it."
)
NONE_NOT_TESTED = "Nothing to test yet: enter your SFTP server or OneRoster API first, save, then test it."
SECRET_LABELS = {
    "password": "Password",
    "private_key": "Private key",
    "passphrase": "Key passphrase",
    "client_secret": "Client secret",
}


def _page(request: Request, visitor: Visitor, status: int = 200, **context) -> Response:
    portal, district_id = portal_of(request), own_district(visitor)
    entry = portal.registry.entry(district_id)
    changed = portal.audit.entries(district=district_id, limit=1, action=CREDENTIALS_CHANGED)
    secrets = [SECRET_LABELS[f] for f in entry.secret_fields]
    host_key = getattr(entry.district.source, "host_key", "")
    context = {
        "pinned": pinned_fingerprints(host_key) if host_key else [],
        "entry": entry,
        "source": entry.district.source,
        "secrets": secrets,
        "changed": changed[0] if changed else None,
        **context,
    }
    return render(request, visitor, "onboarding.html", status=status, title="Your source", **context)


def source_page(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    return _page(request, visitor, saved=request.query_params.get("saved") == "1")


def _store(portal, entry: RegistryEntry, change: SourceChange) -> None:
    """Same kind: update settings (and secrets when new ones were given); another kind: replace the source
    with its secrets, keeping the district's other settings."""
    current: District = entry.district
    if current.source.kind == change.source.kind:
        portal.registry.update(current.id, change.secrets, **change.settings)
        if change.source.kind == "sftp" and not change.source.host_key and current.source.host_key:
            portal.registry.forget_host_key(current.id)
    else:
        replaced = District(
            current.id,
            current.name,
            change.source,
            timezone=current.timezone,
            enabled=current.enabled,
            expected_by_hour=current.expected_by_hour,
            thresholds=current.thresholds,
        )
        portal.registry.add(replaced, change.secrets, replace=True)


def save_source(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal, district_id = portal_of(request), own_district(visitor)
    entry = portal.registry.entry(district_id)
    try:
        change = read_source(form, entry.district, stored=bool(entry.secret_fields))
        _store(portal, entry, change)
    except (FormProblem, DistrictConfigError, SecretKeyError) as exc:
        portal.audit.record(
            "source_refused", account=visitor.account, district=district_id, ip=visitor.ip, why=str(exc)
        )
        kept = {k: v for k, v in form.items() if k in FORM_SETTINGS}
        return _page(request, visitor, status=400, error=str(exc), posted=kept)
    facts = {AUDIT_NAMES.get(k, k): v for k, v in change.settings.items() if v is not None}
    facts["kind"] = change.source.kind
    who = {"account": visitor.account, "district": district_id, "ip": visitor.ip}
    portal.audit.record("source_changed", **who, **facts)
    if change.secrets is not None:
        fields = sorted(k for k, v in change.secrets.items() if v)
        portal.audit.record(CREDENTIALS_CHANGED, **who, fields=fields)
    return RedirectResponse("/district/source?saved=1", status_code=303)


def _run_test(portal, visitor: Visitor, entry: RegistryEntry, fingerprint: str | None) -> list[Step]:
    district_id = entry.id
    if entry.district.source.kind not in ("sftp", "rest"):
        why = NONE_NOT_TESTED if entry.district.source.kind == "none" else LOCAL_NOT_TESTED
        return [Step("settings", False, why)]
    try:
        credentials = portal.registry.credentials(district_id)
    except (DistrictConfigError, SecretKeyError) as exc:
        return [Step("settings", False, str(exc))]
    steps = connection_steps(
        entry.district,
        credentials,
        confirm=confirmed_fingerprint(fingerprint),
        pin=lambda line: portal.registry.pin_host_key(district_id, line),
        pinned_at=entry.host_key_pinned_at,
        guard_hosts=True,
    )
    done = list(steps)
    for step in done:
        record_listing(portal.nights, district_id, step)
        if step.name == "host_key" and step.data.get("pinned"):
            portal.audit.record(
                "host_key_pinned", account=visitor.account, district=district_id, ip=visitor.ip,
                fingerprint=step.data["fingerprint"], algorithm=step.data["key_type"],
            )  # fmt: skip
        elif step.name == "host_key" and fingerprint and "fingerprint" in step.data and not step.ok:
            portal.audit.record(
                "host_key_not_pinned", account=visitor.account, district=district_id, ip=visitor.ip,
                confirmed=fingerprint[:120], presented=step.data["fingerprint"],
            )  # fmt: skip
    return done


def connection_test(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal, district_id = portal_of(request), own_district(visitor)
    entry = portal.registry.entry(district_id)
    fingerprint = _typed_fingerprint(form.get("fingerprint", ""))
    steps = _run_test(portal, visitor, entry, fingerprint)
    last = steps[-1] if steps else Step("settings", False, "Nothing to test.")
    portal.audit.record(
        "connection_test", account=visitor.account, district=district_id, ip=visitor.ip,
        result="ok" if last.ok else "failed", step=last.name,
    )  # fmt: skip
    mismatch = bool(fingerprint) and any(
        s.name == "host_key" and not s.ok and "fingerprint" in s.data for s in steps
    )
    return render(
        request, visitor, "onboarding_test.html", title="Test connection", steps=steps,
        report=_report_text(last), mismatch=mismatch,
    )  # fmt: skip


def _typed_fingerprint(text: str) -> str | None:
    """The fingerprint in what the admin typed or pasted (a bare one, or ssh-keygen's whole line)."""
    words = text.split()
    found = next((w for w in words if w.upper().startswith("SHA256:")), words[0] if len(words) == 1 else "")
    return found[:200] or None


def _report_text(step: Step) -> str | None:
    if step.name != "validate" or step.report is None:
        return None
    from etl_project.cli.check_drop import render as render_report

    return render_report(Path(step.data["location"]), step.report)


ROUTES = [
    page("/district/source", source_page, Access.DISTRICT_ADMIN),
    page("/district/source", save_source, Access.DISTRICT_ADMIN, ("POST",)),
    page("/district/source/test", connection_test, Access.DISTRICT_ADMIN, ("POST",)),
]
