"""One test per quirk and per validation rule, on small drops built in the test."""

from __future__ import annotations

import json
import zipfile

import duckdb
import pytest

from etl_project.oneroster import TABLES, FileProvenance, check_drop, load_drop
from etl_project.warehouse import DUCKDB_CONFIG
from etl_project_tests.oneroster_drops import CLEAN_11, MANIFEST_11, write_drop

DATE = "2026-11-28"


@pytest.fixture
def conn(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"), config=dict(DUCKDB_CONFIG))
    yield c
    c.close()


def load(conn, drop, **kw):
    return load_drop(conn, drop, district="lincoln", date=DATE, **kw)


def errors(report, file):
    return [(e["line"], e["column"], e["code"]) for e in report.files[file].errors]


def replace_line(file: str, old: str, new: str) -> dict[str, str]:
    text = CLEAN_11[file]
    assert old in text
    return {file: text.replace(old, new)}


# ---------------------------------------------------------------- clean drop, typed tables, replacement


def test_clean_drop_loads_typed_rows_and_replaces_the_night(conn, tmp_path):
    drop = write_drop(tmp_path / "d")
    prov = {"users.csv": FileProvenance(size=1, sha256="ab" * 32, uri="s3://b/k", version_id="v1")}
    report = load(conn, drop, provenance=prov)
    assert report.exit_code() == 0 and report.oneroster_version == "1.1"
    row = conn.execute(
        'SELECT _line, "enabledUser", "orgSourcedIds", "userIds", grades, metadata FROM oneroster.users '
        "WHERE \"sourcedId\" = 'u1'"
    ).fetchone()
    assert row == (2, True, ["s1"], ["{LDAP:1}"], ["09"], None)
    cols = [r[0] for r in conn.execute("DESCRIBE oneroster.users").fetchall()]
    assert "password" not in cols
    assert conn.execute("SELECT grades FROM oneroster.courses").fetchone()[0] == ["09", "10"]
    assert (
        conn.execute(
            'SELECT "startDate", "schoolYear" FROM oneroster.academic_sessions WHERE "sourcedId"=\'t1\''
        ).fetchone()[1]
        == 2026
    )
    assert conn.execute(
        "SELECT sha256, uri, version_id FROM oneroster.files WHERE file = 'users.csv'"
    ).fetchone() == ("ab" * 32, "s3://b/k", "v1")
    # loading the same night again replaces, never duplicates
    load(conn, drop)
    assert conn.execute("SELECT count(*) FROM oneroster.users").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM oneroster.files WHERE file = 'users.csv'").fetchone()[0] == 1
    for table in TABLES:  # every table exists even without a file (roles, user_profiles)
        conn.execute(f"SELECT _date, _line, metadata FROM oneroster.{table}")


# ---------------------------------------------------------------- quirks that must be accepted


def test_bom_crlf_no_final_newline_and_all_fields_quoted(conn, tmp_path):
    users = CLEAN_11["users.csv"].strip().split("\n")
    quoted = ['"' + '","'.join(line.split(",")) + '"' for line in users[:2]]  # u1 has no embedded commas
    quoted.append(users[2])
    data = b"\xef\xbb\xbf" + "\r\n".join(quoted).encode()
    report = load(conn, write_drop(tmp_path / "d", {"users.csv": data}))
    assert report.files["users.csv"].accepted == 2 and report.exit_code() == 0
    assert conn.execute('SELECT _line, "sourcedId" FROM oneroster.users ORDER BY 1').fetchall() == [
        (2, "u1"),
        (3, "u2"),
    ]


def test_quoted_commas_doubled_quotes_and_trimmed_lists(conn, tmp_path):
    files = replace_line(
        "classes.csv",
        "k1,,,Algebra I - 1,09,c1,ALG1-1,scheduled,101,s1,t1,Math,02052,1",
        'k1,,,"Algebra ""A"", period 1",09,c1,ALG1-1,scheduled,101,s1,t1,'
        '"Science, Physics","PHY1, AST2","1,3"',
    )
    report = load(conn, write_drop(tmp_path / "d", files))
    assert report.exit_code() == 0
    assert conn.execute(
        'SELECT title, subjects, "subjectCodes", periods FROM oneroster.classes'
    ).fetchone() == ('Algebra "A", period 1', ["Science", "Physics"], ["PHY1", "AST2"], ["1", "3"])


def test_metadata_and_unknown_columns_kept_with_warning(conn, tmp_path):
    orgs = (
        "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId,metadata.city,ext_code\n"
        "d1,,,District One,district,,,Austin,X9\ns1,,,School One,school,,d1,,\n"
    )
    report = load(conn, write_drop(tmp_path / "d", {"orgs.csv": orgs}))
    assert report.exit_code() == 0
    meta = dict(conn.execute('SELECT "sourcedId", metadata FROM oneroster.orgs').fetchall())
    assert json.loads(meta["d1"]) == {"city": "Austin", "ext_code": "X9"}
    assert meta["s1"] is None
    assert any("ext_code" in w and "metadata" in w for w in report.warnings)


def test_header_only_files_absent_files_and_case_insensitive_names(conn, tmp_path):
    header_only = CLEAN_11["demographics.csv"].split("\n")[0] + "\n"
    drop = write_drop(tmp_path / "d", {"demographics.csv": header_only, "academicSessions.csv": None})
    (drop / "academicsessions.csv").write_text(CLEAN_11["academicSessions.csv"])
    report = load(conn, drop)
    assert report.exit_code() == 0
    assert report.files["demographics.csv"].status == "loaded" and report.files["demographics.csv"].rows == 0
    assert report.files["resources.csv"].status == "absent"
    assert report.files["academicSessions.csv"].accepted == 2
    assert any("academicsessions.csv should be spelled academicSessions.csv" in w for w in report.warnings)


def test_aliases_enum_and_boolean_case_variants_normalized(conn, tmp_path):
    classes = (
        "sourcedId,status,dateLastModified,title,grade,courseSourcedId,classCode,classType,location,"
        "schoolSourcedId,termSourcedId,subjects,subjectCodes,periods\n"
        "k1,,,Algebra,09,c1,,Scheduled,,s1,t1,,,\n"
    )
    demo = CLEAN_11["demographics.csv"].replace(
        "female,false,false,false,false,true", "Female,FALSE,False,0,false,TRUE"
    )
    demo = demo.replace(",0,", ",false,")
    files = {"classes.csv": classes, "demographics.csv": demo}
    files.update({"users.csv": CLEAN_11["users.csv"].replace("u2,,,true", "u2,,,TRUE")})
    report = load(conn, write_drop(tmp_path / "d", files))
    assert report.exit_code() == 0, report.to_json()
    assert conn.execute('SELECT "classType", grades, "termSourcedIds" FROM oneroster.classes').fetchone() == (
        "scheduled",
        ["09"],
        ["t1"],
    )
    assert conn.execute("SELECT sex, white FROM oneroster.demographics").fetchone() == ("female", True)
    assert (
        conn.execute('SELECT "enabledUser" FROM oneroster.users WHERE "sourcedId"=\'u2\'').fetchone()[0]
        is True
    )


def test_status_in_bulk_accepted_and_inactive_becomes_tobedeleted(conn, tmp_path):
    files = replace_line("users.csv", "u2,,,true", "u2,inactive,2023-05-01T18:25:43.5112345+02:00,true")
    files["orgs.csv"] = CLEAN_11["orgs.csv"].replace("s1,,,", "s1,Active,2023-05-01,")
    report = load(conn, write_drop(tmp_path / "d", files))
    assert report.exit_code() == 0
    assert (
        conn.execute(
            'SELECT status, "dateLastModified" FROM oneroster.users WHERE "sourcedId"=\'u2\''
        ).fetchone()[0]
        == "tobedeleted"
    )
    status, modified = conn.execute(
        'SELECT status, "dateLastModified"::VARCHAR FROM oneroster.orgs WHERE "sourcedId"=\'s1\''
    ).fetchone()
    assert status == "active" and modified.startswith("2023-05-01 00:00:00")
    assert any("fill status although the file is bulk" in w for w in report.warnings)


def test_zip_with_all_csvs_in_one_folder(tmp_path):
    drop = write_drop(tmp_path / "d")
    archive = tmp_path / "drop.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in drop.iterdir():
            zf.write(path, f"export_2026/{path.name}")
    report = check_drop(archive)
    assert report.exit_code() == 0 and report.files["users.csv"].accepted == 2
    assert any("export_2026" in w for w in report.warnings)


def test_manifest_quirks_quoted_version_1_and_typo_row(tmp_path):
    manifest = (
        '"propertyName","value"\n"manifest.version","1"\n"oneroster.version","1.1"\n'
        + "".join(f'"file.{k}","{v}"\n' for k, v in MANIFEST_11.items() if k != "demographics")
        + '"fiel.demographics","absent"\n'
    )
    report = check_drop(write_drop(tmp_path / "d", {"demographics.csv": None}, manifest=manifest))
    assert report.exit_code() == 0
    assert any("fiel.demographics" in w and "file.demographics" in w for w in report.warnings)


# ---------------------------------------------------------------- drop-level refusals


def test_no_manifest_is_refused_naming_the_version_its_headers_show(conn, tmp_path):
    drop = write_drop(tmp_path / "d")
    (drop / "manifest.csv").unlink()
    report = load(conn, drop)
    assert report.refused and report.exit_code() == 2
    assert "look like OneRoster 1.1: add manifest.csv" in report.drop_errors[0]
    assert conn.execute("SELECT code FROM oneroster.rejects").fetchall() == [("drop_refused",)]


@pytest.mark.parametrize("version", ["1.0", "", "2.0"])
def test_unsupported_or_missing_version_refused(tmp_path, version):
    report = check_drop(write_drop(tmp_path / "d", version=version))
    assert report.refused and "oneroster.version" in report.drop_errors[0]


def test_not_a_folder_or_zip_refused(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n")
    assert check_drop(tmp_path / "x.csv").refused
    assert check_drop(tmp_path / "missing").refused


# ---------------------------------------------------------------- file-level rejects


def test_missing_required_column_rejects_the_file(tmp_path):
    users = CLEAN_11["users.csv"].replace(",username,", ",login,")
    report = check_drop(write_drop(tmp_path / "d", {"users.csv": users}))
    f = report.files["users.csv"]
    assert f.status == "rejected" and "username" in f.error and f.rows == 2 and f.rejected == 2
    assert report.exit_code() == 1
    # enrollments pointing into the rejected bulk users file are held (oneroster.md §3: a bulk set is
    # self-consistent; userSourcedId is a required reference, §5.7); the old test accepted them unchecked
    assert report.files["enrollments.csv"].accepted == 0
    assert {e["code"] for e in report.files["enrollments.csv"].errors} == {"parent_rejected"}


def test_table_prefixed_header_gets_a_hint(tmp_path):
    users = "Students.ID,Students.First_Name,Students.Last_Name,CC.ID\n1,a,b,2\n"
    f = check_drop(write_drop(tmp_path / "d", {"users.csv": users})).files["users.csv"]
    assert f.status == "rejected" and f.errors[0]["code"] == "unknown_header" and "table prefix" in f.error


def test_duplicate_header_rejects_the_file(tmp_path):
    orgs = "sourcedId,status,dateLastModified,name,type,name\nd1,,,A,district,B\n"
    f = check_drop(write_drop(tmp_path / "d", {"orgs.csv": orgs})).files["orgs.csv"]
    assert f.status == "rejected" and f.errors[0]["code"] == "duplicate_header"


def test_windows_1252_bytes_reject_the_file_naming_line_and_offset(tmp_path):
    text = CLEAN_11["users.csv"].encode().replace(b"Bob,Ray", b"Jos\xe9,Ray")
    f = check_drop(write_drop(tmp_path / "d", {"users.csv": text})).files["users.csv"]
    assert f.status == "rejected" and f.errors[0]["code"] == "not_utf8"
    offset = text.index(b"\xe9")
    assert "line 3" in f.error and f"byte offset {offset}" in f.error and "Windows-1252" in f.error


def test_manifest_and_files_disagreeing(tmp_path):
    modes = {**MANIFEST_11, "demographics": "absent", "courses": "bulk"}
    drop = write_drop(tmp_path / "d", {"courses.csv": None}, modes=modes)
    report = check_drop(drop)
    assert report.files["demographics.csv"].status == "rejected"
    assert "manifest.csv says file.demographics is absent" in report.files["demographics.csv"].error
    assert report.files["courses.csv"].status == "rejected"
    assert "not in the drop" in report.files["courses.csv"].error


# ---------------------------------------------------------------- row-level rejects


@pytest.mark.parametrize(
    ("file", "old", "new", "column", "code", "line"),
    [
        ("users.csv", "u2,,,true,s1,teacher,bob", "u2,,,true,s1,teacher,", "username", "required_missing", 3),
        ("users.csv", "u2,,,true,s1,teacher", "u2,,,true,s1,wizard", "role", "invalid_enum", 3),
        ("users.csv", "u2,,,true", "u2,,,yes", "enabledUser", "bad_boolean", 3),
        (
            "academicSessions.csv",
            "t1,,,Fall,semester,2025-08-15",
            "t1,,,Fall,semester,15/08/2025",
            "startDate",
            "bad_date",
            3,
        ),
        (
            "academicSessions.csv",
            "t1,,,Fall,semester,2025-08-15",
            "t1,,,Fall,semester,2025-08-15T10:00:00Z",
            "startDate",
            "bad_date",
            3,
        ),
        ("academicSessions.csv", "2026-06-15,,2026", "2026-06-15,,26", "schoolYear", "bad_year", 2),
        ("orgs.csv", "s1,,,", "s1,pending,,", "status", "invalid_enum", 3),
        ("enrollments.csv", "e2,,,k1,s1,u2", "e2,,,k1,s1,u9", "userSourcedId", "unknown_reference", 3),
        ("classes.csv", ",s1,t1,", ',s1,"t1,t7",', "termSourcedIds", "unknown_reference", 2),
    ],
)
def test_row_rejects(conn, tmp_path, file, old, new, column, code, line):
    files = replace_line(file, old, new)
    report = load(conn, write_drop(tmp_path / "d", files))
    assert report.exit_code() == 1
    found = errors(report, file)
    assert any(c == column and k == code for _, c, k in found), found
    rejected = conn.execute(
        'SELECT line, "sourcedId", raw FROM oneroster.rejects WHERE file = ? AND code = ?', [file, code]
    ).fetchall()
    assert rejected and rejected[0][0] == line
    assert "password" not in (rejected[0][2] or "")
    table = {
        "users.csv": "users",
        "academicSessions.csv": "academic_sessions",
        "orgs.csv": "orgs",
        "enrollments.csv": "enrollments",
        "classes.csv": "classes",
    }[file]
    assert (
        conn.execute(
            f'SELECT count(*) FROM oneroster.{table} WHERE "sourcedId" = ?', [rejected[0][1]]
        ).fetchone()[0]
        == 0
    )


def test_iso_datetimes_with_offsets_and_long_fractions_accepted(tmp_path):
    users = (
        CLEAN_11["users.csv"]
        .replace("u1,,,", "u1,active,2022-03-15T01:30:00.0000000+00:00,")
        .replace("u2,,,", "u2,active,2023-05-01T18:25:43Z,")
    )
    report = check_drop(write_drop(tmp_path / "d", {"users.csv": users}))
    assert report.files["users.csv"].accepted == 2


def test_wrong_field_count_and_duplicates(conn, tmp_path):
    users = (
        CLEAN_11["users.csv"] + "u3,,,true,s1,student,cy\n" + "u1,,,true,s1,student,ann2,,Ann,Two,,,,,,,,\n"
    )
    report = load(conn, write_drop(tmp_path / "d", {"users.csv": users}))
    found = errors(report, "users.csv")
    assert (4, None, "wrong_field_count") in found
    dups = [e for e in report.files["users.csv"].errors if e["code"] == "duplicate_sourced_id"]
    assert sorted(e["line"] for e in dups) == [2, 5]
    assert "line(s) 5" in next(e["message"] for e in dups if e["line"] == 2)
    assert conn.execute('SELECT "sourcedId" FROM oneroster.users').fetchall() == [("u2",)]
    # u1 rejected -> its enrollment and demographics cascade as parent_rejected
    assert "parent_rejected" in {e["code"] for e in report.files["enrollments.csv"].errors}
    assert report.files["demographics.csv"].errors[0]["code"] == "parent_rejected"


def test_references_to_delta_or_absent_files_not_checked(tmp_path):
    modes = {**MANIFEST_11, "users": "delta"}
    users = CLEAN_11["users.csv"].replace("u2,,,", "u2,active,2026-01-01T00:00:00Z,")
    enroll = CLEAN_11["enrollments.csv"].replace("e2,,,k1,s1,u2", "e2,,,k1,s1,u77")
    report = check_drop(
        write_drop(tmp_path / "d", {"users.csv": users, "enrollments.csv": enroll}, modes=modes)
    )
    assert report.files["enrollments.csv"].rejected == 0


def test_dangling_optional_references_are_warnings(tmp_path):
    orgs = CLEAN_11["orgs.csv"].replace("s1,,,School One,school,NCES1,d1", "s1,,,School One,school,NCES1,zz")
    report = check_drop(write_drop(tmp_path / "d", {"orgs.csv": orgs}))
    assert report.exit_code() == 0
    assert any("parentSourcedId" in w and "'zz'" in w for w in report.warnings)


def test_version_1_2_with_roles_and_user_profiles(conn, tmp_path):
    users = (
        "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,"
        "email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,preferredGivenName,"
        "preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns\n"
        "u1,,,true,ann,,Ann,Lee,,,,,,,09,,M1,Annie,,,s1,she/her\n"
        "u2,,,true,bob,,Bob,Ray,,,,,,,,,,,,,s1,\n"
    )
    roles = (
        "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,"
        "userProfileSourcedId\nr1,,,u1,primary,student,,,s1,p1\nr2,,,u2,primary,Teacher,,,s1,\n"
        "r3,,,u2,secondary,administrator,,,s1,\n"
    )
    profiles = (
        "sourcedId,status,dateLastModified,userSourcedId,profileType,vendorId,applicationId,description,"
        "credentialType,username,password\np1,,,u1,SYSTEM,V1,,,login,ann,pw\n"
    )
    modes = {**MANIFEST_11, "roles": "bulk", "userProfiles": "bulk"}
    drop = write_drop(
        tmp_path / "d",
        {"users.csv": users, "roles.csv": roles, "userProfiles.csv": profiles},
        modes=modes,
        version="1.2",
    )
    report = load(conn, drop)
    assert report.oneroster_version == "1.2"
    assert errors(report, "roles.csv") == [(4, "role", "invalid_enum")]  # 1.2 has no plain "administrator"
    assert (
        conn.execute("SELECT role FROM oneroster.roles WHERE \"sourcedId\"='r2'").fetchone()[0] == "teacher"
    )
    assert conn.execute(
        'SELECT "preferredGivenName", "orgSourcedIds" FROM oneroster.users WHERE "sourcedId"=\'u1\''
    ).fetchone() == ("Annie", None)
    assert conn.execute('SELECT "credentialType" FROM oneroster.user_profiles').fetchone()[0] == "login"
