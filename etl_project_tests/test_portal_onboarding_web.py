"""Onboarding in the district portal, over a real uvicorn subprocess and the OpenSSH sshd fixture: a district
admin enters SFTP credentials, tests the connection, confirms the server's fingerprint, rotates to a key,
and sees every step OK and the newest drop's report; isolation, CSRF, the SSRF guard, secrets kept out."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from sqlalchemy import create_engine, text

from etl_project.districts import District, LocalSource
from etl_project.portal.accounts import Role
from etl_project.portal.links import Links, Purpose
from etl_project.registry.db import Database
from etl_project.registry.nights import NightStates
from etl_project.registry.store import Registry
from etl_project_tests.drops import write_folder_drop
from etl_project_tests.fixtures.oneroster_rest import CLIENT_ID, CLIENT_SECRET
from etl_project_tests.portal_server import run_portal
from etl_project_tests.test_portal_security import PASSWORD, accept, post

ALLOW_LOOPBACK = {"ETL_PROJECT_ALLOW_PRIVATE_HOSTS": "127.0.0.1/32"}
SFTP_PASSWORD = "district-sftp-Pa55word-4e1c9"


def fingerprint(key_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line, computed here independently of the portal."""
    blob = base64.b64decode(key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def signed_in_admin(portal, email: str, district: str):
    token = Links(Database(portal.registry_url)).create(Purpose.INVITE, email, Role.DISTRICT_ADMIN, district)
    assert accept(portal.client(), f"/set-password?token={token}").status_code == 303
    client = portal.client()
    assert post(client, "/sign-in", {"email": email, "password": PASSWORD}).status_code == 303
    return client


def sftp_form(server, **overrides) -> dict[str, str]:
    form = {
        "kind": "sftp",
        "host": server.host,
        "port": str(server.port),
        "username": server.user,
        "remote_dir": str(server.files / "maple"),
    }
    return form | overrides


def audit_rows(portal) -> list[tuple]:
    engine = create_engine(portal.registry_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log ORDER BY id")).all()
    engine.dispose()
    return rows


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with run_portal(tmp_path_factory.mktemp("portal"), extra_env=ALLOW_LOOPBACK) as server:
        yield server


@pytest.fixture(scope="module")
def maple(portal):
    client = signed_in_admin(portal, "it.admin@maple.example.org", "maple")
    yield client
    client.close()


def test_admin_onboards_sftp_pins_the_confirmed_fingerprint_and_sees_the_report(portal, maple, openssh_sftp):
    write_folder_drop(openssh_sftp.files / "maple" / "2026-11-28")
    registry = Registry(portal.registry_url, portal.env)
    pages = []

    saved = post(maple, "/district/source", sftp_form(openssh_sftp, password=SFTP_PASSWORD))
    assert saved.status_code == 303, saved.text
    pages.append(maple.get("/district/source").text)
    assert re.search(r"Password: set, changed on \S+ by it\.admin@maple\.example\.org", pages[-1])
    assert registry.secrets("maple") == {"password": SFTP_PASSWORD}

    first = post(maple, "/district/source/test", {}, page="/district/source")
    pages.append(first.text)
    shown = re.search(r'id="server-fingerprint">([^<]+)<', first.text).group(1)
    assert shown == fingerprint(openssh_sftp.host_key_openssh)
    assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in first.text
    assert 'data-step="host_key"' in first.text and not registry.get("maple").source.host_key

    wrong = "SHA256:" + "A" * 43
    refused = post(maple, "/district/source/test", {"fingerprint": wrong}, page="/district/source")
    pages.append(refused.text)
    assert "nothing was pinned" in refused.text and not registry.get("maple").source.host_key

    pasted = f"256 {shown} root@sftp (ED25519)"  # ssh-keygen -lf's whole line, as an admin pastes it
    pinned = post(maple, "/district/source/test", {"fingerprint": pasted}, page="/district/source")
    pages.append(pinned.text)
    assert registry.get("maple").source.host_key == openssh_sftp.host_key_openssh
    assert re.search(r'class="step failed" data-step="login"', pinned.text)  # sshd takes keys only
    assert NightStates(portal.registry_url).poll("maple") is None  # no listing, no poll recorded

    key = openssh_sftp.client_key.private_openssh
    rotate = sftp_form(openssh_sftp, private_key=key)
    rotated = post(maple, "/district/source", rotate, page="/district/source")
    assert rotated.status_code == 303, rotated.text
    assert registry.secrets("maple") == {"private_key": key if key.endswith("\n") else key + "\n"}
    assert registry.get("maple").source.host_key == openssh_sftp.host_key_openssh  # same server: kept
    pages.append(maple.get("/district/source").text)
    assert "Private key: set, changed on" in pages[-1] and "Password: set" not in pages[-1]

    ok = post(maple, "/district/source/test", {}, page="/district/source")
    pages.append(ok.text)
    steps = re.findall(r'class="step (\w+)" data-step="(\w+)"', ok.text)
    names = [n for _, n in steps]
    assert all(s == "ok" for s, _ in steps) and names[-1] == "validate", steps
    assert {"host_key", "login", "list_drops", "download"} <= set(names)
    assert "Result: OK" in ok.text and "2026-11-28" in ok.text
    poll = NightStates(portal.registry_url).poll("maple")  # the test's listing is a successful poll
    assert poll.last_success_at and poll.newest_drop == "2026-11-28" and poll.last_error is None
    assert 'id="health">ok<' in maple.get("/district").text

    actions = [r.action for r in audit_rows(portal) if r.district == "maple"]
    assert actions.count("credentials_changed") == 2 and actions.count("host_key_pinned") == 1
    assert "host_key_not_pinned" in actions and actions.count("connection_test") >= 4
    key_body = key.splitlines()[1]
    haystacks = [*pages, "\n".join(portal.log), "\n".join(str(r) for r in audit_rows(portal))]
    for haystack in haystacks:
        assert SFTP_PASSWORD not in haystack and key_body not in haystack


def test_another_districts_admin_cannot_reach_or_change_this_source(portal, maple, openssh_sftp):
    form = sftp_form(openssh_sftp, username="maple-only-user", password=SFTP_PASSWORD)
    assert post(maple, "/district/source", form).status_code == 303
    registry = Registry(portal.registry_url, portal.env)
    before = registry.entry("maple")
    cedar = signed_in_admin(portal, "it.admin@cedar.example.org", "cedar")
    for path in ("/district/source", "/district/source?district=maple", "/district/source/maple"):
        assert "maple-only-user" not in cedar.get(path).text
    tampered = sftp_form(openssh_sftp, username="intruder", password="x" * 12) | {"district": "maple"}
    changed = post(cedar, "/district/source?district=maple", tampered, page="/district/source")
    assert changed.status_code == 303
    test = post(cedar, "/district/source/test", {"district": "maple"}, page="/district/source")
    assert test.status_code == 200 and "maple-only-user" not in test.text
    assert registry.entry("maple") == before
    assert registry.get("cedar").source.username == "intruder"  # the tampered form changed cedar's own
    no_csrf = cedar.post("/district/source", data=sftp_form(openssh_sftp, username="no-token"))
    assert no_csrf.status_code == 403 and registry.get("cedar").source.username == "intruder"
    cedar.close()


def test_a_loopback_host_is_refused_without_the_allow_setting(tmp_path, openssh_sftp):
    with run_portal(tmp_path, extra_env={"ETL_PROJECT_ALLOW_PRIVATE_HOSTS": ""}) as portal:
        client = signed_in_admin(portal, "it.admin@maple.example.org", "maple")
        for host in ("127.0.0.1", "localhost"):
            form = sftp_form(openssh_sftp, host=host, password=SFTP_PASSWORD)
            refused = post(client, "/district/source", form)
            assert refused.status_code == 400
            sentence = re.search(r'class="error" role="alert">([^<]+)<', refused.text).group(1)
            assert "loopback address: refused" in sentence and sentence.count(". ") == 0, sentence
            assert SFTP_PASSWORD not in refused.text
        assert Registry(portal.registry_url, portal.env).get("maple").source.kind == "local"
        assert [r.action for r in audit_rows(portal)].count("source_refused") == 2
        client.close()


def test_admin_switches_to_oneroster_rest_and_tests_it(portal, oneroster_rest):
    client = signed_in_admin(portal, "rest.admin@cedar.example.org", "cedar")
    registry = Registry(portal.registry_url, portal.env)
    registry.add(District("cedar", "Cedar Falls Schools", LocalSource("/nowhere")), replace=True)
    local = post(client, "/district/source/test", {}, page="/district/source")
    assert 'data-step="settings"' in local.text and "/nowhere" not in local.text
    form = {
        "kind": "rest",
        "base_url": oneroster_rest.url("1.2"),
        "version": "1.2",
        "auth": "oauth2",
        "token_url": oneroster_rest.token_url,
        "client_id": CLIENT_ID,
    }
    missing = post(client, "/district/source", form)
    assert missing.status_code == 400 and "Client secret is empty" in missing.text
    assert post(client, "/district/source", form | {"client_secret": CLIENT_SECRET}).status_code == 303
    source = registry.get("cedar").source
    assert (source.kind, source.base_url, source.client_id) == ("rest", oneroster_rest.url("1.2"), CLIENT_ID)
    assert registry.secrets("cedar") == {"client_secret": CLIENT_SECRET}
    shown = client.get("/district/source").text
    assert "Client secret: set, changed on" in shown and CLIENT_SECRET not in shown
    tested = post(client, "/district/source/test", {}, page="/district/source")
    steps = re.findall(r'class="step (\w+)" data-step="(\w+)"', tested.text)
    assert [n for _, n in steps][-2:] == ["download", "validate"] and all(s == "ok" for s, _ in steps), steps
    assert oneroster_rest.requests_to("/oauth/token") and 'id="report"' in tested.text
    for haystack in (tested.text, "\n".join(portal.log), "\n".join(str(r) for r in audit_rows(portal))):
        assert CLIENT_SECRET not in haystack
    client.close()
