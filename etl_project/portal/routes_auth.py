"""Signing in and out: password, TOTP (enrolment on an operator's first sign-in), one-time links that set a
password (invitation, reset, first operator), password reset requests, sign-out and sign-out everywhere."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from etl_project.portal import totp
from etl_project.portal.accounts import Account, AccountExists
from etl_project.portal.links import Link, Purpose
from etl_project.portal.mailer import NotifyError
from etl_project.portal.passwords import password_problem
from etl_project.portal.rate_limits import RESET_PER_ADDRESS, RESET_PER_EMAIL
from etl_project.portal.sessions import FULL, MFA
from etl_project.portal.throttle import account_key, address_key
from etl_project.portal.web import (
    Access,
    Portal,
    Visitor,
    end_session,
    page,
    portal_of,
    render,
    start_session,
)


def home_of(account: Account) -> str:
    return "/operator" if account.is_operator else "/district"


def landing(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    if visitor.signed_in and visitor.account:
        return RedirectResponse(home_of(visitor.account), status_code=303)
    return RedirectResponse("/totp" if visitor.session else "/sign-in", status_code=303)


def sign_in_form(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    if visitor.signed_in and visitor.account:
        return RedirectResponse(home_of(visitor.account), status_code=303)
    return render(request, visitor, "sign_in.html", title="Sign in")


def _throttled(request: Request, visitor: Visitor, keys: list[str], email: str) -> Response | None:
    portal = portal_of(request)
    wait = portal.throttle.wait(keys)
    if not wait:
        return None
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    portal.audit.record(
        "sign_in_throttled", email=email, ip=visitor.ip, wait_seconds=int(wait.total_seconds())
    )
    message = f"Too many failed attempts: try again in {minutes} minute(s), or reset your password by e-mail."
    return render(request, visitor, "sign_in.html", status=429, title="Sign in", error=message, email=email)


def sign_in(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal = portal_of(request)
    email = form.get("email", "").strip().lower()[:320]
    portal.housekeeping.due()
    blocked = _throttled(request, visitor, [account_key(email), address_key(visitor.ip)], email)
    if blocked:
        return blocked
    account = portal.accounts.check_password(email, form.get("password", ""))
    if account is None:
        portal.throttle.failed_sign_in(email, visitor.ip)
        portal.audit.record("sign_in_failed", email=email, ip=visitor.ip)
        error = "The e-mail address or the password is wrong."
        return render(request, visitor, "sign_in.html", status=401, title="Sign in", error=error, email=email)
    portal.throttle.clear(account_key(email))
    if account.is_operator:
        portal.audit.record("password_accepted", account=account, ip=visitor.ip, next="totp")
        return start_session(portal, visitor, account, MFA, "/totp")
    portal.audit.record("sign_in", account=account, district=account.district, ip=visitor.ip)
    return start_session(portal, visitor, account, FULL, home_of(account))


def totp_form(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal, account = portal_of(request), visitor.account
    assert account is not None
    if account.totp_enrolled:
        return render(request, visitor, "totp.html", title="Authenticator code")
    secret = totp.new_secret()  # shown on this page only; a reload makes a new one
    portal.accounts.start_totp_enrolment(account.id, secret)
    uri = totp.provisioning_uri(secret, account.email)
    return render(request, visitor, "totp.html", title="Set up your authenticator", secret=secret, uri=uri)


def totp_check(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal, account = portal_of(request), visitor.account
    assert account is not None
    blocked = _throttled(
        request, visitor, [account_key(account.email), address_key(visitor.ip)], account.email
    )
    if blocked:
        return blocked
    secret, last = portal.accounts.totp_state(account.id)
    step = totp.matching_step(secret, form.get("code", ""), last) if secret else None
    if step is None or not portal.accounts.accept_totp_step(account.id, step):
        portal.throttle.failed_sign_in(account.email, visitor.ip)
        portal.audit.record("totp_failed", account=account, ip=visitor.ip)
        error = "That code is wrong or was used already."
        if not account.totp_enrolled:
            error += " Reload this page to get a new key if you had not added the previous one."
        return render(request, visitor, "totp.html", status=401, title="Authenticator code", error=error)
    portal.throttle.clear(account_key(account.email))
    portal.audit.record(
        "sign_in", account=account, ip=visitor.ip, mfa="totp", enrolled=not account.totp_enrolled
    )
    return start_session(portal, visitor, account, FULL, home_of(account))


def _dead_link(request: Request, visitor: Visitor) -> Response:
    message = (
        "This link has expired or was used already. Ask your operator for a new invitation, "
        "or request a new password reset."
    )
    return render(request, visitor, "message.html", status=410, title="Link no longer valid", message=message)


def set_password_form(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    token = request.query_params.get("token", "")
    link = portal_of(request).links.peek(token) if token else None
    if link is None:
        return _dead_link(request, visitor)
    return render(request, visitor, "set_password.html", title="Choose a password", link=link, token=token)


def _account_for(portal: Portal, link: Link) -> Account | None:
    if link.purpose is Purpose.INVITE:
        try:
            return portal.accounts.create(link.email, link.role, link.district)
        except AccountExists:
            return None
    account = portal.accounts.by_email(link.email)
    return account if account and not account.disabled else None


def set_password(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal, token = portal_of(request), form.get("token", "")
    link = portal.links.peek(token)
    if link is None:
        return _dead_link(request, visitor)
    password = form.get("password", "")
    problem = password_problem(password, link.email)
    if problem is None and password != form.get("password2"):
        problem = "The two passwords differ."
    if problem:
        context = {"link": link, "token": token, "error": problem}
        return render(request, visitor, "set_password.html", status=400, title="Choose a password", **context)
    link = portal.links.consume(token)
    account = _account_for(portal, link) if link else None
    if link is None or account is None:
        return _dead_link(request, visitor)
    portal.accounts.set_password(account.id, password)
    portal.sessions.end_all(account.id)
    portal.throttle.clear(account_key(account.email))
    portal.audit.record(
        "password_set", account=account, district=account.district, ip=visitor.ip, via=str(link.purpose)
    )
    stage, to = (MFA, "/totp") if account.is_operator else (FULL, home_of(account))
    return start_session(portal, visitor, account, stage, to)


def forgot_form(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    return render(request, visitor, "forgot.html", title="Reset your password")


def forgot(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    """Send a reset link if an account uses the address, within the per-client and per-address limits.
    The page says the same whatever happened (no account enumeration); the audit log says what did."""
    portal = portal_of(request)
    email = form.get("email", "").strip().lower()[:320]
    portal.housekeeping.due()
    blocked = _throttled(request, visitor, [address_key(visitor.ip)], email)
    if blocked:
        return blocked
    if not portal.rate_limits.hit(RESET_PER_ADDRESS, visitor.ip):
        delivered = "not sent: too many reset requests from this client address"
    elif not portal.rate_limits.hit(RESET_PER_EMAIL, email):
        delivered = "not sent: too many reset requests for this e-mail address"
    else:
        delivered = _send_reset(portal, email)
    portal.audit.record("password_reset_requested", email=email, ip=visitor.ip, delivery=delivered)
    message = "If an account uses that address, a reset link is on its way. It works once, within an hour."
    return render(request, visitor, "message.html", title="Check your e-mail", message=message)


def _send_reset(portal: Portal, email: str) -> str:
    """How the reset link went ("none": no enabled account uses the address)."""
    account = portal.accounts.by_email(email)
    if account is None or account.disabled:
        return "none"
    token = portal.links.create(Purpose.RESET, email, account.role, account.district)
    url = portal.config.link(f"/set-password?token={token}")
    try:
        return portal.mailer.send(
            email,
            "Your etl_project portal password reset link",
            "Open this link within an hour to choose a new password:",
            url,
        )
    except NotifyError as exc:
        return f"failed: {exc}"


def sign_out(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal, account = portal_of(request), visitor.account
    portal.audit.record(
        "sign_out", account=account, district=account.district if account else None, ip=visitor.ip
    )
    return end_session(portal, visitor)


def sign_out_everywhere(request: Request, visitor: Visitor, form: dict[str, str]) -> Response:
    portal, account = portal_of(request), visitor.account
    assert account is not None
    portal.audit.record("sign_out_everywhere", account=account, district=account.district, ip=visitor.ip)
    return end_session(portal, visitor, everywhere=True)


ROUTES = [
    page("/", landing, Access.ANYONE),
    page("/sign-in", sign_in_form, Access.ANYONE),
    page("/sign-in", sign_in, Access.ANYONE, ("POST",)),
    page("/totp", totp_form, Access.MFA),
    page("/totp", totp_check, Access.MFA, ("POST",)),
    page("/set-password", set_password_form, Access.ANYONE),
    page("/set-password", set_password, Access.ANYONE, ("POST",)),
    page("/forgot-password", forgot_form, Access.ANYONE),
    page("/forgot-password", forgot, Access.ANYONE, ("POST",)),
    page("/sign-out", sign_out, Access.ANYONE, ("POST",)),
    page("/sign-out-everywhere", sign_out_everywhere, Access.SIGNED_IN, ("POST",)),
]
