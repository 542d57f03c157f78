"""An operator creates a new district and invites its admin in one form, over a real uvicorn subprocess:
the district is registered "not connected" (no source), shown so to the operator, `etl-project status` and
its admin; CSRF, operator-only access and TOTP are enforced; bad ids, zones and taken ids are refused."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys

import pytest

from etl_project.registry.store import Registry
from etl_project_tests import test_portal_security as security
from etl_project_tests.test_portal_security import ADMIN, PASSWORD, accept, audit_actions, csrf_of, post

portal, operator = security.portal, security.operator  # the fixtures: a portal of its own, its operator

NEW = "/operator/districts/new"
BIRCH = {"district": "birch", "name": "Birch Valley Schools", "timezone": "America/Denver"}
BIRCH_ADMIN = "it.admin@birch.example.org"


def create(client, **fields) -> object:
    return post(client, NEW, {**BIRCH, "email": BIRCH_ADMIN, "delivery": "show", **fields})


@pytest.fixture(scope="module")
def birch(portal, operator):
    """birch created by the operator; its admin's one-time link as the page showed it."""
    op, _, _ = operator
    form = op.get(NEW)
    assert form.status_code == 200 and "America/Denver" in form.text
    made = create(op)
    assert made.status_code == 200, made.text
    assert f"{BIRCH_ADMIN} is invited as an administrator of birch" in made.text
    return re.search(r'id="invite-link">([^<]+)<', made.text).group(1)


def test_the_new_district_is_registered_without_a_source_and_shown_not_connected(portal, operator, birch):
    op, _, _ = operator
    entry = Registry(portal.registry_url, portal.env).entry("birch")
    district = entry.district
    assert (district.name, district.timezone, district.enabled) == (BIRCH["name"], "America/Denver", True)
    assert district.source.kind == "none" and entry.secret_fields == ()
    rows = op.get("/operator").text
    row = re.search(r'<tr class="district ([^"]+)" data-district="birch">(.*?)</tr>', rows, re.S)
    assert row.group(1) == "not-connected" and "(overdue)" not in row.group(2)
    assert "Birch Valley" not in op.get("/operator?show=late").text
    assert "Birch Valley" not in op.get("/operator?show=failing").text
    assert {"district_created", "invite"} <= set(audit_actions(portal))

    status = subprocess.run(
        [sys.executable, "-m", "etl_project.cli.main", "status", "--json"],
        env={**os.environ, **portal.env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert status.returncode == 1, status.stderr  # cedar is failing; birch needs no attention
    (row,) = [r for r in json.loads(status.stdout) if r["district"] == "birch"]
    assert (row["source_kind"], row["health"], row["needs_attention"]) == ("none", "not connected", False)
    assert row["next_night_overdue"] is False


def test_its_admin_accepts_and_is_asked_to_connect_a_source(portal, birch):
    client = portal.client()
    assert accept(client, birch).status_code == 303
    home = client.get("/district")
    assert "Birch Valley Schools" in home.text and 'id="health">not connected<' in home.text
    source = client.get("/district/source")
    assert 'id="not-connected"' in source.text and 'id="test"' not in source.text
    tested = post(client, "/district/source/test", {}, page="/district/source")
    assert tested.status_code == 200 and "Nothing to test yet" in tested.text


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"district": "Birch Two"}, "invalid district id 'Birch Two'"),
        ({"district": "../cedar"}, "invalid district id '../cedar'"),
        ({"district": "elm", "timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"district": "maple"}, "District maple exists already"),
        ({"district": "elm", "name": ""}, "Enter the district's name"),
        ({"district": "elm", "email": "not-an-address"}, "Enter the admin's e-mail address"),
        ({"district": "elm", "email": ADMIN.replace("maple", "elm"), "name": "x\ny"}, "one line"),
    ],
)
def test_bad_forms_are_refused_and_register_nothing(portal, operator, fields, why):
    op, _, _ = operator
    before = set(Registry(portal.registry_url, portal.env).all())
    refused = create(op, **fields)
    assert refused.status_code == 400 and why in html.unescape(refused.text)
    assert set(Registry(portal.registry_url, portal.env).all()) == before


def test_only_a_signed_in_operator_with_totp_creates_a_district_with_a_csrf_token(portal, operator, birch):
    op, _, _ = operator
    registry = Registry(portal.registry_url, portal.env)
    token = csrf_of(op.get(NEW).text)
    fields = {**BIRCH, "district": "elm", "email": "it@elm.example.org"}
    assert op.post(NEW, data=fields).status_code == 403  # no token
    assert op.post(NEW, data={**fields, "csrf": "0" * 64}).status_code == 403
    foreign = op.post(NEW, data={**fields, "csrf": token}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403

    admin = portal.client()  # birch's own admin, signed in: a district admin creates no district
    assert post(admin, "/sign-in", {"email": BIRCH_ADMIN, "password": PASSWORD}).status_code == 303
    assert admin.get(NEW).status_code == 303
    assert post(admin, NEW, fields, page="/district").status_code == 403

    half = portal.client()  # the operator's password without the TOTP code
    assert post(half, "/sign-in", {"email": "operator@localhost", "password": PASSWORD}).status_code == 303
    assert half.get(NEW).status_code == 303
    assert post(half, NEW, fields, page="/totp").status_code == 403
    assert "elm" not in registry.all()
