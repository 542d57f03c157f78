"""Helpers to build small OneRoster drops in tests (clean 1.1 bulk set + targeted damage)."""

from __future__ import annotations

from pathlib import Path

MANIFEST_11 = {
    "academicSessions": "bulk",
    "orgs": "bulk",
    "courses": "bulk",
    "classes": "bulk",
    "users": "bulk",
    "enrollments": "bulk",
    "demographics": "bulk",
    "resources": "absent",
}

CLEAN_11 = {
    "orgs.csv": (
        "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n"
        "d1,,,District One,district,,\n"
        "s1,,,School One,school,NCES1,d1\n"
    ),
    "academicSessions.csv": (
        "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear\n"
        "y1,,,2025-2026,schoolYear,2025-08-15,2026-06-15,,2026\n"
        "t1,,,Fall,semester,2025-08-15,2026-01-10,y1,2026\n"
    ),
    "courses.csv": (
        "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,"
        "subjectCodes\n"
        'c1,,,y1,Algebra I,ALG1,"09,10",d1,Math,02052\n'
    ),
    "classes.csv": (
        "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,"
        "schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods\n"
        "k1,,,Algebra I - 1,09,c1,ALG1-1,scheduled,101,s1,t1,Math,02052,1\n"
    ),
    "users.csv": (
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,"
        "middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\n"
        "u1,,,true,s1,student,ann,{LDAP:1},Ann,Lee,,1001,ann@x.org,,,,09,secret1\n"
        "u2,,,true,s1,teacher,bob,,Bob,Ray,,2002,bob@x.org,,,,,\n"
    ),
    "demographics.csv": (
        "sourcedId,status,dateLastModified,birthDate,sex,americanIndianOrAlaskaNative,asian,"
        "blackOrAfricanAmerican,nativeHawaiianOrOtherPacificIslander,white,demographicRaceTwoOrMoreRaces,"
        "hispanicOrLatinoEthnicity,countryOfBirthCode,stateOfBirthAbbreviation,cityOfBirth,"
        "publicSchoolResidenceStatus\n"
        "u1,,,2011-04-02,female,false,false,false,false,true,false,false,US,TX,Austin,\n"
    ),
    "enrollments.csv": (
        "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,"
        "endDate\n"
        "e1,,,k1,s1,u1,student,,2025-08-15,2026-01-10\n"
        "e2,,,k1,s1,u2,teacher,true,,\n"
    ),
}


def manifest_text(modes: dict[str, str], version: str = "1.1") -> str:
    rows = ["propertyName,value", "manifest.version,1.0", f"oneroster.version,{version}"]
    rows += [f"file.{name},{mode}" for name, mode in modes.items()]
    return "\n".join(rows) + "\n"


def write_drop(
    folder: Path,
    files: dict[str, str | bytes] | None = None,
    modes: dict[str, str] | None = None,
    version: str = "1.1",
    manifest: str | bytes | None = None,
) -> Path:
    """A clean 1.1 bulk drop, with ``files`` replacing/adding files (``None`` value removes one)."""
    folder.mkdir(parents=True, exist_ok=True)
    content: dict[str, str | bytes | None] = {**CLEAN_11, **(files or {})}
    content["manifest.csv"] = (
        manifest if manifest is not None else manifest_text(modes or MANIFEST_11, version)
    )
    for name, text in content.items():
        if text is None:
            continue
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        (folder / name).write_bytes(data)
    return folder
