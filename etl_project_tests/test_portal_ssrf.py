"""The tenant host guard: every resolved address is checked; loopback, private, link-local, multicast,
unspecified and metadata addresses are refused unless ETL_PROJECT_ALLOW_PRIVATE_HOSTS allows the network.
The sources apply it on every connection with ETL_PROJECT_GUARD_SOURCES, against the real test servers on
loopback (asyncssh SFTP, the OneRoster REST server)."""

from __future__ import annotations

import ipaddress
import re

import pytest

from etl_project.portal_services.ssrf import (
    ALLOW_ENV,
    GUARD_ENV,
    UnsafeHost,
    check_address,
    check_host,
    check_url,
)
from etl_project.sources import RestClient, RestCredentials, RestDropSource, SourceConfigError, open_source
from etl_project.sources.base import SftpCredentials
from etl_project_tests.fixtures.oneroster_rest import CLIENT_ID, CLIENT_SECRET
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD
from etl_project_tests.test_sources_rest import rest_source

CREDS = SftpCredentials(password=SFTP_PASSWORD)
REFUSED = {
    "127.0.0.1": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "192.168.0.10": "private",
    "172.16.5.4": "private",
    "169.254.1.1": "link-local",
    "169.254.169.254": "metadata",
    "fd00:ec2::254": "metadata",
    "fe80::1": "link-local",
    "224.0.0.1": "multicast",
    "0.0.0.0": "unspecified",
    "::ffff:127.0.0.1": "loopback",
    "100.64.0.1": "not a public",
}


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_internal_addresses_are_refused_with_the_reason(address):
    with pytest.raises(UnsafeHost) as err:
        check_address("sis.example", ipaddress.ip_address(address), env={})
    assert REFUSED[address] in str(err.value) and ALLOW_ENV in str(err.value)


def test_public_addresses_pass_and_an_operator_can_allow_a_network():
    check_address("sis.example", ipaddress.ip_address("93.184.216.34"), env={})
    check_address("sis.example", ipaddress.ip_address("2606:2800:220:1::1"), env={})
    allow = {ALLOW_ENV: "127.0.0.1/32, 10.0.0.0/8"}
    assert check_host("127.0.0.1", 22, env=allow) == ["127.0.0.1"]
    check_address("x", ipaddress.ip_address("10.200.0.1"), env=allow)
    with pytest.raises(UnsafeHost, match=re.escape("127.0.0.2")):
        check_host("127.0.0.2", 22, env=allow)  # only the allowed network, not all of loopback


def test_every_resolved_address_is_checked_and_names_are_refused_after_resolution():
    with pytest.raises(UnsafeHost, match=r"localhost resolves to 127\.0\.0\.1, a loopback address"):
        check_host("localhost", 22, env={})
    with pytest.raises(UnsafeHost, match="metadata service"):
        check_host("metadata.google.internal", 80, env={ALLOW_ENV: "0.0.0.0/0"})
    with pytest.raises(UnsafeHost, match=re.escape("169.254.169.254")):
        check_url("http://169.254.169.254/latest/meta-data/", env={})
    with pytest.raises(UnsafeHost, match="not an http"):
        check_url("file:///etc/passwd", env={})
    with pytest.raises(UnsafeHost, match="cannot be resolved"):
        check_host("no-such-host.invalid", 22, env={})
    with pytest.raises(UnsafeHost, match="not a network"):
        check_host("127.0.0.1", 22, env={ALLOW_ENV: "loopback"})


def test_guarded_sftp_source_refuses_loopback_until_allowed(sftp_server, monkeypatch):
    monkeypatch.setenv(GUARD_ENV, "1")
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    district = sftp_server.district(remote_dir="/")
    refused = pytest.raises(SourceConfigError, match=re.escape("127.0.0.1, a loopback address"))
    with open_source(district, CREDS) as source, refused:
        source.list_drops()
    assert not sftp_server._conns  # refused before any connection
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.1/32")
    with open_source(district, CREDS) as source:
        assert source.list_drops() == []
    assert sftp_server._conns


def test_guarded_rest_source_refuses_loopback_until_allowed(oneroster_rest, monkeypatch):
    monkeypatch.setenv(GUARD_ENV, "1")
    monkeypatch.delenv(ALLOW_ENV, raising=False)

    def source() -> RestDropSource:
        return RestDropSource(
            RestClient(rest_source(oneroster_rest), RestCredentials(CLIENT_ID, CLIENT_SECRET))
        )

    with source() as src, pytest.raises(SourceConfigError, match="loopback"):
        src.list_drops()
    assert not oneroster_rest.requests_to("/token")
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.1/32")
    with source() as src:
        assert len(src.list_drops()) == 1
