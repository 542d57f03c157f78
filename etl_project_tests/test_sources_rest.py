"""The OneRoster REST source against the local OneRoster REST server (fixtures/oneroster_rest.py).

Waits are recorded, never slept: the source gets a fake ``sleep``. HTTP details the libraries own (Link
header parsing: httpx; OAuth 1.0a base strings: authlib; back-off arithmetic: tenacity) are not retested here;
what the server saw is.
"""

from __future__ import annotations

import csv
import logging
import threading
from pathlib import Path

import duckdb
import pytest

from etl_project.archive.local import LocalArchive
from etl_project.districts import District, DistrictConfigError, RestSource, load_districts
from etl_project.oneroster.load import load_drop
from etl_project.sources import (
    DropSource,
    RestCredentials,
    SourceAuthenticationFailed,
    SourceConnectionError,
    open_source,
)
from etl_project.sources.rest import RestDropSource
from etl_project.sources.rest_client import (
    TOKEN_LEEWAY,
    RestClient,
    RestHttpError,
    RetryPolicy,
    parse_retry_after,
)
from etl_project.warehouse import DUCKDB_CONFIG
from etl_project_tests.fixtures.oneroster_rest import CLIENT_ID, CLIENT_SECRET, COLLECTION_FILES, Fault

NIGHT = "2026-11-28"
ENTITY_TABLES = ("orgs", "academic_sessions", "courses", "classes", "users", "enrollments", "demographics")


class FakeTime:
    """Records the waits the code under test asks for instead of sleeping."""

    def __init__(self):
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def rest_source(server, version="1.2", **overrides) -> RestSource:
    auth = overrides.pop("auth", "oauth2")
    return RestSource(
        base_url=server.url(version),
        client_id=CLIENT_ID,
        version=version,
        auth=auth,
        token_url=server.token_url if auth == "oauth2" else None,
        client_secret_env="TEST_REST_SECRET",
        page_size=overrides.pop("page_size", 25),
        timeout=overrides.pop("timeout", 10.0),
        **overrides,
    )


def make_source(
    server, fake: FakeTime | None = None, *, secret=CLIENT_SECRET, retry=None, **kw
) -> RestDropSource:
    fake = fake or FakeTime()
    return RestDropSource(
        RestClient(
            rest_source(server, **kw),
            RestCredentials(CLIENT_ID, secret),
            retry=retry or RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0, max_elapsed=60.0),
            sleep=fake.sleep,
        )
    )


def pull(source: RestDropSource, dest: Path):
    listing = source.find_drop(NIGHT)
    return listing, source.fetch(listing, dest)


def csv_ids(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row["sourcedId"] for row in csv.DictReader(f)]


def assert_no_secret(text: str, server) -> None:
    assert CLIENT_SECRET not in text
    for token in server.issued:
        assert token not in text


# ------------------------------------------------------------------------------------------ round trips


def _load(drop: Path, tmp_path: Path, name: str):
    conn = duckdb.connect(str(tmp_path / f"{name}.duckdb"), config=dict(DUCKDB_CONFIG))
    report = load_drop(conn, drop, district="lincoln", date=NIGHT)
    return conn, report


def _rows(conn, table: str, columns: str = "* EXCLUDE (_date, _line)") -> list[tuple]:
    return sorted(conn.execute(f"SELECT {columns} FROM oneroster.{table}").fetchall(), key=repr)


@pytest.mark.parametrize("auth", ["oauth2", "oauth1"])
def test_v11_pull_archives_and_loads_exactly_the_generated_rows(
    oneroster_rest, oneroster_rest_drop, tmp_path, auth
):
    oneroster_rest.auth = auth
    source = make_source(oneroster_rest, version="1.1", auth=auth)
    listing, fetched = pull(source, tmp_path / "scratch")
    assert listing.kind == "rest" and listing.location == oneroster_rest.url("1.1")

    names = {f.name for f in fetched}
    assert {*COLLECTION_FILES.values(), "manifest.csv"} <= names
    assert "raw__users__0001.json" in names and "raw__enrollments__0002.json" in names
    for f in fetched:
        assert Path(f.local_path).stat().st_size == f.size
        assert CLIENT_SECRET not in f.source_path and "oauth_" not in f.source_path
    with open(tmp_path / "scratch" / "users.csv", encoding="utf-8") as f:
        assert f.readline().strip() == (
            "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,"
            "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password"
        )

    archive = LocalArchive(tmp_path / "archive")
    archive.put_snapshot("lincoln", NIGHT, fetched, source.info)
    snap = archive.download_snapshot("lincoln", NIGHT, str(tmp_path / "restored"))
    assert snap.source.kind == "rest"
    assert "users.csv" in snap.oneroster_files

    got, report = _load(tmp_path / "restored", tmp_path, "rest")
    want, _ = _load(oneroster_rest_drop.path, tmp_path, "generated")
    assert report.exit_code() == 0, report.to_json()
    assert report.oneroster_version == "1.1"
    assert not report.warnings, report.warnings  # raw pages are not reported as stray files
    assert got.execute("SELECT count(*) FROM oneroster.rejects").fetchone()[0] == 0
    for table in ENTITY_TABLES:
        assert _rows(got, table) == _rows(want, table), table
    assert len(_rows(got, "users")) == oneroster_rest_drop.files["users.csv"].rows


def test_v12_pull_writes_the_12_header_and_roles_from_users(oneroster_rest, oneroster_rest_drop, tmp_path):
    source = make_source(oneroster_rest, version="1.2", page_size=40)
    _, fetched = pull(source, tmp_path / "scratch")
    assert "roles.csv" in {f.name for f in fetched}
    manifest = (tmp_path / "scratch" / "manifest.csv").read_text()
    assert "oneroster.version,1.2" in manifest and "file.roles,bulk" in manifest

    got, report = _load(tmp_path / "scratch", tmp_path, "rest12")
    want, _ = _load(oneroster_rest_drop.path, tmp_path, "generated")
    assert report.exit_code() == 0, report.to_json()
    assert report.oneroster_version == "1.2"
    for table in ("academic_sessions", "courses", "classes", "enrollments", "demographics"):
        assert _rows(got, table) == _rows(want, table), table
    no_meta = "* EXCLUDE (_date, _line, metadata)"
    assert _rows(got, "orgs", no_meta) == _rows(want, "orgs", no_meta)
    # the schools' metadata object came through as metadata.* columns
    meta = got.execute(
        """SELECT metadata->>'ncesId' = 'NCES' || identifier, metadata->>'grades' FROM oneroster.orgs
           WHERE type = 'school'"""
    ).fetchall()
    assert meta and all(m == (True, '["KG", "01"]') for m in meta)
    header = (tmp_path / "scratch" / "orgs.csv").read_text().splitlines()[0]
    assert header.endswith(",metadata.grades,metadata.ncesId")
    common = '"sourcedId", username, "userIds", "givenName", "familyName", email, grades, "enabledUser"'
    assert _rows(got, "users", common) == _rows(want, "users", common)
    # every 1.1 user's role at its org became a 1.2 primary role (administrator -> siteAdministrator)
    roles = _rows(got, "roles", '"userSourcedId", "roleType", role, "orgSourcedId"')
    expected = want.execute(
        """SELECT "sourcedId", 'primary',
                  CASE role WHEN 'administrator' THEN 'siteAdministrator' ELSE role END,
                  "orgSourcedIds"[1]
           FROM oneroster.users"""
    ).fetchall()
    assert roles == sorted(expected, key=repr)
    primary = got.execute("""SELECT count(*) FROM oneroster.users WHERE "primaryOrgSourcedId" IS NULL""")
    assert primary.fetchone()[0] == 0


# ------------------------------------------------------------------------------------------------ paging


@pytest.mark.parametrize(
    ("link", "total", "max_limit", "page_size"),
    [
        (True, True, None, 25),  # Link + X-Total-Count
        (False, True, None, 25),  # offset paging with X-Total-Count
        (False, False, None, 25),  # neither: until a short page
        (True, True, 10, 25),  # provider caps the limit below the page size asked for
        (False, False, 10, 25),  # capped, and no headers at all: only an empty page ends it
        (False, True, None, 1000),  # one page holds everything
    ],
)
def test_paging_reads_every_record_once(oneroster_rest, tmp_path, link, total, max_limit, page_size):
    oneroster_rest.link_headers, oneroster_rest.total_count = link, total
    oneroster_rest.max_limit = max_limit
    source = make_source(oneroster_rest, page_size=page_size)
    pages = list(source.pages("enrollments"))
    ids = [r["sourcedId"] for _, _, records in pages for r in records]
    expected = [e["sourcedId"] for e in oneroster_rest.data["1.2"]["enrollments"]]
    assert ids == expected
    step = min(page_size, max_limit or page_size)
    full_pages = -(-len(expected) // step)
    # an extra (empty) request is made only when the end cannot be known from the headers
    exact = total or len(expected) % step != 0
    assert len(oneroster_rest.requests_to("/enrollments")) == full_pages + (0 if exact else 1)


def test_link_header_is_followed_even_when_offsets_differ(oneroster_rest):
    oneroster_rest.total_count = False
    oneroster_rest.max_limit = 7
    source = make_source(oneroster_rest, page_size=50)
    ids = [r["sourcedId"] for _, _, records in source.pages("users") for r in records]
    assert ids == [u["sourcedId"] for u in oneroster_rest.data["1.2"]["users"]]
    offsets = [int(r.query["offset"]) for r in oneroster_rest.requests_to("/users")]
    assert offsets[:3] == [0, 7, 14]
    assert all(r.query["limit"] in ("50", "7") for r in oneroster_rest.requests_to("/users"))


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None


# ------------------------------------------------------------------------------------------------ retries


def test_429_waits_exactly_retry_after(oneroster_rest, tmp_path):
    oneroster_rest.faults.append(Fault("/users", status=429, retry_after="7", offset=25))
    fake = FakeTime()
    pull(make_source(oneroster_rest, fake), tmp_path)
    assert fake.sleeps == [7.0]
    assert csv_ids(tmp_path / "users.csv") == [u["sourcedId"] for u in oneroster_rest.data["1.2"]["users"]]
    statuses = [r.status for r in oneroster_rest.requests_to("/users") if r.query.get("offset") == "25"]
    assert statuses == [429, 200]


def test_5xx_is_retried_with_growing_waits(oneroster_rest, tmp_path):
    oneroster_rest.faults.append(Fault("/classes", status=503, times=2))
    oneroster_rest.faults.append(Fault("/classes", status=500, times=1))
    fake = FakeTime()
    pull(make_source(oneroster_rest, fake), tmp_path)
    assert [r.status for r in oneroster_rest.requests_to("/classes")][:4] == [503, 503, 500, 200]
    assert len(fake.sleeps) == 3 and fake.sleeps == sorted(set(fake.sleeps))
    assert csv_ids(tmp_path / "classes.csv") == [
        c["sourcedId"] for c in oneroster_rest.data["1.2"]["classes"]
    ]


def test_retries_are_bounded_and_not_permanent(oneroster_rest, tmp_path):
    oneroster_rest.faults.append(Fault("/courses", status=503, times=100))
    fake = FakeTime()
    with pytest.raises(SourceConnectionError) as err:
        pull(make_source(oneroster_rest, fake), tmp_path)
    assert not err.value.permanent
    assert "gave up after 4 attempts" in str(err.value)
    assert len(oneroster_rest.requests_to("/courses")) == 4 and len(fake.sleeps) == 3


def test_retry_after_beyond_the_time_budget_gives_up_at_once(oneroster_rest, tmp_path):
    oneroster_rest.faults.append(Fault("/orgs", status=429, retry_after="3600", times=100))
    fake = FakeTime()
    with pytest.raises(SourceConnectionError, match="retry budget"):
        pull(make_source(oneroster_rest, fake), tmp_path)
    assert fake.sleeps == []


def test_a_page_that_times_out_is_retried(oneroster_rest, tmp_path):
    release = threading.Event()
    oneroster_rest.faults.append(Fault("/enrollments", offset=50, hold=release))
    fake = FakeTime()
    try:
        source = make_source(oneroster_rest, fake, timeout=1.0)
        pull(source, tmp_path)
    finally:
        release.set()
    assert len(fake.sleeps) == 1
    assert csv_ids(tmp_path / "enrollments.csv") == [
        e["sourcedId"] for e in oneroster_rest.data["1.2"]["enrollments"]
    ]


def test_optional_demographics_forbidden_is_marked_absent(oneroster_rest, tmp_path):
    oneroster_rest.faults.append(Fault("/demographics", status=403, times=100))
    _, fetched = pull(make_source(oneroster_rest), tmp_path / "scratch")
    assert "demographics.csv" not in {f.name for f in fetched}
    assert "file.demographics,absent" in (tmp_path / "scratch" / "manifest.csv").read_text()
    _, report = _load(tmp_path / "scratch", tmp_path, "nodemo")
    assert report.exit_code() == 0


def test_a_4xx_is_permanent(oneroster_rest, tmp_path):
    oneroster_rest.faults.append(Fault("/users", status=400, times=100))
    fake = FakeTime()
    with pytest.raises(RestHttpError) as err:
        pull(make_source(oneroster_rest, fake), tmp_path)
    assert err.value.permanent and err.value.status == 400 and fake.sleeps == []


# ------------------------------------------------------------------------------------------------- tokens


def test_token_expired_mid_pull_is_renewed_once(oneroster_rest, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    oneroster_rest.faults.append(Fault("/users", offset=25, expire_tokens=True))
    source = make_source(oneroster_rest)
    pull(source, tmp_path)
    assert len(oneroster_rest.requests_to("/oauth/token")) == 2
    statuses = [r.status for r in oneroster_rest.requests_to("/users") if r.query.get("offset") == "25"]
    assert statuses == [401, 200]
    assert csv_ids(tmp_path / "users.csv") == [u["sourcedId"] for u in oneroster_rest.data["1.2"]["users"]]
    assert_no_secret(caplog.text, oneroster_rest)


def test_token_is_renewed_before_expires_in(oneroster_rest, tmp_path):
    oneroster_rest.token_lifetime = TOKEN_LEEWAY - 10  # every token is within the leeway of its expiry
    pull(make_source(oneroster_rest), tmp_path)
    gets = [r for r in oneroster_rest.log if r.method == "GET"]
    assert all(r.status == 200 for r in oneroster_rest.log)  # renewed before the server had to refuse
    assert len({r.authorization for r in gets}) == len(gets)  # a token issued for each request


def test_bad_client_secret_is_permanent_and_never_shown(oneroster_rest, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wr0ng-s3cret-value"
    fake = FakeTime()
    with pytest.raises(SourceAuthenticationFailed) as err:
        pull(make_source(oneroster_rest, fake, secret=wrong), tmp_path)
    assert err.value.permanent
    assert CLIENT_ID in str(err.value) and "invalid_client" in str(err.value)
    for text in (str(err.value), repr(err.value), caplog.text):
        assert wrong not in text and CLIENT_SECRET not in text
    assert len(oneroster_rest.requests_to("/oauth/token")) == 1 and fake.sleeps == []


def test_persistent_401_is_permanent_after_one_renewal(oneroster_rest, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    oneroster_rest.faults.append(Fault("/orgs", expire_tokens=True, times=100))
    with pytest.raises(SourceAuthenticationFailed) as err:
        pull(make_source(oneroster_rest), tmp_path)
    assert len(oneroster_rest.requests_to("/oauth/token")) == 2
    assert [r.status for r in oneroster_rest.requests_to("/orgs")] == [401, 401]
    for text in (str(err.value), caplog.text):
        assert_no_secret(text, oneroster_rest)


# ------------------------------------------------------------------------------------------------- OAuth 1


@pytest.mark.parametrize("method", [None, "HMAC-SHA1"])  # None: HMAC-SHA256, OneRoster 1.1's
def test_oauth1_signatures_are_checked_by_the_server(oneroster_rest, tmp_path, caplog, method):
    caplog.set_level(logging.DEBUG)
    oneroster_rest.auth = "oauth1"
    oneroster_rest.oauth1_methods = (method or "HMAC-SHA256",)
    oauth1 = {"auth": "oauth1", "version": "1.1", "oauth1_signature_method": method}
    with pytest.raises(SourceAuthenticationFailed) as err:
        pull(make_source(oneroster_rest, secret="not-the-secret", **oauth1), tmp_path)
    assert err.value.permanent and "not-the-secret" not in str(err.value)
    assert oneroster_rest.oauth1_failures == ["invalid signature"]
    oneroster_rest.oauth1_failures.clear()
    pull(make_source(oneroster_rest, **oauth1), tmp_path / "ok")
    assert oneroster_rest.oauth1_failures == []
    signed = [r.authorization for r in oneroster_rest.log[-3:]]
    assert all(f'oauth_signature_method="{method or "HMAC-SHA256"}"' in a for a in signed)
    assert not any(a.partition("oauth_signature=")[2] in caplog.text for a in signed)


def test_oauth1_retries_sign_each_attempt_anew(oneroster_rest, tmp_path):
    oneroster_rest.auth = "oauth1"
    oneroster_rest.faults.append(Fault("/users", status=503, offset=0))
    pull(make_source(oneroster_rest, auth="oauth1", version="1.1"), tmp_path)
    attempts = [r for r in oneroster_rest.requests_to("/users") if r.query.get("offset") == "0"][:2]
    assert [r.status for r in attempts] == [503, 200]
    assert attempts[0].authorization != attempts[1].authorization  # a fresh nonce: a replay would be refused
    assert oneroster_rest.oauth1_failures == []


def test_oauth1_provider_on_hmac_sha1_refuses_the_default_clearly(oneroster_rest, tmp_path):
    oneroster_rest.auth, oneroster_rest.oauth1_methods = "oauth1", ("HMAC-SHA1",)
    with pytest.raises(SourceAuthenticationFailed, match="signature method must be one of HMAC-SHA1"):
        pull(make_source(oneroster_rest, auth="oauth1", version="1.1"), tmp_path)


# -------------------------------------------------------------------------------------- config + dispatch


def test_rest_district_config_and_open_source(tmp_path, monkeypatch, oneroster_rest):
    path = tmp_path / "districts.toml"
    path.write_text(
        f"""
[districts.jefferson.source]
kind = "rest"
base_url = "{oneroster_rest.url("1.2")}/"
version = "1.2"
auth = "oauth2"
token_url = "{oneroster_rest.token_url}"
client_id = "{CLIENT_ID}"
client_secret_env = "JEFF_SECRET"
page_size = 50
"""
    )
    district = load_districts(path)["jefferson"]
    assert isinstance(district.source, RestSource)
    assert district.source.base_url == oneroster_rest.url("1.2") and district.source.page_size == 50
    monkeypatch.setenv("JEFF_SECRET", CLIENT_SECRET)
    with open_source(district) as source:  # secret from the environment
        assert isinstance(source, DropSource)
        assert source.find_drop(NIGHT).fingerprint
    monkeypatch.delenv("JEFF_SECRET")
    creds = RestCredentials(CLIENT_ID, CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(creds) and CLIENT_SECRET not in str(creds)
    with open_source(district, creds) as source:  # explicit credentials (the registry)
        first = source.find_drop(NIGHT)
        assert source.find_drop(NIGHT).fingerprint == first.fingerprint
        assert source.find_drop("2026-11-29").fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('base_url = "ftp://x"\nclient_id = "a"\ntoken_url = "http://t"', "http"),
        ('base_url = "http://x"\nclient_id = "a"\nversion = "1.0"\ntoken_url = "http://t"', "version"),
        ('base_url = "http://x"\nclient_id = "a"', "token_url"),
        ('base_url = "http://x"\nclient_id = "a"\nclient_secret = "oops"\ntoken_url = "http://t"', "env"),
        ('base_url = "http://x"\nauth = "oauth1"', "client_id"),
        ('base_url = "http://x"\nclient_id = "a"\nauth = "oauth1"\noauth1_signature_method = "MD5"', "HMAC"),
    ],
)
def test_rest_config_errors_are_clear(tmp_path, body, message):
    path = tmp_path / "districts.toml"
    path.write_text(f'[districts.x.source]\nkind = "rest"\n{body}\n')
    with pytest.raises(DistrictConfigError, match=message):
        load_districts(path)


def test_open_source_refuses_the_wrong_credential_type():
    from etl_project.sources import SftpCredentials, SourceConfigError

    district = District("x", "x", RestSource(base_url="http://x", client_id="a", token_url="http://t"))
    with pytest.raises(SourceConfigError):
        open_source(district, SftpCredentials(password="p"))


# ---------------------------------------------------------------------------- through the Dagster assets


def _materialize_rest_night(server, tmp_path, monkeypatch, instance, secret: str):
    from dagster import materialize

    from etl_project.archive import ArchiveResource
    from etl_project.assets.ingest import fetch_and_archive_drop
    from etl_project.assets.oneroster import oneroster_tables
    from etl_project.districts.resource import DistrictsResource
    from etl_project.partitions import DISTRICTS_PARTITION, DistrictNight
    from etl_project.warehouse import WarehouseResource

    (tmp_path / "districts.toml").write_text(
        f"""
[districts.jefferson.source]
kind = "rest"
base_url = "{server.url("1.1")}"
version = "1.1"
token_url = "{server.token_url}"
client_id = "{CLIENT_ID}"
client_secret_env = "JEFFERSON_REST_SECRET"
page_size = 100
timeout = 10
"""
    )
    monkeypatch.setenv("JEFFERSON_REST_SECRET", secret)
    instance.add_dynamic_partitions(DISTRICTS_PARTITION, ["jefferson"])
    warehouse = WarehouseResource(root=str(tmp_path / "warehouse"))
    result = materialize(
        [fetch_and_archive_drop, oneroster_tables],
        partition_key=DistrictNight(date=NIGHT, district="jefferson").key,
        instance=instance,
        resources={
            "districts": DistrictsResource(path=str(tmp_path / "districts.toml")),
            "archive": ArchiveResource(url=str(tmp_path / "archive")),
            "warehouse": warehouse,
        },
        raise_on_error=False,
    )
    return result, instance, warehouse


def test_a_rest_district_syncs_through_the_assets(
    oneroster_rest, oneroster_rest_drop, tmp_path, monkeypatch, instance
):
    result, _, warehouse = _materialize_rest_night(
        oneroster_rest, tmp_path, monkeypatch, instance, CLIENT_SECRET
    )
    assert result.success
    with warehouse.connect("jefferson") as conn:
        users = conn.execute("SELECT count(*) FROM oneroster.users").fetchone()[0]
        rejects = conn.execute("SELECT count(*) FROM oneroster.rejects").fetchone()[0]
    assert users == oneroster_rest_drop.files["users.csv"].rows and rejects == 0


def test_bad_rest_credentials_fail_the_run_once_without_showing_the_secret(
    oneroster_rest, tmp_path, monkeypatch, instance
):
    wrong = "wr0ng-dagster-s3cret"
    result, instance, _ = _materialize_rest_night(oneroster_rest, tmp_path, monkeypatch, instance, wrong)
    assert not result.success
    events = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" not in events and events.count("STEP_START") == 1
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "not retried" in failure.step_failure_data.user_failure_data.description
    logs = "\n".join(repr(entry) for entry in instance.all_logs(result.run_id))
    assert CLIENT_ID in logs and wrong not in logs and CLIENT_SECRET not in logs
    assert len(oneroster_rest.requests_to("/oauth/token")) == 1


def test_rest_district_round_trips_through_toml(tmp_path):
    from etl_project.districts import to_toml

    source = RestSource(
        base_url="https://sis.example/ims/oneroster/v1p1",
        client_id="etl",
        version="1.1",
        auth="oauth1",
        client_secret_env="SIS_SECRET",
        page_size=500,
        timeout=12.5,
    )
    district = District("jefferson", "Jefferson", source)
    path = tmp_path / "districts.toml"
    path.write_text(to_toml({"jefferson": district}))
    assert load_districts(path)["jefferson"].source == source
