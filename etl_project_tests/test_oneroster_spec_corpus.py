"""The OneRoster CSV binding's own tables as a test corpus: one conformant drop per version, then one clause
at a time broken, each with the verdict the spec gives.

Columns and their order come from the column tables of /work/shared/docs/oneroster.md (§5 for 1.1, §8.2 for
the 1.2 files); example values are the ones the spec text quotes there: `{LDAP:12},{LTI:15},{Fed:23}` and
`"09,10,11"` (§1.1), `2012-04-23T18:25:43.511Z` (§1.1 DateTime), `"1,3,5"` (§5.5 periods), `she/her/hers`
(§8.2), the vocabularies of §6. Where the spec leaves the verdict open the choice is in
docs/validation-policy.md and the test says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_project.oneroster import check_drop

ORGS = (
    "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId",
    ["d1,,,Lincoln District,district,,", "s1,,,Lincoln High,school,NCES-0001,d1"],
)
SESSIONS = (
    "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear",
    ["y1,,,2025-2026,schoolYear,2025-08-15,2026-06-15,,2026", "t1,,,Fall,term,2025-08-15,2026-01-10,y1,2026"],
)
COURSES = (
    "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,"
    "subjectCodes",
    ['c1,,,y1,Physics,PHY1,"09,10,11",d1,"Science,Physics","03151,03152"'],
)
CLASSES = (
    "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,"
    "schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods",
    ['k1,,,Physics - 1,"09,10,11",c1,PHY1-1,scheduled,Room 101,s1,t1,Science,03151,"1,3,5"'],
)
USERS_11 = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,"
    "middleName,identifier,email,sms,phone,agentSourcedIds,grades,password",
    [
        'u1,,,true,s1,student,ann,"{LDAP:12},{LTI:15},{Fed:23}",Ann,Lee,Marie,1001,ann@x.org,,,p1,09,',
        "u2,,,true,s1,teacher,bob,{LDAP:13},Bob,Ray,,2002,bob@x.org,,555-0100,,,",
        "p1,,,false,s1,parent,pat,,Pat,Lee,,,,,,u1,,",
    ],
)
USERS_12 = (
    "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,"
    "email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,preferredGivenName,"
    "preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns",
    [
        'u1,,,true,ann,"{LDAP:12},{LTI:15},{Fed:23}",Ann,Lee,Marie,1001,ann@x.org,,,,09,,M-1,Annie,,,s1,'
        "she/her/hers",
        "u2,,,true,bob,{LDAP:13},Bob,Ray,,2002,bob@x.org,,,,,,,,,,s1,",
    ],
)
DEMOGRAPHICS = (
    "sourcedId,status,dateLastModified,birthDate,sex,americanIndianOrAlaskaNative,asian,blackOrAfricanAmerican,"
    "nativeHawaiianOrOtherPacificIslander,white,demographicRaceTwoOrMoreRaces,hispanicOrLatinoEthnicity,"
    "countryOfBirthCode,stateOfBirthAbbreviation,cityOfBirth,publicSchoolResidenceStatus",
    ["u1,,,2010-04-02,female,false,false,false,false,true,false,false,US,TX,Austin,"],
)
ENROLLMENTS = (
    "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,"
    "endDate",
    ["e1,,,k1,s1,u1,student,false,2025-08-15,2026-01-10", "e2,,,k1,s1,u2,teacher,true,,"],
)
ROLES = (
    "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,"
    "userProfileSourcedId",
    ["r1,,,u1,primary,student,2025-08-15,,s1,up1", "r2,,,u2,primary,teacher,,,s1,"],
)
USER_PROFILES = (
    "sourcedId,status,dateLastModified,userSourcedId,profileType,vendorId,applicationId,description,"
    "credentialType,username,password",
    ["up1,,,u1,SIS,vendor-1,app-1,Reading app login,username,ann,"],
)

SET_11 = {
    "orgs.csv": ORGS,
    "academicSessions.csv": SESSIONS,
    "courses.csv": COURSES,
    "classes.csv": CLASSES,
    "users.csv": USERS_11,
    "demographics.csv": DEMOGRAPHICS,
    "enrollments.csv": ENROLLMENTS,
}
SET_12 = {**SET_11, "users.csv": USERS_12, "roles.csv": ROLES, "userProfiles.csv": USER_PROFILES}
FILES_11 = [
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItems",
    "orgs",
    "resources",
    "results",
    "users",
]
FILES_12 = [
    *FILES_11,
    "lineItemLearningObjectiveIds",
    "lineItemScoreScales",
    "resultLearningObjectiveIds",
    "resultScoreScales",
    "roles",
    "scoreScales",
    "userProfiles",
    "userResources",
]


def write(folder: Path, version: str, tables: dict, modes: dict[str, str] | None = None) -> Path:
    """A drop with a manifest listing every file of the version (§2: one file.<name> row per data file)."""
    folder.mkdir(parents=True)
    rows = ["propertyName,value", "manifest.version,1.0", f"oneroster.version,{version}"]
    for name in FILES_12 if version == "1.2" else FILES_11:
        mode = (modes or {}).get(name) or ("bulk" if f"{name}.csv" in tables else "absent")
        rows.append(f"file.{name},{mode}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    for file, (header, lines) in tables.items():
        (folder / file).write_text("\n".join([header, *lines]) + "\n")
    return folder


def with_row(tables: dict, file: str, old: str, new: str) -> dict:
    header, lines = tables[file]
    assert any(old in line for line in lines), (file, old)
    return {**tables, file: (header, [line.replace(old, new) for line in lines])}


@pytest.mark.parametrize(("version", "tables"), [("1.1", SET_11), ("1.2", SET_12)])
def test_the_spec_tables_load_clean_without_a_warning(tmp_path, version, tables):
    # §5 / §8.2 column tables, §1 header rules, §2 manifest: a conformant set has nothing to reject or warn
    report = check_drop(write(tmp_path / "d", version, tables))
    assert report.exit_code() == 0, report.to_json()
    assert report.warnings == []
    for file, (_, lines) in tables.items():
        f = report.files[file]
        assert (f.status, f.rows, f.accepted, f.rejected) == ("loaded", len(lines), len(lines), 0), file


def test_the_spec_delta_form_loads(tmp_path):
    # §3: every delta row carries status (active | tobedeleted) and dateLastModified (§1.1 DateTime example)
    stamp = "2012-04-23T18:25:43.511Z"
    header = ENROLLMENTS[0]
    delta = (
        header,
        [f"e1,active,{stamp},k1,s1,u1,student,false,,", f"e2,tobedeleted,{stamp},k1,s1,u2,teacher,,,"],
    )
    report = check_drop(
        write(tmp_path / "d", "1.1", {**SET_11, "enrollments.csv": delta}, {"enrollments": "delta"})
    )
    assert report.exit_code() == 0 and report.warnings == []


@pytest.mark.parametrize(
    ("version", "file", "old", "new", "column", "code", "clause"),
    [
        ("1.1", "enrollments.csv", "u1,student", "u1,aide", "role", "invalid_enum", "§5.7 role"),
        ("1.1", "academicSessions.csv", "-15,,2026", "-15,,2025-2026", "schoolYear", "bad_year", "§5.3"),
        ("1.1", "academicSessions.csv", "-15,2026-01-10,", "-15,,", "endDate", "required_missing", "§5.3"),
        ("1.1", "users.csv", "u2,,,true", "u2,,,yes", "enabledUser", "bad_boolean", "§1.1 Boolean"),
        ("1.1", "users.csv", "s1,teacher", "s1,instructor", "role", "invalid_enum", "§5.6"),
        ("1.1", "classes.csv", "scheduled", "lecture", "classType", "invalid_enum", "§5.5"),
        ("1.1", "classes.csv", ",s1,t1,", ",s1,t9,", "termSourcedIds", "unknown_reference", "§7"),
        ("1.1", "courses.csv", ",d1,", ",d9,", "orgSourcedId", "unknown_reference", "§7"),
        ("1.1", "demographics.csv", "u1,,,", "u9,,,", "sourcedId", "unknown_reference", "§5.8"),
        ("1.1", "demographics.csv", "2010-04-02", "04/02/2010", "birthDate", "bad_date", "§1.1 Date"),
        ("1.2", "roles.csv", "primary,teacher", "primary,administrator", "role", "invalid_enum", "§6"),
        ("1.2", "roles.csv", "r2,,,u2,primary", "r2,,,u2,main", "roleType", "invalid_enum", "§8.2 roles"),
        ("1.2", "roles.csv", "teacher,,,s1", "teacher,,,", "orgSourcedId", "required_missing", "§8.2 roles"),
        ("1.2", "userProfiles.csv", ",vendor-1,", ",,", "vendorId", "required_missing", "§8.2 userProfiles"),
        ("1.2", "userProfiles.csv", "up1,,,u1", "up1,,,u7", "userSourcedId", "unknown_reference", "§7"),
    ],
)
def test_a_broken_clause_rejects_the_row(tmp_path, version, file, old, new, column, code, clause):
    tables = with_row(SET_12 if version == "1.2" else SET_11, file, old, new)
    report = check_drop(write(tmp_path / "d", version, tables))
    assert (column, code) in {(e["column"], e["code"]) for e in report.files[file].errors}, clause


@pytest.mark.parametrize(
    ("version", "file", "old", "new", "clause"),
    [
        # §6: 1.2 vocabularies marked extensible take ext: values
        ("1.2", "orgs.csv", "school,NCES", "ext:campus,NCES", "§6 ext:"),
        # §6: 1.2 adds other and unspecified to demographics.sex
        ("1.2", "demographics.csv", "female", "unspecified", "§6 sex"),
        # §8.1: 1.2.0 had users.resourceSourcedIds; 1.2.1 removed it: either user header is a 1.2 header
        ("1.2", "users.csv", "", "", "§8.1 resourceSourcedIds"),
        # §1: quoting a field that does not need it is allowed
        ("1.1", "orgs.csv", "d1,,,Lincoln District", '"d1","","","Lincoln District"', "§1 CSV dialect"),
    ],
)
def test_a_spec_variant_is_accepted(tmp_path, version, file, old, new, clause):
    tables = SET_12 if version == "1.2" else SET_11
    if clause.startswith("§8.1"):
        header, lines = USERS_12
        header = header.replace(",userMasterIdentifier,", ",userMasterIdentifier,resourceSourcedIds,")
        # one empty field more between userMasterIdentifier and primaryOrgSourcedId (all empty in between)
        lines = [
            line.replace(",M-1,", ",M-1,,") if ",M-1," in line else line.replace(",s1,", ",,s1,")
            for line in lines
        ]
        tables = {**tables, "users.csv": (header, lines)}
    else:
        tables = with_row(tables, file, old, new)
    report = check_drop(write(tmp_path / "d", version, tables))
    assert report.exit_code() == 0 and report.files[file].rejected == 0, (clause, report.to_json())
