"""The district portal as a real uvicorn subprocess driven over HTTP: sign-in with TOTP, invitations,
CSRF, session fixation, one-time links, throttling, district isolation, secrets kept off pages and audit."""

from __future__ import annotations

import datetime as dt
import re

import pyotp
import pytest
from sqlalchemy import create_engine, text

from etl_project.portal import (
    routes_auth,
    routes_dashboard,
    routes_district,
    routes_new_district,
    routes_onboarding,
    routes_operator,
    routes_sync,
)
from etl_project.portal.accounts import Role
from etl_project.portal.links import Links, Purpose
from etl_project.registry.db import Database
from etl_project_tests.portal_server import CEDAR_REASON, run_portal

PASSWORD = "correct horse battery staple 7"
ADMIN = "it.admin@maple.example.org"


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def post(client, path: str, data: dict[str, str], page: str | None = None):
    """Post a form with the CSRF token of ``page`` (default: the form's own page)."""
    token = csrf_of(client.get(page or path).text)
    return client.post(path, data={"csrf": token, **data})


def accept(client, link: str, password: str = PASSWORD):
    page = client.get(link)
    assert page.status_code == 200, page.text
    token = link.split("token=")[1]
    return client.post(
        "/set-password",
        data={"csrf": csrf_of(page.text), "token": token, "password": password, "password2": password},
    )


def invited_admin(portal, email: str) -> str:
    """A maple admin who accepted an invitation made in the registry (as the invite page makes it)."""
    token = Links(Database(portal.registry_url)).create(Purpose.INVITE, email, Role.DISTRICT_ADMIN, "maple")
    assert accept(portal.client(), f"/set-password?token={token}").status_code == 303
    return email


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with run_portal(tmp_path_factory.mktemp("portal")) as server:
        yield server


@pytest.fixture(scope="module")
def operator(portal):
    """The first operator, set up through the printed link, with TOTP enrolled; and every page seen."""
    client = portal.client()
    done = accept(client, portal.setup_link())
    assert done.status_code == 303 and done.headers["location"] == "/totp"
    enrol = client.get("/totp")
    secret = re.search(r'id="totp-key">([A-Z2-7]+)<', enrol.text).group(1)
    code = pyotp.TOTP(secret).now()
    signed = client.post("/totp", data={"csrf": csrf_of(enrol.text), "code": code})
    assert signed.status_code == 303 and signed.headers["location"] == "/operator"
    yield client, secret, code
    client.close()


@pytest.fixture(scope="module")
def admin(portal, operator):
    """A maple district admin invited by the operator (link shown once), signed in."""
    op, _, _ = operator
    made = post(op, "/operator/invite", {"email": ADMIN, "district": "maple", "delivery": "show"})
    assert made.status_code == 200
    link = re.search(r'id="invite-link">([^<]+)<', made.text).group(1)
    client = portal.client()
    done = accept(client, link)
    assert done.status_code == 303 and done.headers["location"] == "/district"
    yield client, link
    client.close()


def test_operator_sees_every_district_and_filters_failing(operator):
    client, _, _ = operator
    page = client.get("/operator")
    assert page.status_code == 200
    assert "Maple Grove Unified" in page.text and "Cedar Falls Schools" in page.text
    failing = client.get("/operator?show=failing").text
    assert "Cedar Falls Schools" in failing and "Maple Grove Unified" not in failing
    assert CEDAR_REASON in failing


def test_admin_home_shows_their_district_only(portal, admin):
    client, _ = admin
    home = client.get("/district")
    assert home.status_code == 200, portal.log[-20:]
    assert "Maple Grove Unified" in home.text and "2026-11-30" in home.text and "applied" in home.text
    assert "Cedar" not in home.text and CEDAR_REASON not in home.text


def test_an_invitation_works_once(portal, admin):
    _, link = admin
    again = portal.client().get(link)
    assert again.status_code == 410


def test_an_expired_invitation_is_refused(portal):
    links = Links(Database(portal.registry_url))
    token = links.create(
        Purpose.INVITE,
        "late@maple.example.org",
        Role.DISTRICT_ADMIN,
        "maple",
        lifetime=dt.timedelta(seconds=-1),
    )
    client = portal.client()
    assert client.get(f"/set-password?token={token}").status_code == 410
    anon = csrf_of(client.get("/sign-in").text)
    data = {"csrf": anon, "token": token, "password": PASSWORD, "password2": PASSWORD}
    assert client.post("/set-password", data=data).status_code == 410
    assert (
        client.post(
            "/sign-in", data={"csrf": anon, "email": "late@maple.example.org", "password": PASSWORD}
        ).status_code
        == 401
    )


def test_csrf_is_refused_without_token_or_from_another_origin(portal, admin):
    client, _ = admin
    assert client.post("/sign-out-everywhere", data={"everywhere": "yes"}).status_code == 403
    token = csrf_of(client.get("/district").text)
    assert client.post("/sign-out-everywhere", data={"csrf": "0" * 64}).status_code == 403
    foreign = client.post(
        "/sign-out-everywhere", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert client.get("/district").status_code == 200  # still signed in: nothing happened


def test_session_id_changes_at_sign_in_and_a_planted_one_is_worthless(portal, admin):
    client = portal.client()
    client.cookies.set("portal_session", "planted-by-attacker", domain="127.0.0.1")
    signed = post(client, "/sign-in", {"email": ADMIN, "password": PASSWORD})
    assert signed.status_code == 303
    first = client.cookies["portal_session"]
    assert first != "planted-by-attacker"
    again = post(client, "/sign-in", {"email": ADMIN, "password": PASSWORD}, page="/district")
    assert again.status_code == 303 and client.cookies["portal_session"] != first
    stale = portal.client()
    stale.cookies.set(
        "portal_session", first, domain="127.0.0.1"
    )  # the session before the new sign-in ended with it
    assert stale.get("/district").status_code == 303
    planted = portal.client()
    planted.cookies.set("portal_session", "planted-by-attacker", domain="127.0.0.1")
    assert planted.get("/district").status_code == 303


def test_sign_out_everywhere_ends_every_session(portal):
    email = invited_admin(portal, "two.browsers@maple.example.org")
    a, b = portal.client(), portal.client()
    for c in (a, b):
        assert post(c, "/sign-in", {"email": email, "password": PASSWORD}).status_code == 303
    assert post(a, "/sign-out-everywhere", {}, page="/district").status_code == 303
    assert b.get("/district").status_code == 303 and a.get("/district").status_code == 303


def test_brute_force_sign_in_is_throttled_even_for_the_right_password(portal):
    email = invited_admin(portal, "target@maple.example.org")
    client = portal.client()
    codes = [
        post(client, "/sign-in", {"email": email, "password": f"guess number {i}"}).status_code
        for i in range(5)
    ]
    assert codes == [401] * 5
    locked = post(client, "/sign-in", {"email": email, "password": PASSWORD})
    assert locked.status_code == 429 and "try again in" in locked.text
    actions = audit_actions(portal, email)
    assert actions.count("sign_in_failed") == 5 and "sign_in_throttled" in actions


def test_a_totp_code_is_accepted_once(portal, operator):
    _, _, used = operator  # the code the operator signed in with
    client = portal.client()
    assert post(client, "/sign-in", {"email": "operator@localhost", "password": PASSWORD}).status_code == 303
    assert client.get("/operator").status_code == 303  # password alone does not open the operator pages
    replay = post(client, "/totp", {"code": used})
    assert replay.status_code == 401 and "used already" in replay.text


def all_routes():
    modules = (
        routes_auth,
        routes_new_district,
        routes_operator,
        routes_district,
        routes_dashboard,
        routes_sync,
        routes_onboarding,
    )
    for route in (r for m in modules for r in m.ROUTES):
        for method in route.methods - {"HEAD"}:
            yield method, route.path


def test_another_district_is_unreachable_on_every_route(portal, admin):
    client, _ = admin
    seen = []
    tampered = {"district": "cedar", "district_id": "cedar", "id": "cedar", "email": "x@cedar.example.org"}
    for method, path in all_routes():
        if path in ("/sign-out", "/sign-out-everywhere"):
            continue
        for suffix in ("?district=cedar", "?district=../cedar", "/cedar", "?show=all&district=cedar"):
            if method == "GET":
                response = client.get(path.rstrip("/") + suffix if suffix.startswith("/") else path + suffix)
            else:
                token = csrf_of(client.get("/district").text)
                response = client.post(
                    path + (suffix if suffix.startswith("?") else ""), data={"csrf": token, **tampered}
                )
            seen.append((method, path, suffix, response.status_code))
            assert "Cedar Falls" not in response.text and CEDAR_REASON not in response.text, (
                method,
                path,
                suffix,
            )
    operator_only = [s for m, p, _, s in seen if p.startswith("/operator")]
    assert operator_only and all(s in (303, 403, 404) for s in operator_only)
    assert client.get("/district").status_code == 200  # still the admin of maple


def audit_actions(portal, email: str | None = None) -> list[str]:
    engine = create_engine(portal.registry_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT action, email FROM audit_log ORDER BY id")).all()
    engine.dispose()
    return [a for a, e in rows if email is None or e == email]


def test_secrets_are_absent_from_pages_and_the_audit_log(portal, operator, admin):
    op, secret, _ = operator
    client, link = admin
    token = link.split("token=")[1]
    pages = [op.get(p).text for p in ("/operator", "/operator/audit", "/operator/invite")]
    pages += [client.get(p).text for p in ("/district", "/district/audit")]
    engine = create_engine(portal.registry_url)
    with engine.connect() as conn:
        audit = "\n".join(str(r) for r in conn.execute(text("SELECT * FROM audit_log")).all())
        stored = "\n".join(
            str(r) for r in conn.execute(text("SELECT totp_secret, password_hash FROM accounts")).all()
        )
    engine.dispose()
    cookies = [op.cookies["portal_session"], client.cookies["portal_session"]]
    for haystack in [*pages, audit, "\n".join(portal.log)]:
        for needle in (PASSWORD, secret, token, *cookies):
            assert needle not in haystack
    assert secret not in stored and PASSWORD not in stored and "$argon2id$" in stored
    assert {"sign_in", "invite", "password_set", "sign_in_failed"} <= set(audit_actions(portal))
