"""What every page shares: the portal's stores, who is asking (``Visitor``), access rules, CSRF and Origin
checks on every POST, cookies and template rendering.

Handlers are plain functions ``(request, visitor, form) -> Response`` run in the server's bounded thread
pool (they reach the database and hash passwords). ``page`` wraps one with its access rule: a district
admin's district always comes from their account, never from the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from etl_project.portal.accounts import Account, Accounts
from etl_project.portal.audit import AuditLog
from etl_project.portal.backends import Backends
from etl_project.portal.clientaddr import client_ip
from etl_project.portal.config import PortalConfig
from etl_project.portal.forms import BadForm, read_form
from etl_project.portal.housekeeping import Housekeeping
from etl_project.portal.links import Links
from etl_project.portal.mailer import LinkMailer
from etl_project.portal.rate_limits import RateLimits
from etl_project.portal.sessions import FULL, MFA, Session, Sessions
from etl_project.portal.throttle import Throttle
from etl_project.portal.tokens import derived, new_token, same
from etl_project.registry.leases import Leases
from etl_project.registry.nights import NightStates
from etl_project.registry.store import Registry

TEMPLATES = Path(__file__).with_name("templates")


@dataclass
class Portal:
    config: PortalConfig
    accounts: Accounts
    sessions: Sessions
    links: Links
    throttle: Throttle
    rate_limits: RateLimits
    housekeeping: Housekeeping
    leases: Leases  # one Sync now / Release decision per district-night across portal processes
    audit: AuditLog
    mailer: LinkMailer
    registry: Registry
    nights: NightStates
    templates: Jinja2Templates
    backends: Backends | None = None  # warehouse, archive, LMS, Dagster: set by `etl-project portal`

    def cookie(self, name: str) -> str:
        """``__Host-`` names over https (the browser then insists on Secure, path / and no Domain)."""
        return f"__Host-portal_{name}" if self.config.secure else f"portal_{name}"


class Access(StrEnum):
    ANYONE = "anyone"
    MFA = "mfa"  # password given, TOTP code still due
    SIGNED_IN = "signed_in"  # any fully signed-in account
    OPERATOR = "operator"
    DISTRICT_ADMIN = "district_admin"


@dataclass
class Visitor:
    ip: str
    anon: str  # the pre-sign-in cookie's token: binds the CSRF token of the sign-in and link forms
    new_anon: bool
    session: Session | None = None
    account: Account | None = None

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else derived(self.anon, "csrf")

    @property
    def signed_in(self) -> bool:
        return self.session is not None and self.session.stage == FULL


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


def _visitor(portal: Portal, request: Request) -> Visitor:
    anon = request.cookies.get(portal.cookie("anon"), "")
    visitor = Visitor(client_ip(request, portal.config.trusted_proxy), anon or new_token(), not anon)
    token = request.cookies.get(portal.cookie("session"))
    session = portal.sessions.find(token) if token else None
    account = portal.accounts.by_id(session.account) if session else None
    if session and account and not account.disabled:
        visitor.session, visitor.account = session, account
    return visitor


def allowed(access: Access, visitor: Visitor) -> bool:
    account = visitor.account
    if access is Access.ANYONE:
        return True
    if access is Access.MFA:
        return visitor.session is not None and visitor.session.stage == MFA
    if not visitor.signed_in or account is None:
        return False
    if access is Access.OPERATOR:
        return account.is_operator
    if access is Access.DISTRICT_ADMIN:
        return not account.is_operator and bool(account.district)
    return True


def origin_ok(request: Request, portal: Portal) -> bool:
    """The POST comes from a page of the portal: its Origin (else its Referer's origin) is the portal's."""
    origin = request.headers.get("origin")
    if not origin:
        referer = urlsplit(request.headers.get("referer", ""))
        origin = f"{referer.scheme}://{referer.netloc}" if referer.netloc else ""
    return origin == portal.config.origin


Handler = Callable[[Request, Visitor, dict[str, str]], Response]


def page(path: str, handler: Handler, access: Access, methods: tuple[str, ...] = ("GET",)) -> Route:
    async def endpoint(request: Request) -> Response:
        portal = portal_of(request)
        visitor = await run_in_threadpool(_visitor, portal, request)
        form: dict[str, str] = {}
        if request.method == "POST":
            try:
                form = await read_form(request)
            except BadForm as exc:
                return _refused(request, visitor, 400, str(exc))
            if not origin_ok(request, portal) or not same(form.get("csrf", ""), visitor.csrf):
                await run_in_threadpool(_audit_csrf, portal, visitor, request)
                return _refused(request, visitor, 403, "This form is out of date or came from another site.")
        if not allowed(access, visitor):
            if request.method == "GET":
                return with_cookies(portal, visitor, RedirectResponse("/sign-in", status_code=303))
            return _refused(request, visitor, 403, "You are not allowed to do that.")
        response = await run_in_threadpool(handler, request, visitor, form)
        return with_cookies(portal, visitor, response)

    return Route(path, endpoint, methods=list(methods))


def _audit_csrf(portal: Portal, visitor: Visitor, request: Request) -> None:
    district = visitor.account.district if visitor.account else None
    portal.audit.record(
        "csrf_refused", account=visitor.account, district=district, ip=visitor.ip, path=request.url.path
    )


def _refused(request: Request, visitor: Visitor, status: int, why: str) -> Response:
    return render(request, visitor, "message.html", status=status, title="Refused", message=why)


def render(request: Request, visitor: Visitor, name: str, status: int = 200, **context) -> Response:
    portal = portal_of(request)
    context |= {"visitor": visitor, "account": visitor.account, "csrf": visitor.csrf}
    response = portal.templates.TemplateResponse(request, name, context, status_code=status)
    return with_cookies(portal, visitor, response)


def with_cookies(portal: Portal, visitor: Visitor, response: Response) -> Response:
    if visitor.new_anon and "anon" not in getattr(response, "_portal_cookies", set()):
        set_cookie(portal, response, "anon", visitor.anon, None)
    return response


def set_cookie(portal: Portal, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        portal.cookie(name), value, max_age=max_age, path="/", secure=portal.config.secure,
        httponly=True, samesite="lax",
    )  # fmt: skip
    response._portal_cookies = {*getattr(response, "_portal_cookies", set()), name}  # type: ignore[attr-defined]


def start_session(portal: Portal, visitor: Visitor, account: Account, stage: str, to: str) -> Response:
    """Sign ``account`` in at ``stage`` with a new session id (any session the visitor had is ended)."""
    if visitor.session is not None:
        portal.sessions.end(visitor.session.token)
    session = portal.sessions.start(account.id, stage, visitor.ip)
    response = RedirectResponse(to, status_code=303)
    set_cookie(
        portal, response, "session", session.token, int(portal.sessions.policy.absolute.total_seconds())
    )
    return with_cookies(portal, visitor, response)


def end_session(portal: Portal, visitor: Visitor, everywhere: bool = False) -> Response:
    if visitor.session is not None:
        if everywhere and visitor.account is not None:
            portal.sessions.end_all(visitor.account.id)
        else:
            portal.sessions.end(visitor.session.token)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(
        portal.cookie("session"), path="/", secure=portal.config.secure, httponly=True, samesite="lax"
    )
    return response
