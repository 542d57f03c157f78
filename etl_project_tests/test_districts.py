import pytest

from etl_project.districts import (
    DistrictConfigError,
    LocalSource,
    MissingSecret,
    SftpSource,
    load_districts,
    resolve_secret,
    to_toml,
)

CONFIG = """
[districts.lincoln]
name = "Lincoln Public Schools"
timezone = "America/Chicago"
[districts.lincoln.source]
kind = "sftp"
host = "sftp.example"
port = 2222
username = "etl"
password_env = "LINCOLN_PW"
host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGs"
remote_dir = "/outbox"

[districts.lincoln.thresholds]
hold = "deactivations"
deactivate = "5%"
[districts.lincoln.thresholds.enrollments]
deactivate = 2000

[districts.demo.source]
kind = "local"
path = "/srv/drops/demo"
"""


def test_loads_sftp_and_local_districts(tmp_path):
    path = tmp_path / "districts.toml"
    path.write_text(CONFIG)
    districts = load_districts(path)
    assert isinstance(districts["lincoln"].source, SftpSource)
    assert districts["lincoln"].source.port == 2222
    assert districts["lincoln"].timezone == "America/Chicago"
    assert districts["demo"].source == LocalSource(path="/srv/drops/demo")
    assert load_districts(tmp_path / "x.toml") == {}


def test_round_trips_through_toml(tmp_path):
    path = tmp_path / "districts.toml"
    path.write_text(CONFIG)
    first = load_districts(path)
    path.write_text(to_toml(first))
    assert load_districts(path) == first


@pytest.mark.parametrize(
    "snippet, message",
    [
        ('password = "hunter2"', "must not be written in the config file"),
        ('host_key = ""', "host_key is required"),
    ],
)
def test_plain_secrets_and_unpinned_hosts_are_refused(tmp_path, snippet, message):
    text = CONFIG.replace('host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGs"', "").replace(
        'password_env = "LINCOLN_PW"', 'password_env = "LINCOLN_PW"\n' + snippet
    )
    if "host_key" not in snippet:
        text = text.replace('remote_dir = "/outbox"', 'remote_dir = "/outbox"\nhost_key = "ssh-ed25519 AAAA"')
    path = tmp_path / "districts.toml"
    path.write_text(text)
    with pytest.raises(DistrictConfigError, match=message) as info:
        load_districts(path)
    assert "hunter2" not in str(info.value)


def test_bad_district_id_and_time_zone_are_refused(tmp_path):
    path = tmp_path / "districts.toml"
    path.write_text('[districts."Bad|Id".source]\nkind = "local"\npath = "/x"\n')
    with pytest.raises(DistrictConfigError, match="invalid district id"):
        load_districts(path)
    path.write_text(
        '[districts.ok]\ntimezone = "Mars/Olympus"\n[districts.ok.source]\nkind = "local"\npath = "/x"\n'
    )
    with pytest.raises(DistrictConfigError, match="unknown time zone"):
        load_districts(path)


def test_secrets_resolve_from_the_environment_only(monkeypatch):
    monkeypatch.setenv("LINCOLN_PW", "s3cret")
    assert resolve_secret("LINCOLN_PW", "lincoln password") == "s3cret"
    monkeypatch.delenv("LINCOLN_PW")
    with pytest.raises(MissingSecret, match="LINCOLN_PW is not set") as info:
        resolve_secret("LINCOLN_PW", "lincoln password")
    assert "s3cret" not in str(info.value)
