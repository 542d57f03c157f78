"""A REST pull writes what a conformant OneRoster CSV export would: the validator has nothing to say about it.

The server serves hand-written spec-shaped 1.1 and 1.2 payloads (fixtures/oneroster_rest_examples.py); the
written drop goes through ``check_drop``, the very validator every CSV drop goes through.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from etl_project.oneroster import check_drop, load_drop
from etl_project.sources.rest import CONVERSION_REPORT
from etl_project.warehouse import DUCKDB_CONFIG
from etl_project_tests.fixtures.oneroster_rest_examples import (
    MODIFIED,
    PROFILE_PASSWORD,
    TOBEDELETED,
    example_record,
)
from etl_project_tests.test_sources_rest import make_source, pull


def _csv(drop: Path, file: str) -> dict[str, dict[str, str]]:
    with open(drop / file, newline="", encoding="utf-8") as f:
        return {row["sourcedId"]: row for row in csv.DictReader(f)}


def _pull(server, tmp_path: Path, version: str) -> tuple[Path, dict]:
    drop = tmp_path / f"drop-{version}"
    pull(make_source(server, version=version), drop)
    return drop, json.loads((drop / CONVERSION_REPORT).read_text())


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_pull_of_spec_shaped_json_validates_clean(oneroster_rest_examples, tmp_path, version):
    drop, conversion = _pull(oneroster_rest_examples, tmp_path, version)

    report = check_drop(drop)
    assert report.exit_code() == 0, report.to_json()
    assert report.warnings == []
    assert conversion["warnings"] == [] and conversion["problems"] == []
    files = ["orgs.csv", "academicSessions.csv", "courses.csv", "classes.csv", "users.csv", "enrollments.csv"]
    files += ["demographics.csv"] + (["roles.csv", "userProfiles.csv"] if version == "1.2" else [])
    for file in files:
        assert report.files[file].mode == "bulk" and report.files[file].status == "loaded", file
        assert report.files[file].rejected == 0, file
        rows = _csv(drop, file).values()
        assert rows and all(r["status"] == "" and r["dateLastModified"] == "" for r in rows), file
        assert MODIFIED not in (drop / file).read_text()

    # tobedeleted records are left out of the bulk files (a bulk file's missing record is a deletion)
    for collection, ids in TOBEDELETED.items():
        file = f"{collection}.csv"
        assert not set(ids) & set(_csv(drop, file)), file
        assert conversion["files"][file]["omitted_tobedeleted"] == ids
    served = {c: len(rs) for c, rs in oneroster_rest_examples.data[version].items()}
    assert report.files["enrollments.csv"].accepted == served["enrollments"] - 1

    sessions, enrollments = _csv(drop, "academicSessions.csv"), _csv(drop, "enrollments.csv")
    assert (sessions["ay-2026"]["startDate"], sessions["ay-2026"]["endDate"]) == ("2025-08-11", "2026-06-13")
    assert (
        sessions["t1-2026"]["endDate"] == "2026-01-17" and sessions["t1-2026"]["parentSourcedId"] == "ay-2026"
    )
    assert [enrollments[e]["primary"] for e in ("enr-1", "enr-2", "enr-3", "enr-4", "enr-5", "enr-6")] == [
        "true", "true", "false", "false", "false", "false"
    ]  # fmt: skip
    assert enrollments["enr-1"]["beginDate"] == "2025-08-11" and enrollments["enr-8"]["primary"] == ""
    users = _csv(drop, "users.csv")
    enabled = {u: users[u]["enabledUser"] for u in ("adm-1", "tch-1", "tch-2", "stu-1", "stu-2", "prt-1")}
    assert enabled == {"adm-1": "true", "tch-1": "true", "tch-2": "true", "stu-1": "true", "stu-2": "false",
                       "prt-1": "false"}  # fmt: skip
    demographics = _csv(drop, "demographics.csv")
    assert demographics["stu-2"]["birthDate"] == "2010-11-19"
    stu1, stu2 = demographics["stu-1"], demographics["stu-2"]
    races = (
        stu2["blackOrAfricanAmerican"],
        stu2["hispanicOrLatinoEthnicity"],
        stu1["hispanicOrLatinoEthnicity"],
    )
    assert races == ("true", "true", "false")
    if version == "1.1":
        assert (
            users["tch-2"]["orgSourcedIds"] == "sch-1,sch-2" and users["stu-1"]["agentSourcedIds"] == "prt-1"
        )


def test_12_roles_and_user_profiles_come_from_the_users(oneroster_rest_examples, tmp_path):
    drop, _ = _pull(oneroster_rest_examples, tmp_path, "1.2")
    users, roles, profiles = (_csv(drop, f) for f in ("users.csv", "roles.csv", "userProfiles.csv"))
    assert users["stu-1"]["preferredGivenName"] == "Avie" and users["stu-1"]["pronouns"] == "she/her/hers"
    assert users["tch-2"]["primaryOrgSourcedId"] == "sch-1"
    some = [(r["userSourcedId"], r["role"], r["orgSourcedId"]) for r in roles.values()]
    assert sorted(r for r in some if r[0] in ("adm-1", "tch-2")) == [
        ("adm-1", "districtAdministrator", "dst-1"),
        ("tch-2", "teacher", "sch-1"),
        ("tch-2", "teacher", "sch-2"),
    ]
    assert not any(r["userSourcedId"] == "stu-3" for r in roles.values())  # the tobedeleted user's roles
    (teacher_role,) = [r for r in roles.values() if r["userSourcedId"] == "tch-1"]
    assert teacher_role["beginDate"] == "2025-08-11"
    (profile,) = profiles.values()
    assert teacher_role["userProfileSourcedId"] == profile["sourcedId"]
    fields = ("userSourcedId", "profileType", "vendorId", "credentialType", "username")
    assert [profile[k] for k in fields] == ["tch-1", "lms", "instructure", "password", "jrivera"]
    assert profile["password"] == ""
    for file in drop.iterdir():  # the CSVs, and the raw pages archived as the night's record
        assert PROFILE_PASSWORD not in file.read_text(), file.name
    raw_users = json.loads((drop / "raw__users__0001.json").read_text())["users"]
    [credential] = next(u for u in raw_users if u["sourcedId"] == "tch-1")["userProfiles"][0]["credentials"]
    assert credential == {"type": "password", "username": "jrivera"}  # the rest of the page as received
    report = check_drop(drop)
    assert report.files["userProfiles.csv"].accepted == 1 and report.warnings == []


def test_values_it_cannot_convert_are_reported_by_record_and_field(oneroster_rest_examples, tmp_path):
    server = oneroster_rest_examples
    example_record(server, "1.1", "enrollments", "enr-4")["beginDate"] = "2025-08-11T07:00:00.000Z"
    example_record(server, "1.1", "enrollments", "enr-5")["primary"] = "yes"
    example_record(server, "1.1", "users", "stu-2")["enabledUser"] = 2
    example_record(server, "1.1", "demographics", "stu-1")["birthDate"] = "04/02/2010"
    example_record(server, "1.1", "academicSessions", "t2-2026")["status"] = "retired"
    drop, conversion = _pull(server, tmp_path, "1.1")

    problems = {(p["file"], p["field"], p["json_type"]): p for p in conversion["problems"]}
    assert set(problems) == {
        ("enrollments.csv", "beginDate", "string"),
        ("enrollments.csv", "primary", "string"),
        ("users.csv", "enabledUser", "number"),
        ("demographics.csv", "birthDate", "string"),
        ("academicSessions.csv", "status", "string"),
    }
    assert problems["enrollments.csv", "beginDate", "string"]["sourcedIds"] == ["enr-4"]
    assert problems["users.csv", "enabledUser", "number"]["sourcedIds"] == ["stu-2"]
    assert problems["demographics.csv", "birthDate", "string"]["sourcedIds"] == ["stu-1"]
    assert len(conversion["warnings"]) == 5
    text = json.dumps(conversion)
    assert "04/02/2010" not in text and "T07:00" not in text  # values are never copied: they may be personal

    # a non-midnight date-time keeps its date as written (with the warning); a status it does not know is
    # kept as active; the rest is written as received, and the validator rejects those rows with its reason
    assert _csv(drop, "enrollments.csv")["enr-4"]["beginDate"] == "2025-08-11"
    assert "t2-2026" in _csv(drop, "academicSessions.csv")
    conn = duckdb.connect(str(tmp_path / "w.duckdb"), config=dict(DUCKDB_CONFIG))
    report = load_drop(conn, drop, district="lincoln", date="2026-11-28")
    assert report.exit_code() == 1
    rejected = set(conn.execute('SELECT file, "sourcedId", "column", code FROM oneroster.rejects').fetchall())
    assert rejected == {
        ("enrollments.csv", "enr-5", "primary", "bad_boolean"),
        ("users.csv", "stu-2", "enabledUser", "bad_boolean"),
        ("demographics.csv", "stu-1", "birthDate", "bad_date"),
        # stu-2's enrollments and demographics lose their (rejected) user
        ("enrollments.csv", "enr-6", "userSourcedId", "parent_rejected"),
        ("enrollments.csv", "enr-8", "userSourcedId", "parent_rejected"),
        ("demographics.csv", "stu-2", "sourcedId", "parent_rejected"),
    }


def test_an_active_record_pointing_at_a_tobedeleted_one_is_reported(oneroster_rest_examples, tmp_path):
    server = oneroster_rest_examples
    example_record(server, "1.1", "enrollments", "enr-7")["status"] = "active"  # stu-3 is still tobedeleted
    example_record(server, "1.1", "orgs", "sch-2")["parent"] = {"sourcedId": "sch-9"}  # served before sch-9
    drop, conversion = _pull(server, tmp_path, "1.1")
    problems = {(p["file"], p["field"], p["problem"], *p["sourcedIds"]) for p in conversion["problems"]}
    assert problems == {
        ("enrollments.csv", "userSourcedId", "gone_reference", "enr-7"),
        ("orgs.csv", "parentSourcedId", "gone_reference", "sch-2"),
    }
    assert len(conversion["warnings"]) == 2 and all("tobedeleted" in w for w in conversion["warnings"])
    report = check_drop(drop)
    (error,) = report.files["enrollments.csv"].errors
    assert (error["column"], error["code"]) == ("userSourcedId", "unknown_reference")
    assert "stu-3" in error["message"]
    assert report.warnings == [
        "orgs.csv: 1 parentSourcedId value(s) refer to rows not in orgs.csv (e.g. 'sch-9'); kept, as "
        "parentSourcedId is optional"
    ]


def test_a_second_credential_of_a_profile_is_reported_not_written(oneroster_rest_examples, tmp_path):
    (profile,) = example_record(oneroster_rest_examples, "1.2", "users", "tch-1")["userProfiles"]
    profile["credentials"].append({"type": "sso", "username": "jose.rivera@lincoln", "password": "s3cond"})
    drop, conversion = _pull(oneroster_rest_examples, tmp_path, "1.2")
    (problem,) = conversion["problems"]
    assert (problem["file"], problem["problem"], problem["sourcedIds"]) == (
        "userProfiles.csv",
        "extra_credentials",
        ["tch-1-lms-canvas"],
    )
    (row,) = _csv(drop, "userProfiles.csv").values()
    assert (row["credentialType"], row["username"]) == ("password", "jrivera")
    text = json.dumps(conversion) + "".join(f.read_text() for f in drop.glob("*.csv"))
    assert "s3cond" not in text and PROFILE_PASSWORD not in text and "jose.rivera@lincoln" not in text
    assert check_drop(drop).exit_code() == 0
