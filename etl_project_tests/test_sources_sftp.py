"""SFTP source against real servers: asyncssh in-process (password and key auth) and OpenSSH sshd."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import asyncssh
import paramiko
import pytest

from etl_project.sources import (
    DropChanged,
    DropIncomplete,
    HostKeyMismatch,
    SftpCredentials,
    SourceAuthenticationFailed,
    SourceConfigError,
    UnknownHostKey,
    open_source,
)
from etl_project_tests.drops import write_folder_drop, write_zip_drop
from etl_project_tests.fixtures.sftp import SFTP_PASSWORD

NIGHT = "2026-11-28"
PASSWORD = SftpCredentials(password=SFTP_PASSWORD)


def outbox(server) -> Path:
    return Path(server.root) / "outbox"


def fingerprint(openssh_line: str) -> str:
    key_type, b64 = openssh_line.split()[:2]
    import base64

    return paramiko.PKey.from_type_string(key_type, base64.b64decode(b64)).fingerprint


def assert_fetched_matches(fetched, folder: Path) -> None:
    assert fetched, "nothing fetched"
    for f in fetched:
        data = (folder / f.name).read_bytes()
        assert (f.size, f.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert Path(f.local_path).read_bytes() == data


def test_password_auth_finds_and_fetches_a_dated_folder(sftp_server, tmp_path):
    folder = write_folder_drop(outbox(sftp_server) / NIGHT)
    with open_source(sftp_server.district(), PASSWORD) as source:
        assert source.info.kind == "sftp" and source.info.host == f"127.0.0.1:{sftp_server.port}"
        assert source.info.path == "/outbox"
        listing = source.find_drop(NIGHT, settle_seconds=0)
        assert (listing.kind, listing.location, listing.dated) == ("folder", f"/outbox/{NIGHT}", True)
        fetched = source.fetch(listing, str(tmp_path / "staging"))
    assert [f.source_path for f in fetched] == [
        f"/outbox/{NIGHT}/{n}" for n in ("manifest.csv", "orgs.csv", "users.csv")
    ]
    assert_fetched_matches(fetched, folder)


def test_key_auth_with_and_without_passphrase_fetches_a_dated_zip(
    sftp_server, sftp_client_key, sftp_client_key_encrypted, tmp_path
):
    zip_path = write_zip_drop(outbox(sftp_server) / "oneroster_20261128.zip")
    for key in (sftp_client_key, sftp_client_key_encrypted):
        with open_source(sftp_server.district(), key.credentials()) as source:
            listing = source.find_drop(NIGHT, settle_seconds=0)
            assert (listing.kind, listing.files[0].name) == ("zip", zip_path.name)
            fetched = source.fetch(listing, str(tmp_path / key.public_openssh[-6:]))
        assert_fetched_matches(fetched, zip_path.parent)


def test_wrong_key_passphrase_is_a_config_error_without_the_passphrase(
    sftp_server, sftp_client_key_encrypted
):
    creds = SftpCredentials(private_key=sftp_client_key_encrypted.private_openssh, passphrase="not-it-4242")
    with (
        pytest.raises(SourceConfigError, match="could not be loaded") as err,
        open_source(sftp_server.district(), creds) as source,
    ):
        source.find_drop(NIGHT, settle_seconds=0)
    assert "not-it-4242" not in str(err.value)


def test_secrets_come_from_the_environment_when_connecting(sftp_server, monkeypatch):
    write_folder_drop(outbox(sftp_server) / NIGHT)
    district = sftp_server.district()
    district = replace(district, source=replace(district.source, password_env="LINCOLN_SFTP_PASSWORD"))
    source = open_source(district)  # nothing resolved yet: the variable is not even set
    monkeypatch.setenv("LINCOLN_SFTP_PASSWORD", SFTP_PASSWORD)
    with source:
        assert source.find_drop(NIGHT, settle_seconds=0).night == NIGHT
    monkeypatch.delenv("LINCOLN_SFTP_PASSWORD")
    with (
        pytest.raises(SourceConfigError, match="LINCOLN_SFTP_PASSWORD is not set"),
        open_source(district) as s,
    ):
        s.find_drop(NIGHT, settle_seconds=0)


def test_bad_password_is_refused_without_leaking_it(sftp_server):
    secret = "hunter2-wrong-password-5521"
    with (
        pytest.raises(SourceAuthenticationFailed) as err,
        open_source(sftp_server.district(), SftpCredentials(password=secret)) as source,
    ):
        source.find_drop(NIGHT, settle_seconds=0)
    message = str(err.value)
    assert "alice@127.0.0.1" in message and "password" in message
    assert secret not in message and secret not in repr(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert err.value.permanent


def test_a_changed_host_key_is_refused_with_both_fingerprints(sftp_server):
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    district = sftp_server.district(host_key=other)
    with pytest.raises(HostKeyMismatch) as err, open_source(district, PASSWORD) as source:
        source.find_drop(NIGHT, settle_seconds=0)
    message = str(err.value)
    offered = fingerprint(sftp_server.host_key_openssh)
    assert f"127.0.0.1:{sftp_server.port}" in message and "HOST KEY CHANGED" in message
    assert fingerprint(other) in message and offered in message and err.value.offered == offered
    assert SFTP_PASSWORD not in message and err.value.permanent


def test_a_key_of_a_type_with_no_pin_is_refused_as_unknown(sftp_server):
    rsa_pin = paramiko.RSAKey.generate(2048)
    district = sftp_server.district(host_key=f"ssh-rsa {rsa_pin.get_base64()} old-server")
    with pytest.raises(UnknownHostKey) as err, open_source(district, PASSWORD) as source:
        source.find_drop(NIGHT, settle_seconds=0)
    message = str(err.value)
    assert "UNKNOWN HOST KEY" in message and f"127.0.0.1:{sftp_server.port}" in message
    assert rsa_pin.fingerprint in message and fingerprint(sftp_server.host_key_openssh) in message
    assert "ssh-ed25519" in message and SFTP_PASSWORD not in message


def test_a_second_pinned_key_of_the_same_type_is_accepted_for_rotation(sftp_server):
    write_folder_drop(outbox(sftp_server) / NIGHT)
    old = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    pins = f"{old}\n# new key from the district, 2026-11\n127.0.0.1 {sftp_server.host_key_openssh}\n"
    with open_source(sftp_server.district(host_key=pins), PASSWORD) as source:
        assert source.find_drop(NIGHT, settle_seconds=0).kind == "folder"


@pytest.mark.parametrize(
    ("pin", "problem"),
    [
        ("ssh-ed25519 !!notbase64!!", "not base64"),
        ("ssh-foo AAAAC3NzaC1lZDI1NTE5", "unsupported type"),
        ("hello", "not an"),
    ],
)
def test_malformed_pins_are_config_errors(sftp_server, pin, problem):
    with pytest.raises(SourceConfigError, match=problem):
        open_source(sftp_server.district(host_key=pin), PASSWORD)


def test_incomplete_drops_over_sftp(sftp_server):
    folder = write_folder_drop(outbox(sftp_server) / NIGHT)
    (folder / "users.csv.filepart").write_text("partial")
    with open_source(sftp_server.district(), PASSWORD) as source:
        with pytest.raises(DropIncomplete, match=r"users\.csv\.filepart"):
            source.find_drop(NIGHT, settle_seconds=0)
        (folder / "users.csv.filepart").unlink()
        (folder / "users.csv").unlink()
        with pytest.raises(DropIncomplete, match=r"lists users\.csv \(bulk\)"):
            source.find_drop(NIGHT, settle_seconds=0)


def test_the_settle_window_sees_a_file_still_growing_over_sftp(sftp_server):
    folder = write_folder_drop(outbox(sftp_server) / NIGHT)
    with open_source(sftp_server.district(), PASSWORD) as source:
        source.wait = lambda seconds: (folder / "orgs.csv").write_text("sourcedId\n" * 50)
        with pytest.raises(DropIncomplete, match=r"orgs\.csv grew"):
            source.find_drop(NIGHT, settle_seconds=30)


def test_current_drop_over_sftp_is_undated(sftp_server):
    write_folder_drop(outbox(sftp_server))
    with open_source(sftp_server.district(), PASSWORD) as source:
        listing = source.find_drop(NIGHT, settle_seconds=0)
        assert (listing.location, listing.dated, listing.night) == ("/outbox", False, NIGHT)
        assert [d.dated for d in source.list_drops()] == [False]


def test_fetch_refuses_a_file_that_changed_after_listing_over_sftp(sftp_server, tmp_path):
    folder = write_folder_drop(outbox(sftp_server) / NIGHT)
    with open_source(sftp_server.district(), PASSWORD) as source:
        listing = source.find_drop(NIGHT, settle_seconds=0)
        (folder / "users.csv").write_text(
            (folder / "users.csv").read_text() + "u7,,,true,org1,student,q,,Q,Q\n"
        )
        with pytest.raises(DropChanged, match="received"):
            source.fetch(listing, str(tmp_path / "staging"))


def test_fetch_over_sftp_hashes_a_multi_megabyte_file(sftp_server, tmp_path):
    folder = write_folder_drop(outbox(sftp_server) / NIGHT)
    rows = "".join(f"u{i},,,true,org1,student,user{i},,Given{i},Family{i}\n" for i in range(120_000))
    (folder / "users.csv").write_text((folder / "users.csv").read_text() + rows)
    with open_source(sftp_server.district(), PASSWORD) as source:
        fetched = source.fetch(source.find_drop(NIGHT, settle_seconds=0), str(tmp_path / "staging"))
    assert max(f.size for f in fetched) > 4_000_000
    assert_fetched_matches(fetched, folder)


# ------------------------------------------------------------------------------------------------ OpenSSH


def test_openssh_key_auth_finds_and_fetches(openssh_sftp, tmp_path):
    folder = write_folder_drop(openssh_sftp.files / "nightly" / "20261128")
    district = openssh_sftp.district(remote_dir=str(openssh_sftp.files / "nightly"))
    with open_source(district, openssh_sftp.client_key.credentials()) as source:
        listing = source.find_drop(NIGHT, settle_seconds=0)
        assert listing.location == str(folder)
        fetched = source.fetch(listing, str(tmp_path / "staging"))
    assert_fetched_matches(fetched, folder)


def test_openssh_key_file_from_the_district_config(openssh_sftp):
    folder = write_folder_drop(openssh_sftp.files / "by-file")
    district = openssh_sftp.district(remote_dir=str(folder))
    source = replace(
        district.source, private_key_env=None, private_key_file=str(openssh_sftp.client_key_file)
    )
    with open_source(replace(district, source=source)) as drop_source:
        assert drop_source.find_drop(NIGHT, settle_seconds=0).dated is False
    missing = replace(source, private_key_file=str(openssh_sftp.files / "nope"))
    with pytest.raises(SourceConfigError, match=r"private key file .*nope"):
        open_source(replace(district, source=missing)).list_drops()


def test_openssh_changed_host_key_is_refused(openssh_sftp):
    district = openssh_sftp.district()
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    district = replace(district, source=replace(district.source, host_key=other))
    with (
        pytest.raises(HostKeyMismatch) as err,
        open_source(district, openssh_sftp.client_key.credentials()) as s,
    ):
        s.list_drops()
    assert fingerprint(openssh_sftp.host_key_openssh) in str(err.value)
    assert "BEGIN OPENSSH PRIVATE KEY" not in str(err.value)


def test_openssh_refuses_an_unknown_client_key(openssh_sftp, sftp_client_key):
    with (
        pytest.raises(SourceAuthenticationFailed, match=rf"{openssh_sftp.user}@127\.0\.0\.1"),
        open_source(openssh_sftp.district(), sftp_client_key.credentials()) as source,
    ):
        source.list_drops()
