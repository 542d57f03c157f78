"""Realistic synthetic OneRoster 1.1 bulk drops of any size, built set-based in DuckDB.

Every value is derived from ``hash(seed, tag, id)`` over ``range()``, so the bytes depend only on
(students, day, seed, district) and a million students take seconds, not hours: no per-row Python.

The district's *structure* (schools, courses, sections, teachers) is sized from the day-1 population
only, so later nights keep the same classes and most rows stay byte-identical. Each later night applies
deterministic churn on top: withdrawals, new students, schedule changes, renames, retitled classes and
replaced teachers (see :func:`_apply_night`).

``with_errors=N`` appends N bad rows, cycling through :data:`ERROR_KINDS`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb

from etl_project.generate_names import (
    CITIES_OF_BIRTH,
    FAMILY_NAMES,
    FEMALE_GIVEN_NAMES,
    MALE_GIVEN_NAMES,
    SCHOOL_NAMESAKES,
)
from etl_project.scratch import scratch_dir
from etl_project.warehouse import DUCKDB_CONFIG

# --- OneRoster 1.1 layout -------------------------------------------------------------------------------

HEADERS: dict[str, tuple[str, ...]] = {
    "orgs.csv": ("sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"),
    "academicSessions.csv": (
        "sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate",
        "parentSourcedId", "schoolYear",
    ),
    "courses.csv": (
        "sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode", "grades",
        "orgSourcedId", "subjects", "subjectCodes",
    ),
    "classes.csv": (
        "sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId", "classCode",
        "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods",
    ),
    "users.csv": (
        "sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role", "username",
        "userIds", "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
        "agentSourcedIds", "grades", "password",
    ),
    "enrollments.csv": (
        "sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId", "userSourcedId",
        "role", "primary", "beginDate", "endDate",
    ),
    "demographics.csv": (
        "sourcedId", "status", "dateLastModified", "birthDate", "sex", "americanIndianOrAlaskaNative",
        "asian", "blackOrAfricanAmerican", "nativeHawaiianOrOtherPacificIslander", "white",
        "demographicRaceTwoOrMoreRaces", "hispanicOrLatinoEthnicity", "countryOfBirthCode",
        "stateOfBirthAbbreviation", "cityOfBirth", "publicSchoolResidenceStatus",
    ),
}  # fmt: skip

# The 13 data files of a 1.1 manifest, in the spec's order.
MANIFEST_FILES = (
    "academicSessions", "categories", "classes", "classResources", "courses", "courseResources",
    "demographics", "enrollments", "lineItems", "orgs", "resources", "results", "users",
)  # fmt: skip

# What ``with_errors`` injects, in this order (repeating): (kind, file, description).
ERROR_KINDS: tuple[tuple[str, str, str], ...] = (
    ("bad_date", "enrollments.csv", "beginDate written D/M/Y (17/08/2026) instead of YYYY-MM-DD"),
    ("unknown_enum", "users.csv", 'role "Student Teacher" is not a OneRoster 1.1 role'),
    ("missing_required", "users.csv", "required username is empty"),
    ("duplicate_sourcedId", "enrollments.csv", "sourcedId repeats the file's first enrollment"),
    ("unknown_reference", "enrollments.csv", "classSourcedId points at a class that does not exist"),
    ("bare_list", "classes.csv", "grades 09,10 written without quotes, so the row has one field too many"),
)

# --- Calendar: the 2026-2027 school year (schoolYear 2027); end dates are exclusive, as in the spec. ----
SCHOOL_YEAR = 2027
FIRST_NIGHT = date(2026, 9, 14)  # the date `day=1` stands for; night N is FIRST_NIGHT + N - 1
SESSIONS = (
    # sourcedId, title, type, start, end (exclusive), parent
    ("as-2027", "2026-2027", "schoolYear", "2026-08-17", "2027-06-12", None),
    ("as-2027-s1", "Fall 2026", "semester", "2026-08-17", "2027-01-16", "as-2027"),
    ("as-2027-s2", "Spring 2027", "semester", "2027-01-19", "2027-06-12", "as-2027"),
    ("as-2027-q1", "Quarter 1", "gradingPeriod", "2026-08-17", "2026-10-17", "as-2027-s1"),
    ("as-2027-q2", "Quarter 2", "gradingPeriod", "2026-10-19", "2027-01-16", "as-2027-s1"),
    ("as-2027-q3", "Quarter 3", "gradingPeriod", "2027-01-19", "2027-03-27", "as-2027-s2"),
    ("as-2027-q4", "Quarter 4", "gradingPeriod", "2027-03-29", "2027-06-12", "as-2027-s2"),
)
# Class terms: year-long classes list both semesters (a quoted list), semester classes one.
TERMS = (
    ("Y", "as-2027-s1,as-2027-s2", "2026-08-17", "2027-06-12"),
    ("S1", "as-2027-s1", "2026-08-17", "2027-01-16"),
    ("S2", "as-2027-s2", "2027-01-19", "2027-06-12"),
)

# --- Course catalog --------------------------------------------------------------------------------------
# (band, period, kind, courseCode, title, subject, SCED-like code, lowest grade, highest grade); grade 0 = KG.
# Each period's courses are a student's choices for that period; kind: homeroom/year (one class, both
# semesters) or sem (one class per semester). Periods never share a course, so (student, class) is unique.
_E, _M, _H = "elementary", "middle", "high"
CATALOG: tuple[tuple[str, int, str, str, str, str, str, int, int], ...] = (
    *(
        (_E, 1, "homeroom", f"HR{g:02d}", "Kindergarten Homeroom" if g == 0 else f"Grade {g} Homeroom",
         "Self-Contained", f"7200{g}", g, g)
        for g in range(6)
    ),
    (_E, 2, "year", "EART", "Elementary Art", "Visual Arts", "55154", 3, 5),
    (_E, 2, "year", "EMUS", "General Music", "Music", "55110", 3, 5),
    (_E, 2, "year", "EPE", "Elementary Physical Education", "Physical Education", "58001", 3, 5),
    *((_M, 1, "year", f"ELA{g:02d}", f"English Language Arts {g}", "English Language and Literature",
       f"5103{g}", g, g) for g in (6, 7, 8)),
    *((_M, 2, "year", f"MTH{g:02d}", f"Mathematics {g}", "Mathematics", f"5203{g}", g, g) for g in (6, 7, 8)),
    (_M, 2, "year", "MALG1", "Algebra I (Middle School)", "Mathematics", "52052", 8, 8),
    (_M, 3, "year", "SCI06", "Earth Science", "Life and Physical Sciences", "53001", 6, 6),
    (_M, 3, "year", "SCI07", "Life Science", "Life and Physical Sciences", "53031", 7, 7),
    (_M, 3, "year", "SCI08", "Physical Science", "Life and Physical Sciences", "53101", 8, 8),
    (_M, 4, "year", "SOC06", "World Geography", "Social Sciences and History", "54001", 6, 6),
    (_M, 4, "year", "SOC07", "World History", "Social Sciences and History", "54051", 7, 7),
    (_M, 4, "year", "SOC08", "U.S. History", "Social Sciences and History", "54101", 8, 8),
    (_M, 5, "year", "MPE", "Physical Education", "Physical Education", "58001", 6, 8),
    (_M, 6, "year", "MSPAN", "Spanish (Middle School)", "World Languages", "56101", 6, 8),
    (_M, 6, "year", "MFREN", "French (Middle School)", "World Languages", "56001", 6, 8),
    (_M, 7, "sem", "MART", "Art Exploration", "Visual Arts", "55154", 6, 8),
    (_M, 7, "sem", "MBAND", "Band", "Music", "55101", 6, 8),
    (_M, 7, "sem", "MCHOIR", "Choir", "Music", "55110", 6, 8),
    (_M, 7, "sem", "MTECH", "Computer Technology", "Computer and Information Sciences", "60001", 6, 8),
    (_M, 7, "sem", "MHLTH", "Health", "Physical, Health, and Safety Education", "58051", 6, 8),
    (_M, 7, "sem", "MDRAMA", "Drama", "Performing Arts", "55051", 6, 8),
    *((_H, 1, "year", f"ENG{g:02d}", f"English {g}", "English Language and Literature", f"0100{g - 8}", g, g)
      for g in (9, 10, 11, 12)),
    (_H, 1, "year", "APENG", "AP English Literature and Composition", "English Language and Literature",
     "01006", 12, 12),
    (_H, 2, "year", "ALG1", "Algebra I", "Mathematics", "02052", 9, 10),
    (_H, 2, "year", "GEOM", "Geometry", "Mathematics", "02072", 9, 11),
    (_H, 2, "year", "ALG2", "Algebra II", "Mathematics", "02056", 10, 12),
    (_H, 2, "year", "PRECALC", "Pre-Calculus", "Mathematics", "02110", 11, 12),
    (_H, 2, "year", "APCALC", "AP Calculus AB", "Mathematics", "02124", 12, 12),
    (_H, 2, "year", "STATS", "Statistics", "Mathematics", "02201", 12, 12),
    (_H, 3, "year", "BIO", "Biology", "Life and Physical Sciences", "03051", 9, 10),
    (_H, 3, "year", "EARTH", "Earth and Space Science", "Life and Physical Sciences", "03001", 9, 9),
    (_H, 3, "year", "CHEM", "Chemistry", "Life and Physical Sciences", "03101", 10, 11),
    (_H, 3, "year", "PHYS", "Physics", "Life and Physical Sciences", "03151", 11, 12),
    (_H, 3, "year", "ENVSCI", "Environmental Science", "Life and Physical Sciences", "03003", 11, 12),
    (_H, 3, "year", "ANAT", "Anatomy and Physiology", "Life and Physical Sciences", "03053", 12, 12),
    (_H, 4, "year", "WHIST", "World History", "Social Sciences and History", "04051", 9, 10),
    (_H, 4, "year", "USHIST", "U.S. History", "Social Sciences and History", "04101", 10, 11),
    (_H, 4, "year", "GOVT", "American Government", "Social Sciences and History", "04151", 12, 12),
    (_H, 4, "year", "ECON", "Economics", "Social Sciences and History", "04201", 12, 12),
    (_H, 5, "sem", "HPE", "Physical Education", "Physical, Health, and Safety Education", "08001", 9, 12),
    (_H, 5, "sem", "HHLTH", "Health", "Physical, Health, and Safety Education", "08051", 9, 12),
    (_H, 5, "sem", "WEIGHT", "Weight Training", "Physical, Health, and Safety Education", "08009", 10, 12),
    (_H, 5, "sem", "TEAMSP", "Team Sports", "Physical, Health, and Safety Education", "08005", 9, 12),
    (_H, 6, "sem", "ART1", "Art I", "Fine and Performing Arts", "05154", 9, 12),
    (_H, 6, "sem", "BAND", "Concert Band", "Fine and Performing Arts", "05101", 9, 12),
    (_H, 6, "sem", "CHOIR", "Choir", "Fine and Performing Arts", "05110", 9, 12),
    (_H, 6, "sem", "DRAMA", "Drama", "Fine and Performing Arts", "05051", 9, 12),
    (_H, 6, "sem", "PHOTO", "Digital Photography", "Fine and Performing Arts", "05169", 10, 12),
    (_H, 6, "sem", "CERAM", "Ceramics", "Fine and Performing Arts", "05157", 10, 12),
    (_H, 7, "sem", "SPAN1", "Spanish I", "World Languages", "06101", 9, 12),
    (_H, 7, "sem", "SPAN2", "Spanish II", "World Languages", "06102", 10, 12),
    (_H, 7, "sem", "FREN1", "French I", "World Languages", "06001", 9, 12),
    (_H, 7, "sem", "CSP", "Computer Science Principles",
        "Computer and Information Sciences", "10019", 10, 12),
    (_H, 7, "sem", "PSYCH", "Psychology", "Social Sciences and History", "04254", 11, 12),
    (_H, 7, "sem", "JOURN", "Journalism", "English Language and Literature", "01104", 9, 12),
    (_H, 7, "sem", "PFIN", "Personal Finance", "Business and Marketing", "22210", 11, 12),
)  # fmt: skip

STUDENTS_PER_SCHOOL = 550
STUDENTS_PER_TEACHER = 20
SECTION_SIZE = {"homeroom": 22, "year": 24, "sem": 24}
# Churn per night, as fractions of the day-1 population (each at least 1).
WITHDRAW_RATE, NEW_RATE, SCHEDULE_CHANGE_RATE, RENAME_RATE = 0.005, 0.005, 0.01, 0.002
RETITLED_CLASSES, REPLACED_TEACHERS = 2, 3


@dataclass(frozen=True)
class FileStats:
    rows: int
    bytes: int


@dataclass(frozen=True)
class InjectedError:
    """One bad row appended by ``with_errors``; ``line`` is the physical line (header = 1)."""

    kind: str
    file: str
    line: int
    sourced_id: str
    description: str


@dataclass
class GeneratedDrop:
    path: Path
    students: int
    day: int
    seed: int
    files: dict[str, FileStats]
    churn: dict[str, int] = field(default_factory=dict)
    errors: list[InjectedError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files.values() if f is not None)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files.values())


def generate_drop(
    out: Path,
    students: int,
    *,
    day: int = 1,
    seed: int = 0,
    as_zip: bool = False,
    with_errors: int = 0,
    district_id: str = "demo",
    district_name: str | None = None,
    memory_limit: str = "1GB",
) -> GeneratedDrop:
    """Write a complete OneRoster 1.1 bulk drop for night ``day`` of a district with ``students`` students.

    ``out`` is the folder to write the CSVs into (created if needed), or with ``as_zip`` the zip file to
    write (CSVs at its root). Same arguments -> identical bytes.
    """
    if students < 1:
        raise ValueError("students must be at least 1")
    if day < 1:
        raise ValueError("day must be at least 1")
    if with_errors < 0:
        raise ValueError("with_errors must not be negative")
    started = time.perf_counter()
    out = Path(out)
    district_name = (
        district_name or f"{district_id.replace('_', ' ').replace('-', ' ').title()} Unified School District"
    )
    with contextlib.ExitStack() as stack:
        spill = stack.enter_context(scratch_dir("etl-generate"))
        if as_zip:
            out.parent.mkdir(parents=True, exist_ok=True)
            folder = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix=".staging-", dir=out.parent))
            )
        else:
            folder = out
            folder.mkdir(parents=True, exist_ok=True)
        conn = stack.enter_context(
            duckdb.connect(
                config={
                    **DUCKDB_CONFIG,
                    "memory_limit": memory_limit,
                    "temp_directory": str(spill),
                    "preserve_insertion_order": True,
                }
            )
        )
        gen = _Generator(conn, students, day, seed, district_id, district_name)
        churn = gen.build()
        rows = gen.write(folder)
        errors = _inject_errors(conn, folder, rows, with_errors) if with_errors else []
        _write_manifest(folder)
        files = {
            name: FileStats(rows.get(name, 0), (folder / name).stat().st_size)
            for name in ("manifest.csv", *HEADERS)
        }
        if as_zip:
            _write_zip(folder, out, files)
    return GeneratedDrop(
        path=out,
        students=students,
        day=day,
        seed=seed,
        files=files,
        churn=churn,
        errors=errors,
        seconds=time.perf_counter() - started,
    )


def _sql_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _sql_value(v: object) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def _values(rows: tuple[tuple[object, ...], ...] | list[tuple[object, ...]]) -> str:
    return ", ".join("(" + ", ".join(_sql_value(v) for v in row) + ")" for row in rows)


def _grade_code(g: int) -> str:
    return "KG" if g == 0 else f"{g:02d}"


_PERSON = """
            CASE WHEN {female} THEN fe.name ELSE ma.name END AS givenName, fa.name AS familyName,
            lower(regexp_replace(strip_accents(CASE WHEN {female} THEN fe.name ELSE ma.name END),
                '[^A-Za-z]', '',
                  'g')) AS given_clean,
            lower(regexp_replace(strip_accents(fa.name), '[^A-Za-z]', '', 'g')) AS family_clean"""
_NAMES_JOIN = """
            LEFT JOIN female fe ON fe.idx = {hg} % {nf}
            LEFT JOIN male ma ON ma.idx = {hg} % {nm}
            JOIN family fa ON fa.idx = {fam}"""


class _Generator:
    """Builds the district in temp tables of one DuckDB connection, then COPYs each file out."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, students: int, day: int, seed: int, district_id: str,
                 district_name: str) -> None:  # fmt: skip
        self.c = conn
        self.n = students
        self.day = day
        self.seed = seed
        self.district_id = district_id
        self.district_name = district_name
        domain = district_id.replace("_", "-")
        self.staff_domain = f"{domain}.k12.example.org"
        self.student_domain = f"students.{domain}.k12.example.org"
        self.lea = 600000 + zlib.crc32(district_id.encode()) % 400000  # NCES-like 7-digit LEA id: 06xxxxx

    def q(self, sql: str) -> None:
        self.c.execute(sql.replace("{seed}", str(self.seed)))

    # -- structure (from the day-1 population) -------------------------------------------------------------
    def build(self) -> dict[str, int]:
        """The day-1 district, then each night's churn up to ``day``; the last night's churn counts."""
        self._stage_names_and_catalog()
        self._stage_schools()
        self._stage_students_and_classes()
        churn: dict[str, int] = {}
        for night in range(2, self.day + 1):
            churn = self._apply_night(night)
        return churn

    def _stage_names_and_catalog(self) -> None:
        q = self.q
        q(f"CREATE TEMP TABLE female AS SELECT unnest({_sql_list(FEMALE_GIVEN_NAMES)}) AS name, "
          f"generate_subscripts({_sql_list(FEMALE_GIVEN_NAMES)}, 1) - 1 AS idx")  # fmt: skip
        q(f"CREATE TEMP TABLE male AS SELECT unnest({_sql_list(MALE_GIVEN_NAMES)}) AS name, "
          f"generate_subscripts({_sql_list(MALE_GIVEN_NAMES)}, 1) - 1 AS idx")  # fmt: skip
        q(f"CREATE TEMP TABLE family AS SELECT unnest({_sql_list(FAMILY_NAMES)}) AS name, "
          f"generate_subscripts({_sql_list(FAMILY_NAMES)}, 1) - 1 AS idx")  # fmt: skip
        catalog = [(*row, ",".join(_grade_code(g) for g in range(row[7], row[8] + 1))) for row in CATALOG]
        q(
            "CREATE TEMP TABLE catalog(band VARCHAR, slot INTEGER, kind VARCHAR, code VARCHAR, "
            "title VARCHAR, "
            "subject VARCHAR, sced VARCHAR, lo INTEGER, hi INTEGER, grades VARCHAR)"
        )
        q(f"INSERT INTO catalog VALUES {_values(catalog)}")
        q(f"CREATE TEMP TABLE terms(term VARCHAR, termIds VARCHAR, startDate DATE, endDate DATE); "
          f"INSERT INTO terms VALUES {_values(TERMS)}")  # fmt: skip
        # Options per grade and period: the student's pick is hash % n_opts.
        q("""CREATE TEMP TABLE opts AS
             SELECT g.grade, c.slot, c.kind, c.code, c.band,
                    (row_number() OVER (PARTITION BY g.grade, c.slot ORDER BY c.code) - 1)::INTEGER AS opt,
                    (count(*) OVER (PARTITION BY g.grade, c.slot))::INTEGER AS n_opts
             FROM range(13) g(grade) JOIN catalog c ON g.grade BETWEEN c.lo AND c.hi""")

    def _stage_schools(self) -> None:
        """Enough schools per band for STUDENTS_PER_SCHOOL; ``band_sql`` assigns a student's school."""
        n, q = self.n, self.q
        bands = {_E: 6, _M: 3, _H: 4}
        counts = {b: max(1, round(n * k / 13 / STUDENTS_PER_SCHOOL)) for b, k in bands.items()}
        self.n_schools = counts
        offsets = {_E: 0, _M: counts[_E], _H: counts[_E] + counts[_M]}
        self.band_sql = (
            f"CASE WHEN grade <= 5 THEN {offsets[_E]} + hash({{seed}}, 'school', i) % {counts[_E]} "
            f"WHEN grade <= 8 THEN {offsets[_M]} + hash({{seed}}, 'school', i) % {counts[_M]} "
            f"ELSE {offsets[_H]} + hash({{seed}}, 'school', i) % {counts[_H]} END + 1"
        )
        suffix = {_E: "Elementary School", _M: "Middle School", _H: "High School"}
        school_rows = []
        for band in (_E, _M, _H):
            for k in range(counts[band]):
                name = SCHOOL_NAMESAKES[(k * 7 + len(band)) % len(SCHOOL_NAMESAKES)]
                label = f"{name} {suffix[band]}"
                if k >= len(SCHOOL_NAMESAKES):
                    label += f" No. {k // len(SCHOOL_NAMESAKES) + 1}"
                school_rows.append((offsets[band] + k + 1, band, k, label))
        q("CREATE TEMP TABLE schools(school_no INTEGER, band VARCHAR, band_idx INTEGER, name VARCHAR)")
        for chunk in range(0, len(school_rows), 5000):
            q(f"INSERT INTO schools VALUES {_values(school_rows[chunk : chunk + 5000])}")

    def _stage_students_and_classes(self) -> None:
        n, q = self.n, self.q
        # People: everyone who is ever a student up to `day`; churn only updates columns.
        q(f"""CREATE TEMP TABLE students AS
              SELECT i, 1 AS joined, NULL::INTEGER AS left_night, NULL::INTEGER AS renamed,
                     (hash({{seed}}, 'family', i) % {len(FAMILY_NAMES)})::INTEGER AS family_idx
              FROM range({n}) r(i)""")
        self.next_id = n
        # Sizing from day 1: each (school, course, term) gets enough sections of SECTION_SIZE.
        q(f"CREATE TEMP TABLE base_plan AS {self._plan_sql('SELECT i FROM students', shifted=False)}")
        q(f"""CREATE TEMP TABLE sections AS
              WITH need AS (SELECT school_no, code, term, count(*) AS cnt FROM base_plan GROUP BY ALL),
                   offered AS (
                       SELECT s.school_no, c.code, c.slot, c.kind, t.term
                       FROM schools s JOIN catalog c ON c.band = s.band
                       JOIN terms t ON (t.term = 'Y') = (c.kind <> 'sem'))
              SELECT o.*, greatest(1, ceil(coalesce(n.cnt, 0) /
                         CASE o.kind WHEN 'homeroom' THEN {SECTION_SIZE['homeroom']}
                             ELSE {SECTION_SIZE['year']} END)
                     )::INTEGER AS nsec
              FROM offered o LEFT JOIN need n USING (school_no, code, term)""")  # fmt: skip
        q("""CREATE TEMP TABLE school_staff AS
             SELECT s.school_no, greatest(1, round(coalesce(cnt, 0) / %d))::INTEGER AS n_teachers,
                    (sum(greatest(1, round(coalesce(cnt, 0) / %d))) OVER (ORDER BY s.school_no)
                     - greatest(1, round(coalesce(cnt, 0) / %d)))::INTEGER AS teacher_offset
             FROM schools s LEFT JOIN (SELECT school_no, count(DISTINCT i) AS cnt FROM base_plan GROUP BY 1) p
                  USING (school_no)""".replace("%d", str(STUDENTS_PER_TEACHER)))  # fmt: skip
        q("""CREATE TEMP TABLE classes AS
             SELECT x.*, row_number() OVER (ORDER BY school_no, slot, code, term, sec)::INTEGER AS class_no,
                    false AS honors, NULL::INTEGER AS replaced
             FROM (SELECT s.school_no, s.code, s.slot, s.kind, s.term, sec::INTEGER AS sec
                   FROM sections s, range(s.nsec) r(sec)) x""")
        q("""ALTER TABLE classes ADD COLUMN teacher_idx INTEGER;
             UPDATE classes SET teacher_idx = r.idx FROM (
                 SELECT c.class_no, ((row_number() OVER (PARTITION BY c.school_no ORDER BY c.class_no) - 1)
                                     % st.n_teachers)::INTEGER AS idx
                 FROM classes c JOIN school_staff st USING (school_no)) r
             WHERE classes.class_no = r.class_no""")
        q("DROP TABLE base_plan")
        q("CREATE TEMP TABLE shifts(i BIGINT, slot INTEGER, night INTEGER)")

    def _student_attrs(self, source: str) -> str:
        """Per-student attributes derived from the id alone (so new students get them the same way)."""
        return f"""SELECT i, (hash({{seed}}, 'grade', i) % 13)::INTEGER AS grade,
                          ({self.band_sql})::INTEGER AS school_no
                   FROM ({source})"""

    def _plan_sql(self, source: str, shifted: bool = True) -> str:
        """One row per (student, period, term): the course and section the student is enrolled in."""
        shift_join = (
            "LEFT JOIN (SELECT i, slot, count(*)::INTEGER AS n, max(night) AS last FROM shifts "
            "GROUP BY ALL) sh "
            "USING (i, slot)"
            if shifted
            else "LEFT JOIN (SELECT NULL::BIGINT AS i, NULL::INTEGER AS slot, 0 AS n, "
            "NULL::INTEGER AS last) sh "
            "USING (i, slot)"
        )
        return f"""
            WITH st AS ({self._student_attrs(source)}),
                 slots AS (SELECT DISTINCT grade, slot, kind, n_opts FROM opts),
                 picks AS (
                     SELECT st.i, st.grade, st.school_no, sl.slot, t.term, sl.n_opts,
                            coalesce(sh.n, 0) AS n_shift, sh.last AS shift_night,
                            hash({{seed}}, 'opt', st.i, sl.slot) AS h,
                            hash({{seed}}, 'opt2', st.i, sl.slot) AS h2
                     FROM st JOIN slots sl ON sl.grade = st.grade
                     JOIN terms t ON (t.term = 'Y') = (sl.kind <> 'sem')
                     {shift_join}),
                 chosen AS (
                     SELECT p.*, CASE WHEN n_opts > 1 THEN n_shift ELSE 0 END AS opt_shift,
                            CASE WHEN n_opts = 1 THEN n_shift ELSE 0 END AS sec_shift,
                            ((CASE WHEN term = 'S2' AND n_opts > 1 THEN h % n_opts + 1 + h2 % (n_opts - 1)
                                   ELSE h % n_opts END + CASE WHEN n_opts > 1 THEN n_shift ELSE 0 END)
                             % n_opts)::INTEGER AS opt
                     FROM picks p)
            SELECT ch.i, ch.grade, ch.school_no, ch.slot, ch.term, o.code, ch.sec_shift, ch.shift_night,
                   ch.n_shift
            FROM chosen ch JOIN opts o ON o.grade = ch.grade AND o.slot = ch.slot AND o.opt = ch.opt"""

    # -- churn ---------------------------------------------------------------------------------------------
    def _apply_night(self, t: int) -> dict[str, int]:
        """Night ``t`` (>= 2): the same district one school night later."""
        q, n = self.q, self.n
        present = f"joined < {t} AND (left_night IS NULL OR left_night >= {t})"
        withdraw = max(1, round(n * WITHDRAW_RATE))
        new = max(1, round(n * NEW_RATE))
        changes = max(1, round(n * SCHEDULE_CHANGE_RATE))
        renames = max(1, round(n * RENAME_RATE))
        q(f"""UPDATE students SET left_night = {t} WHERE i IN (
                  SELECT i FROM students WHERE {present}
                  ORDER BY hash({{seed}}, 'withdraw', {t}, i), i LIMIT {withdraw})""")
        staying = f"joined < {t} AND left_night IS NULL"
        q(f"""UPDATE students SET renamed = {t},
                  family_idx = ((family_idx + 1 + hash({{seed}}, 'rename-to', {t}, i)
                      % {len(FAMILY_NAMES) - 1})
                                % {len(FAMILY_NAMES)})::INTEGER
              WHERE i IN (SELECT i FROM students WHERE {staying}
                          ORDER BY hash({{seed}}, 'rename', {t}, i), i LIMIT {renames})""")
        # Schedule changes: one changeable period per chosen student (another course offered in that
        # period for the grade, or another section of the only course).
        q(f"""INSERT INTO shifts
              WITH st AS ({self._student_attrs(f"SELECT i FROM students WHERE {staying}")}),
                   changeable AS (
                       SELECT st.school_no, o.grade, o.slot
                       FROM (SELECT DISTINCT school_no, grade FROM st) st
                       JOIN opts o ON o.grade = st.grade
                       JOIN sections s ON s.school_no = st.school_no AND s.code = o.code
                       GROUP BY ALL HAVING max(o.n_opts) > 1 OR max(s.nsec) > 1),
                   cand AS (
                       SELECT st.i, arg_min(c.slot, hash({{seed}}, 'change-slot', {t}, st.i, c.slot)) AS slot
                       FROM st JOIN changeable c USING (school_no, grade) GROUP BY st.i)
              SELECT i, slot, {t} FROM cand
              ORDER BY hash({{seed}}, 'change', {t}, i), i LIMIT {changes}""")
        moved = self.c.execute(f"SELECT count(*) FROM shifts WHERE night = {t}").fetchone()[0]
        q(f"""INSERT INTO students
              SELECT i, {t}, NULL, NULL, (hash({{seed}}, 'family', i) % {len(FAMILY_NAMES)})::INTEGER
              FROM range({self.next_id}, {self.next_id + new}) r(i)""")
        self.next_id += new
        q(f"""UPDATE classes SET honors = true WHERE class_no IN (
                  SELECT class_no FROM classes WHERE NOT honors AND kind <> 'homeroom'
                  ORDER BY hash({{seed}}, 'retitle', {t}, class_no) LIMIT {RETITLED_CLASSES})""")
        q(f"""UPDATE classes SET replaced = {t},
                  teacher_idx = ((teacher_idx + 1 + hash({{seed}}, 'teacher-to', {t}, class_no)
                                  % (st.n_teachers - 1)) % st.n_teachers)::INTEGER
              FROM school_staff st
              WHERE classes.school_no = st.school_no AND class_no IN (
                  SELECT c.class_no FROM classes c JOIN school_staff s USING (school_no)
                  WHERE s.n_teachers > 1
                  ORDER BY hash({{seed}}, 'teacher', {t}, c.class_no) LIMIT {REPLACED_TEACHERS})""")
        replaced = self.c.execute(f"SELECT count(*) FROM classes WHERE replaced = {t}").fetchone()[0]
        retitled = self.c.execute("SELECT count(*) FROM classes WHERE honors").fetchone()[0]
        return {
            "withdrawn": withdraw,
            "new_students": new,
            "schedule_changes": moved,
            "renamed": renames,
            "retitled_classes": min(retitled, RETITLED_CLASSES),
            "teacher_replacements": replaced,
        }

    # -- output --------------------------------------------------------------------------------------------
    def _copy(self, folder: Path, name: str, select: str) -> int:
        path = str(folder / name).replace("'", "''")
        sql = f"COPY ({select}) TO '{path}' (FORMAT csv, HEADER, DELIMITER ',', QUOTE '\"')"
        return int(self.c.execute(sql.replace("{seed}", str(self.seed))).fetchone()[0])

    def write(self, folder: Path) -> dict[str, int]:
        """Every file of the night into ``folder``; rows written per file, in the files' order."""
        self._stage_people()
        rows = self._write_orgs_and_sessions(folder)
        rows.update(self._write_courses_and_classes(folder))
        self._stage_staff_users()
        rows["users.csv"] = self._write_users(folder)
        rows["enrollments.csv"] = self._write_enrollments(folder)
        rows["demographics.csv"] = self._write_demographics(folder)
        return rows

    def _stage_people(self) -> None:
        """``people``: the students enrolled on the night, with their name hashes; ``plan``: their courses."""
        q, day = self.q, self.day
        q(f"""CREATE TEMP TABLE people AS
              SELECT s.*, a.grade, a.school_no,
                     hash({{seed}}, 'sex', s.i) % 2 = 0 AS female,
                     hash({{seed}}, 'given', s.i) AS hg,
                     CASE WHEN hash({{seed}}, 'middle?', s.i) % 10 < 4
                         THEN hash({{seed}}, 'middle', s.i) END AS hm
              FROM students s JOIN ({self._student_attrs("SELECT i FROM students")}) a USING (i)
              WHERE s.joined <= {day} AND (s.left_night IS NULL OR s.left_night > {day})""")
        q(f"CREATE TEMP TABLE plan AS {self._plan_sql('SELECT i FROM people')}")

    def _write_orgs_and_sessions(self, folder: Path) -> dict[str, int]:
        rows: dict[str, int] = {}
        district = "dst-0001"
        rows["orgs.csv"] = self._copy(folder, "orgs.csv", f"""
            SELECT sourcedId, status, dateLastModified, name, type, identifier, parentSourcedId FROM (
                SELECT '{district}' AS sourcedId, NULL AS status, NULL AS dateLastModified,
                       {_sql_value(self.district_name)} AS name, 'district' AS type,
                       '{self.lea:07d}' AS identifier, NULL AS parentSourcedId, 0 AS k
                UNION ALL
                SELECT printf('sch-%05d', school_no), NULL, NULL, name, 'school',
                       printf('%07d%05d', {self.lea}, school_no), '{district}', school_no
                FROM schools) ORDER BY k""")  # fmt: skip
        sessions = [(sid, title, typ, start, end, parent, SCHOOL_YEAR) for sid, title, typ, start, end, parent
                    in SESSIONS]  # fmt: skip
        rows["academicSessions.csv"] = self._copy(folder, "academicSessions.csv", f"""
            SELECT sourcedId, NULL AS status, NULL AS dateLastModified, title, type,
                startDate::DATE AS startDate,
                   endDate::DATE AS endDate, parentSourcedId, schoolYear
            FROM (VALUES {_values(sessions)}) v(sourcedId, title, type, startDate, endDate, parentSourcedId,
                                                schoolYear)""")  # fmt: skip
        return rows

    def _write_courses_and_classes(self, folder: Path) -> dict[str, int]:
        q = self.q
        rows: dict[str, int] = {}
        q("""CREATE TEMP TABLE courses AS
             SELECT s.school_no, c.*, row_number() OVER (ORDER BY s.school_no, c.slot, c.code)
                 ::INTEGER AS course_no
             FROM schools s JOIN catalog c ON c.band = s.band""")
        rows["courses.csv"] = self._copy(
            folder,
            "courses.csv",
            """
            SELECT printf('crs-%06d', course_no) AS sourcedId, NULL AS status, NULL AS dateLastModified,
                   'as-2027' AS schoolYearSourcedId, title, code AS courseCode, grades,
                   printf('sch-%05d', school_no) AS orgSourcedId, subject AS subjects, sced AS subjectCodes
            FROM courses ORDER BY course_no""",
        )
        rows["classes.csv"] = self._copy(
            folder,
            "classes.csv",
            """
            SELECT printf('cls-%07d', c.class_no) AS sourcedId, NULL AS status, NULL AS dateLastModified,
                   co.title || CASE WHEN c.honors THEN ' Honors' ELSE '' END
                       || CASE WHEN c.kind = 'homeroom' THEN ' ' ELSE ' - Section ' END
                       || printf('%02d', c.sec + 1)
                       || CASE c.term WHEN 'Y' THEN '' ELSE ' (' || c.term || ')' END
                       AS title,
                   co.grades, printf('crs-%06d', co.course_no) AS courseSourcedId,
                   c.code || '-' || c.term || '-' || printf('%02d', c.sec + 1) AS classCode,
                   CASE WHEN c.kind = 'homeroom' THEN 'homeroom' ELSE 'scheduled' END AS classType,
                   'Room ' || (100 + hash({seed}, 'room', c.class_no) % 300) AS location,
                   printf('sch-%05d', c.school_no) AS schoolSourcedId, t.termIds AS termSourcedIds,
                   co.subject AS subjects, co.sced AS subjectCodes, c.slot::VARCHAR AS periods
            FROM classes c JOIN courses co USING (school_no, code) JOIN terms t USING (term)
            ORDER BY c.class_no""",
        )
        return rows

    def _stage_staff_users(self) -> None:
        """``staff_users``: teachers per school, a principal per school and three district administrators."""
        q = self.q
        q("""CREATE TEMP TABLE staff AS
             SELECT st.teacher_offset + r.idx + 1 AS teacher_no, st.school_no, r.idx, st.n_teachers,
                    s.band, s.band_idx
             FROM school_staff st JOIN schools s USING (school_no), range(st.n_teachers) r(idx)""")
        max_e = self.n_schools[_E]
        nf, nm, nfam = len(FEMALE_GIVEN_NAMES), len(MALE_GIVEN_NAMES), len(FAMILY_NAMES)
        staff_names = _NAMES_JOIN.format(
            hg="hash({seed}, 'staff-given', k)",
            nf=nf,
            nm=nm,
            fam=f"hash({{seed}}, 'staff-family', k) % {nfam}",
        )
        q(f"""CREATE TEMP TABLE staff_users AS
              WITH staff_all AS (
                  SELECT 1 AS kind, teacher_no AS k, 'teacher' AS role, printf('tch-%06d', teacher_no) AS sid,
                         printf('sch-%05d', school_no)
                           || CASE WHEN band = 'elementary' AND idx = n_teachers - 1
                               AND band_idx + 1 < {max_e}
                                   THEN printf(',sch-%05d', school_no + 1) ELSE '' END AS orgs,
                         printf('T%06d', teacher_no) AS ident
                  FROM staff
                  UNION ALL
                  SELECT 0, 1000000000 + school_no, 'administrator', printf('adm-%05d', school_no),
                         printf('sch-%05d', school_no), printf('A%05d', school_no)
                  FROM schools
                  UNION ALL
                  SELECT 0, d, 'administrator', printf('adm-d%02d', d), 'dst-0001', printf('AD%02d', d)
                  FROM range(1, 4) r(d))
              SELECT sa.*, {_PERSON.format(female="hash({seed}, 'staff-sex', k) % 2 = 0")}
              FROM staff_all sa {staff_names}""")

    def _write_users(self, folder: Path) -> int:
        nf, nm = len(FEMALE_GIVEN_NAMES), len(MALE_GIVEN_NAMES)
        student_names = _NAMES_JOIN.format(hg="p.hg", nf=nf, nm=nm, fam="p.family_idx")
        users_sql = f"""
            SELECT sid AS sourcedId, NULL AS status, NULL AS dateLastModified, 'true' AS enabledUser,
                   orgs AS orgSourcedIds, role,
                   substr(given_clean, 1, 1) || family_clean || '.' || lower(ident) AS username,
                   '{{SIS:' || ident || '}},{{LDAP:' || substr(given_clean, 1, 1) || family_clean
                       || '.' || lower(ident) || '}}' AS userIds,
                   givenName, familyName, NULL AS middleName, ident AS identifier,
                   substr(given_clean, 1, 1) || family_clean || '.' || lower(ident)
                       || '@{self.staff_domain}' AS email,
                   NULL AS sms, printf('(555) 555-%04d', hash({{seed}}, 'phone', k) % 10000) AS phone,
                   NULL AS agentSourcedIds, NULL AS grades, NULL AS password, kind AS _kind, k AS _k
            FROM staff_users
            UNION ALL
            SELECT printf('stu-%07d', p.i + 1), NULL, NULL, 'true',
                printf('sch-%05d', p.school_no), 'student',
                   given_clean || '.' || family_clean || (100001 + p.i),
                   '{{SIS:' || (100001 + p.i) || '}}',
                   givenName, familyName,
                   CASE WHEN p.hm IS NOT NULL THEN CASE WHEN p.female THEN mf.name ELSE mm.name END END,
                   (2000000000 + p.i * 13 + hash({{seed}}, 'ssid', p.i) % 13)::VARCHAR,
                   given_clean || '.' || family_clean || (100001 + p.i) || '@{self.student_domain}',
                   NULL, NULL, NULL,
                   CASE WHEN p.grade = 0 THEN 'KG' ELSE printf('%02d', p.grade) END, NULL, 2, p.i
            FROM (SELECT p.*, {_PERSON.format(female="p.female")} FROM people p {student_names}) p
            LEFT JOIN female mf ON mf.idx = p.hm % {nf}
            LEFT JOIN male mm ON mm.idx = p.hm % {nm}"""
        cols = ", ".join(f'"{c}"' for c in HEADERS["users.csv"])
        return self._copy(folder, "users.csv", f"SELECT {cols} FROM ({users_sql}) ORDER BY _kind, _k")

    def _write_enrollments(self, folder: Path) -> int:
        begin = f"DATE '{FIRST_NIGHT.isoformat()}' + ({{col}} - 1)::INTEGER"
        # A new student or a changed schedule starts on the night it happened, not at the start of term.
        since = "greatest(pe.joined, CASE WHEN p.n_shift > 0 THEN p.shift_night ELSE 1 END)"
        return self._copy(folder, "enrollments.csv", f"""
            SELECT sourcedId, NULL AS status, NULL AS dateLastModified, classSourcedId, schoolSourcedId,
                   userSourcedId, role, "primary", beginDate, endDate
            FROM (
                SELECT substr(m, 1, 8) || '-' || substr(m, 9, 4) || '-' || substr(m, 13, 4) || '-'
                           || substr(m, 17, 4) || '-' || substr(m, 21, 12) AS sourcedId,
                       * EXCLUDE (m)
                FROM (
                SELECT md5('enr-{{seed}}-' || (p.i + 1) || '-' || c.class_no) AS m,
                       printf('cls-%07d', c.class_no) AS classSourcedId,
                       printf('sch-%05d', p.school_no) AS schoolSourcedId,
                       printf('stu-%07d', p.i + 1) AS userSourcedId, 'student' AS role, NULL AS "primary",
                       CASE WHEN {since} > 1 THEN greatest(t.startDate, {begin.format(col=since)})
                            ELSE t.startDate END AS beginDate,
                       t.endDate, 1 AS _k, p.i AS _a, c.class_no AS _b
                FROM plan p
                JOIN people pe USING (i)
                JOIN sections s ON s.school_no = p.school_no AND s.code = p.code AND s.term = p.term
                JOIN classes c ON c.school_no = p.school_no AND c.code = p.code AND c.term = p.term
                     AND c.sec = (hash({{seed}}, 'sec', p.i, p.slot, p.term) + p.sec_shift) % s.nsec
                JOIN terms t ON t.term = p.term)
                UNION ALL
                SELECT 'enr-t' || st.teacher_offset + x.idx + 1 || '-' || c.class_no,
                       printf('cls-%07d', c.class_no), printf('sch-%05d', c.school_no),
                       printf('tch-%06d', st.teacher_offset + x.idx + 1), 'teacher', x.prim,
                       CASE WHEN x.prim AND c.replaced IS NOT NULL
                            THEN greatest(t.startDate, {begin.format(col="c.replaced")}) ELSE t.startDate END,
                       t.endDate, 0, c.class_no, x.prim::INTEGER
                FROM classes c JOIN school_staff st USING (school_no) JOIN terms t USING (term),
                LATERAL (SELECT c.teacher_idx AS idx, true AS prim
                         UNION ALL
                         SELECT (c.teacher_idx + 1) % st.n_teachers, false
                         WHERE st.n_teachers > 1 AND hash({{seed}}, 'co-teacher', c.class_no) % 20 = 0) x
            ) ORDER BY _k, _a, _b DESC""")  # fmt: skip

    def _write_demographics(self, folder: Path) -> int:
        return self._copy(folder, "demographics.csv", f"""
            WITH d AS (
                SELECT p.i, p.grade, p.female, hash({{seed}}, 'race', p.i) % 1000 AS race,
                       (hash({{seed}}, 'born', p.i) >> 1)::BIGINT AS hb,
                       hash({{seed}}, 'residence', p.i) % 100 AS res
                FROM people p)
            SELECT printf('stu-%07d', i + 1) AS sourcedId, NULL AS status, NULL AS dateLastModified,
                   (DATE '2020-09-02' - to_years(grade + CASE WHEN hb % 100 < 3 THEN 1 ELSE 0 END)
                    + to_days((hb // 100 % 365)::INTEGER))::DATE AS birthDate,
                   CASE WHEN female THEN 'female' ELSE 'male' END AS sex,
                   race < 10 AS americanIndianOrAlaskaNative,
                   race BETWEEN 10 AND 69 OR race BETWEEN 265 AND 279 AS asian,
                   race BETWEEN 70 AND 219 OR race BETWEEN 240 AND 264 AS blackOrAfricanAmerican,
                   race BETWEEN 220 AND 229 AS nativeHawaiianOrOtherPacificIslander,
                   race >= 240 AS white,
                   race BETWEEN 240 AND 279 AS demographicRaceTwoOrMoreRaces,
                   hash({{seed}}, 'hispanic', i) % 100 < 28 AS hispanicOrLatinoEthnicity,
                   CASE WHEN hb // 40000 % 100 < 90 THEN 'US'
                        ELSE ['MX', 'GT', 'SV', 'PH', 'VN', 'IN', 'CN', 'KR', 'HN', 'CA']
                            [hb // 40000 % 10 + 1]
                   END AS countryOfBirthCode,
                   CASE WHEN hb // 40000 % 100 < 90 THEN
                        CASE WHEN hb // 4000000 % 4 > 0 THEN 'CA'
                             ELSE ['AZ', 'NV', 'OR', 'WA', 'TX', 'NY', 'IL', 'FL'][hb // 16000000 % 8 + 1] END
                   END AS stateOfBirthAbbreviation,
                   CASE WHEN hb // 40000 % 100 < 90 AND hb // 4000000 % 4 > 0
                        THEN {_sql_list(CITIES_OF_BIRTH)}[hb // 64000000 % {len(CITIES_OF_BIRTH)} + 1] END
                       AS cityOfBirth,
                   CASE WHEN res < 92 THEN '01652' WHEN res < 97 THEN '01653' ELSE '01654' END
                       AS publicSchoolResidenceStatus
            FROM d ORDER BY i""")  # fmt: skip


def _write_manifest(folder: Path) -> None:
    written = {name.removesuffix(".csv") for name in HEADERS}
    lines = ["propertyName,value", "manifest.version,1.0", "oneroster.version,1.1"]
    lines += [f"file.{name},{'bulk' if name in written else 'absent'}" for name in MANIFEST_FILES]
    lines += ["source.systemName,etl_project synthetic SIS", "source.systemCode,etl-project-generate"]
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _inject_errors(conn: duckdb.DuckDBPyConnection, folder: Path, rows: dict[str, int], count: int) -> list[
        InjectedError]:  # fmt: skip
    """Append ``count`` bad rows (cycling through ERROR_KINDS) to the files just written."""
    enr = (folder / "enrollments.csv").open(encoding="utf-8")
    next(enr)
    first_enrollment = next(enr).rstrip("\n").split(",")  # generated ids and dates hold no commas
    enr.close()
    _, _, _, class_id, school_id, user_id, _, _, begin, end = first_enrollment
    cls = conn.execute(
        "SELECT printf('crs-%06d', co.course_no) FROM classes c JOIN courses co USING (school_no, code) "
        "ORDER BY c.class_no LIMIT 1"
    ).fetchone()[0]
    appended: dict[str, list[str]] = {}
    errors = []
    for k in range(count):
        kind, file, description = ERROR_KINDS[k % len(ERROR_KINDS)]
        sid = f"err-{k + 1:04d}"
        if kind == "bad_date":
            d = date.fromisoformat(begin)
            line = f"{sid},,,{class_id},{school_id},{user_id},student,,{d:%d/%m/%Y},{end}"
        elif kind == "unknown_enum":
            line = (f"{sid},,,true,{school_id},Student Teacher,jdoe.err{k + 1},{{SIS:E{k + 1}}},Jamie,Doe,,,"
                    f"jdoe.err{k + 1}@example.org,,,,,")  # fmt: skip
        elif kind == "missing_required":
            line = f"{sid},,,true,{school_id},student,,{{SIS:E{k + 1}}},Casey,Nobody,,,,,,,09,"
        elif kind == "duplicate_sourcedId":
            sid = first_enrollment[0]
            line = f"{sid},,,{class_id},{school_id},{user_id},student,,{begin},{end}"
        elif kind == "unknown_reference":
            line = f"{sid},,,cls-missing-{k + 1},{school_id},{user_id},student,,{begin},{end}"
        else:  # bare_list
            line = (f"{sid},,,Study Skills - Section 01,09,10,{cls},SKL-Y-01,scheduled,Room 101,{school_id},"
                    f"as-2027-s1,Study Skills,22101,8")  # fmt: skip
        appended.setdefault(file, []).append(line)
        errors.append(InjectedError(kind, file, rows[file] + 1 + len(appended[file]), sid, description))
    for file, lines in appended.items():
        with (folder / file).open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        rows[file] += len(lines)
    return errors


def _write_zip(folder: Path, out: Path, files: dict[str, FileStats]) -> None:
    """Deterministic zip: fixed order and timestamps, CSVs at the root."""
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in files:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            src = folder / name
            with src.open("rb") as fh, zf.open(info, "w", force_zip64=src.stat().st_size > 2**31 - 1) as dst:
                shutil.copyfileobj(fh, dst, 1 << 20)
    os.replace(partial, out)


def night_date(day: int) -> date:
    """The calendar date a generated night stands for."""
    return FIRST_NIGHT + timedelta(days=day - 1)
