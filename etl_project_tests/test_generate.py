"""The synthetic OneRoster 1.1 drop generator: layout, integrity, determinism, churn, injected errors, CLI."""

from __future__ import annotations

import csv
import re
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import pytest

from etl_project.cli import main as cli_main
from etl_project.generate import ERROR_KINDS, generate_drop
from etl_project.warehouse import DUCKDB_CONFIG

STUDENTS = 1500

# OneRoster 1.1 headers, copied from the spec tables (docs/oneroster.md §5), not from the generator.
SPEC_HEADERS = {
    "orgs.csv": "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId",
    "academicSessions.csv": "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,"
    "schoolYear",
    "courses.csv": "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,"
    "orgSourcedId,"
    "subjects,subjectCodes",
    "classes.csv": "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,"
    "location,"
    "schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods",
    "users.csv": "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
    "givenName,"
    "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password",
    "enrollments.csv": "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,"
    "primary,beginDate,endDate",
    "demographics.csv": "sourcedId,status,dateLastModified,birthDate,sex,americanIndianOrAlaskaNative,asian,"
    "blackOrAfricanAmerican,nativeHawaiianOrOtherPacificIslander,white,demographicRaceTwoOrMoreRaces,"
    "hispanicOrLatinoEthnicity,countryOfBirthCode,stateOfBirthAbbreviation,cityOfBirth,"
    "publicSchoolResidenceStatus",
}


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def load(folder: Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(config=DUCKDB_CONFIG)
    for name in SPEC_HEADERS:
        table = name.removesuffix(".csv")
        conn.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_csv(?, header=true, all_varchar=true, quote='\"')",
            [str(folder / name)],
        )
    return conn


@pytest.fixture(scope="module")
def day1(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("day1")
    drop = generate_drop(out, STUDENTS, seed=7)
    assert drop.churn == {}
    return out


@pytest.fixture(scope="module")
def day2(tmp_path_factory):
    out = tmp_path_factory.mktemp("day2")
    return generate_drop(out, STUDENTS, day=2, seed=7)


def test_every_file_has_the_exact_1_1_header_and_blank_bulk_status(day1: Path):
    for name, header in SPEC_HEADERS.items():
        lines = (day1 / name).read_text(encoding="utf-8").splitlines()
        assert lines[0] == header, name
        width = len(header.split(","))
        parsed = list(csv.reader(lines[1:]))
        assert parsed, f"{name} has no data rows"
        assert {len(r) for r in parsed} == {width}, name
        assert {(r[1], r[2]) for r in parsed} == {("", "")}, f"{name}: status/dateLastModified must be blank"


def test_manifest_declares_1_1_bulk_files_and_absent_rest(day1: Path):
    with (day1 / "manifest.csv").open(newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["propertyName", "value"]
        manifest = dict(reader)
    assert manifest.pop("manifest.version") == "1.0"
    assert manifest.pop("oneroster.version") == "1.1"
    assert manifest.pop("source.systemName")
    manifest.pop("source.systemCode", None)
    bulk = {"orgs", "academicSessions", "courses", "classes", "users", "enrollments", "demographics"}
    absent = {"categories", "classResources", "courseResources", "lineItems", "resources", "results"}
    assert manifest == {f"file.{f}": "bulk" for f in bulk} | {f"file.{f}": "absent" for f in absent}
    assert sorted(p.name for p in day1.iterdir()) == sorted(["manifest.csv", *SPEC_HEADERS])


def test_referential_integrity_holds(day1: Path):
    conn = load(day1)
    orphans = {
        "enrollments->classes": "SELECT * FROM enrollments e ANTI JOIN classes c "
        "ON c.sourcedId = e.classSourcedId",
        "enrollments->users": "SELECT * FROM enrollments e ANTI JOIN users u "
        "ON u.sourcedId = e.userSourcedId",
        "enrollments->schools": "SELECT * FROM enrollments e ANTI JOIN orgs o "
        "ON o.sourcedId = e.schoolSourcedId AND o.type = 'school'",
        "classes->courses": "SELECT * FROM classes c ANTI JOIN courses k ON k.sourcedId = c.courseSourcedId",
        "classes->schools": "SELECT * FROM classes c ANTI JOIN orgs o "
        "ON o.sourcedId = c.schoolSourcedId AND o.type = 'school'",
        "classes->terms": "SELECT * FROM (SELECT unnest(string_split(termSourcedIds, ',')) AS t "
        "FROM classes) "
        "ANTI JOIN academicSessions a ON a.sourcedId = t",
        "courses->orgs": "SELECT * FROM courses c ANTI JOIN orgs o ON o.sourcedId = c.orgSourcedId",
        "courses->schoolYear": "SELECT * FROM courses c ANTI JOIN academicSessions a "
        "ON a.sourcedId = c.schoolYearSourcedId AND a.type = 'schoolYear'",
        "users->orgs": "SELECT * FROM (SELECT unnest(string_split(orgSourcedIds, ',')) AS o FROM users) "
        "ANTI JOIN orgs ON orgs.sourcedId = o",
        "demographics->users": "SELECT * FROM demographics d ANTI JOIN users u ON u.sourcedId = d.sourcedId",
        "students->demographics": "SELECT * FROM users u ANTI JOIN demographics d "
        "ON d.sourcedId = u.sourcedId "
        "WHERE u.role = 'student'",
        "orgs->parent": "SELECT * FROM orgs c ANTI JOIN orgs p ON p.sourcedId = c.parentSourcedId "
        "WHERE c.parentSourcedId IS NOT NULL",
        "enrollment school = class school": "SELECT * FROM enrollments e JOIN classes c "
        "ON c.sourcedId = e.classSourcedId WHERE c.schoolSourcedId <> e.schoolSourcedId",
    }
    for name, sql in orphans.items():
        assert conn.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0] == 0, name
    # Unique keys.
    for table, key in [("orgs", "sourcedId"), ("academicSessions", "sourcedId"), ("courses", "sourcedId"),
                       ("classes", "sourcedId"), ("users", "sourcedId"), ("users", "username"),
                       ("users", "email"), ("enrollments", "sourcedId"), ("demographics", "sourcedId"),
                       ("enrollments", "classSourcedId, userSourcedId")]:  # fmt: skip
        dupes = conn.execute(
            f"SELECT count(*) FROM (SELECT {key} FROM {table} GROUP BY ALL HAVING count(*) > 1)"
        )
        assert dupes.fetchone()[0] == 0, f"{table}.{key}"
    # Every class has exactly one primary teacher.
    bad = conn.execute(
        """SELECT count(*) FROM classes c LEFT JOIN enrollments e
           ON e.classSourcedId = c.sourcedId AND e.role = 'teacher' AND e."primary" = 'true'
           GROUP BY c.sourcedId HAVING count(e.sourcedId) <> 1"""
    ).fetchall()
    assert bad == []


def test_content_is_realistic(day1: Path):
    conn = load(day1)
    students = conn.execute("SELECT count(*) FROM users WHERE role = 'student'").fetchone()[0]
    assert students == STUDENTS
    grades = {
        g for (g,) in conn.execute("SELECT DISTINCT grades FROM users WHERE role = 'student'").fetchall()
    }
    assert grades == {"KG", *(f"{g:02d}" for g in range(1, 13))}
    teachers = conn.execute("SELECT count(*) FROM users WHERE role = 'teacher'").fetchone()[0]
    assert 18 <= students / teachers <= 22
    assert conn.execute("SELECT count(*) FROM users WHERE role = 'administrator'").fetchone()[0] >= 3
    school_types = conn.execute("SELECT type, count(*) FROM orgs GROUP BY 1 ORDER BY 1").fetchall()
    assert school_types == [("district", 1), ("school", 3)]
    assert re.fullmatch(
        r"\d{12}", conn.execute("SELECT identifier FROM orgs WHERE type='school'").fetchone()[0]
    )
    # Secondary students take about seven classes, elementary one or two.
    per_student = dict(
        conn.execute(
            """SELECT CASE WHEN u.grades IN ('KG','01','02','03','04','05') THEN 'elementary'
                      ELSE 'secondary' END,
                      avg(n)
               FROM users u JOIN (SELECT userSourcedId, count(*) n FROM enrollments GROUP BY 1) e
               ON e.userSourcedId = u.sourcedId GROUP BY 1"""
        ).fetchall()
    )
    assert 1 <= per_student["elementary"] <= 2
    assert 7 <= per_student["secondary"] <= 10
    # Multi-grade lists are quoted in the file; semester sessions sit inside the school year.
    raw = (day1 / "courses.csv").read_text(encoding="utf-8")
    assert '"09,10,11,12"' in raw
    assert '"as-2027-s1,as-2027-s2"' in (day1 / "classes.csv").read_text(encoding="utf-8")
    assert conn.execute("SELECT count(*) FROM classes WHERE classType = 'homeroom'").fetchone()[0] > 0
    sessions = dict(conn.execute("SELECT type, count(*) FROM academicSessions GROUP BY 1").fetchall())
    assert sessions == {"schoolYear": 1, "semester": 2, "gradingPeriod": 4}
    # Names: apostrophes, hyphens, non-ASCII, middle names; usernames stay ASCII.
    names = conn.execute("SELECT givenName || ' ' || familyName FROM users").fetchall()
    text = " ".join(n for (n,) in names)
    assert "'" in text and "-" in text and re.search(r"[^\x00-\x7f]", text)
    assert (
        conn.execute("SELECT count(*) FROM users WHERE middleName IS NOT NULL").fetchone()[0] > STUDENTS // 5
    )
    assert (
        conn.execute(
            "SELECT count(*) FROM users WHERE NOT regexp_full_match(username, '[a-z0-9.]+')"
        ).fetchone()[0]
        == 0
    )
    assert (
        conn.execute(
            "SELECT count(*) FROM users "
            "WHERE role='student' AND NOT regexp_full_match(userIds, '\\{SIS:\\d+\\}')"
        ).fetchone()[0]
        == 0
    )
    # Birth dates fit the grade: age on 1 Sept 2026 is grade + 5 (or + 6 when held back).
    ages = conn.execute(
        """SELECT u.grades, date_diff('year', d.birthDate::DATE, DATE '2026-09-01')
                  - CASE WHEN strftime(d.birthDate::DATE, '%m-%d') > '09-01' THEN 1 ELSE 0 END
           FROM demographics d JOIN users u USING (sourcedId)"""
    ).fetchall()
    for grade, age in ages:
        g = 0 if grade == "KG" else int(grade)
        assert age in (g + 5, g + 6), (grade, age)
    assert {s for (s,) in conn.execute("SELECT DISTINCT sex FROM demographics").fetchall()} == {
        "male",
        "female",
    }


def test_same_arguments_give_identical_bytes_and_seed_changes_them(day1: Path, tmp_path: Path):
    again = tmp_path / "again"
    generate_drop(again, STUDENTS, seed=7)
    for name in ["manifest.csv", *SPEC_HEADERS]:
        assert (again / name).read_bytes() == (day1 / name).read_bytes(), name
    other = tmp_path / "other"
    generate_drop(other, STUDENTS, seed=8)
    assert (other / "users.csv").read_bytes() != (day1 / "users.csv").read_bytes()
    assert (other / "enrollments.csv").read_bytes() != (day1 / "enrollments.csv").read_bytes()


def test_day_two_has_realistic_churn(day1: Path, day2):
    d2 = day2.path
    churn = day2.churn
    assert churn == {
        "withdrawn": 8,  # 0.5% of 1500, rounded
        "new_students": 8,
        "schedule_changes": 15,
        "renamed": 3,
        "retitled_classes": 2,
        "teacher_replacements": 3,
    }
    u1 = {r["sourcedId"]: r for r in rows(day1, "users.csv")}
    u2 = {r["sourcedId"]: r for r in rows(d2, "users.csv")}
    gone, new = u1.keys() - u2.keys(), u2.keys() - u1.keys()
    assert len(gone) == churn["withdrawn"] and all(u1[s]["role"] == "student" for s in gone)
    assert len(new) == churn["new_students"] and all(u2[s]["role"] == "student" for s in new)
    renamed = [s for s in u1.keys() & u2.keys() if u1[s] != u2[s]]
    assert len(renamed) == churn["renamed"]
    for s in renamed:
        before, after = u1[s], u2[s]
        assert after["familyName"] != before["familyName"]
        assert after["username"] != before["username"] and after["email"] != before["email"]
        assert after["givenName"] == before["givenName"] and after["identifier"] == before["identifier"]
    e1, e2 = rows(day1, "enrollments.csv"), rows(d2, "enrollments.csv")
    assert not {e["userSourcedId"] for e in e2} & gone
    assert {e["userSourcedId"] for e in e2} >= new
    assert not {s for s in gone if any(r["sourcedId"] == s for r in rows(d2, "demographics.csv"))}

    # Schedule changes: continuing students whose set of classes differs.
    def classes_of(enrollments):
        out: dict[str, set[str]] = {}
        for e in enrollments:
            out.setdefault(e["userSourcedId"], set()).add(e["classSourcedId"])
        return out

    c1, c2 = classes_of(e1), classes_of(e2)
    moved = [u for u in c1.keys() & c2.keys() if u.startswith("stu-") and c1[u] != c2[u]]
    assert len(moved) == churn["schedule_changes"]
    # The new enrollment starts on the night of the change, later than the class term start.
    later = [
        e for e in e2 if e["userSourcedId"] in moved and e["classSourcedId"] not in c1[e["userSourcedId"]]
    ]
    assert later and all(date.fromisoformat(e["beginDate"]) > date(2026, 8, 17) for e in later)
    # Retitled classes and replaced primary teachers.
    k1 = {r["sourcedId"]: r for r in rows(day1, "classes.csv")}
    k2 = {r["sourcedId"]: r for r in rows(d2, "classes.csv")}
    assert k1.keys() == k2.keys()
    assert sum(k1[k]["title"] != k2[k]["title"] for k in k1) == churn["retitled_classes"]
    t1 = {e["classSourcedId"]: e["userSourcedId"] for e in e1 if e["primary"] == "true"}
    t2 = {e["classSourcedId"]: e["userSourcedId"] for e in e2 if e["primary"] == "true"}
    assert sum(t1[k] != t2[k] for k in t1) == churn["teacher_replacements"]
    # The unchanged majority is byte-identical.
    for name in SPEC_HEADERS:
        before = set((day1 / name).read_text(encoding="utf-8").splitlines())
        after = (d2 / name).read_text(encoding="utf-8").splitlines()
        same = sum(line in before for line in after)
        assert same / len(after) > 0.97, name
    # Day 2 is itself a consistent drop.
    conn = load(d2)
    assert (
        conn.execute(
            "SELECT count(*) FROM enrollments e ANTI JOIN users u ON u.sourcedId = e.userSourcedId"
        ).fetchone()[0]
        == 0
    )


def test_with_errors_appends_the_documented_bad_rows(tmp_path: Path):
    drop = generate_drop(tmp_path / "bad", 300, with_errors=7, seed=3)
    assert [e.kind for e in drop.errors] == [k for k, _, _ in ERROR_KINDS] + [ERROR_KINDS[0][0]]
    folder = drop.path
    lines = {name: (folder / name).read_text(encoding="utf-8").splitlines() for name in SPEC_HEADERS}
    classes = {r["sourcedId"] for r in rows(folder, "classes.csv")}
    for err in drop.errors:
        fields = next(csv.reader([lines[err.file][err.line - 1]]))
        header = SPEC_HEADERS[err.file].split(",")
        row = dict(zip(header, fields, strict=False))
        assert row["sourcedId"] == err.sourced_id
        if err.kind == "bad_date":
            assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", row["beginDate"])
        elif err.kind == "unknown_enum":
            assert row["role"] == "Student Teacher"
        elif err.kind == "missing_required":
            assert row["username"] == "" and row["role"] == "student"
        elif err.kind == "duplicate_sourcedId":
            ids = [next(csv.reader([line]))[0] for line in lines[err.file][1:]]
            assert ids.count(err.sourced_id) == 2
        elif err.kind == "unknown_reference":
            assert row["classSourcedId"] not in classes
        else:
            assert err.kind == "bare_list"
            assert len(fields) == len(header) + 1 and ",09,10," in lines[err.file][err.line - 1]
    # The reported line numbers are the physical lines of the appended rows.
    for name in {e.file for e in drop.errors}:
        injected = sorted(e.line for e in drop.errors if e.file == name)
        assert injected == list(range(len(lines[name]) - len(injected) + 1, len(lines[name]) + 1))
    assert drop.files["users.csv"].rows == len(lines["users.csv"]) - 1


def test_zip_has_csvs_at_root_and_is_deterministic(tmp_path: Path, day1: Path):
    first = generate_drop(tmp_path / "a" / "drop.zip", STUDENTS, seed=7, as_zip=True)
    second = generate_drop(tmp_path / "b" / "drop.zip", STUDENTS, seed=7, as_zip=True)
    assert first.path.read_bytes() == second.path.read_bytes()
    with zipfile.ZipFile(first.path) as zf:
        assert sorted(zf.namelist()) == sorted(["manifest.csv", *SPEC_HEADERS])
        assert zf.read("users.csv") == (day1 / "users.csv").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["drop.zip"]  # no staging left behind


def test_cli_generates_prints_summary_and_refuses_to_overwrite(tmp_path: Path, capsys):
    out = tmp_path / "night1"
    assert cli_main.main(["generate", str(out), "--students", "400", "--seed", "2"]) == 0
    printed = capsys.readouterr().out
    assert "users.csv" in printed and "total" in printed and "done in" in printed
    first = (out / "users.csv").read_bytes()
    assert cli_main.main(["generate", str(out), "--students", "400"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (out / "users.csv").read_bytes() == first
    assert cli_main.main(["generate", str(out), "--students", "400", "--day", "2", "--force"]) == 0
    assert "churn since day 1" in capsys.readouterr().out
    assert (out / "users.csv").read_bytes() != first
    assert cli_main.main(["generate", str(tmp_path / "x"), "--students", "0"]) == 2
    assert "--students" in capsys.readouterr().err
    assert cli_main.main(["generate", str(tmp_path / "y"), "--students", "5", "--district", "Bad|Id"]) == 2
    zipped = tmp_path / "d.zip"
    assert cli_main.main(["generate", str(zipped), "--students", "300", "--zip", "--with-errors", "2"]) == 0
    assert "injected error" in capsys.readouterr().out and zipfile.is_zipfile(zipped)
    assert cli_main.main(["generate", str(zipped), "--students", "300", "--zip"]) == 2
    with pytest.raises(SystemExit) as exc:
        cli_main.main(["generate", "--help"])
    assert exc.value.code == 0
    assert "--with-errors" in capsys.readouterr().out
