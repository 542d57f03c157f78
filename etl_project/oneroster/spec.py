"""The OneRoster CSV binding (1.1 and 1.2) as data: files, columns, types, vocabularies, references.

Columns are located by name, never by position, so real files with 1.0 names, re-ordered columns or extra
columns still load. Vocabularies are matched case-insensitively and stored in the spec's spelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column kinds. ``secret`` and ``ignored`` columns are recognised but never stored.
ID, STATUS, DATETIME, STRING, ENUM, BOOL, DATE, YEAR, LIST, REF, REFLIST, SECRET, IGNORED = (
    "id",
    "status",
    "datetime",
    "string",
    "enum",
    "bool",
    "date",
    "year",
    "list",
    "ref",
    "reflist",
    "secret",
    "ignored",
)

SQL_TYPES = {
    ID: "VARCHAR",
    STATUS: "VARCHAR",
    DATETIME: "TIMESTAMPTZ",
    STRING: "VARCHAR",
    ENUM: "VARCHAR",
    BOOL: "BOOLEAN",
    DATE: "DATE",
    YEAR: "INTEGER",
    LIST: "VARCHAR[]",
    REF: "VARCHAR",
    REFLIST: "VARCHAR[]",
}

SUPPORTED_VERSIONS = ("1.1", "1.2")
V11, V12 = ("1.1",), ("1.2",)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = STRING
    required: bool = False
    # Versions in which a value is required (None = whenever ``required``).
    required_in: tuple[str, ...] | None = None
    values: tuple[str, ...] = ()  # vocabulary, in the spec's spelling
    extensible: bool = False  # 1.2 allows proprietary ``ext:`` values
    ref: str | None = None  # referenced table for ref/reflist
    aliases: tuple[str, ...] = ()  # 1.0 / common drift spellings
    versions: tuple[str, ...] = SUPPORTED_VERSIONS  # versions whose file has this column

    @property
    def stored(self) -> bool:
        return self.kind not in (SECRET, IGNORED)

    def is_required(self, version: str | None) -> bool:
        if not self.required:
            return False
        return self.required_in is None or version in self.required_in


@dataclass(frozen=True)
class TableSpec:
    table: str  # our table name (snake_case)
    file: str  # the spec's file name
    columns: tuple[Column, ...]
    # Header names recognised but carrying nothing we keep (other than via their own column).
    extra_known: tuple[str, ...] = field(default=())

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def stored_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.stored)


def _base(*cols: Column) -> tuple[Column, ...]:
    return (
        Column("sourcedId", ID, required=True),
        Column("status", STATUS),
        Column("dateLastModified", DATETIME),
        *cols,
    )


ORG_TYPES = ("department", "school", "district", "local", "state", "national")
SESSION_TYPES = ("gradingPeriod", "semester", "schoolYear", "term")
CLASS_TYPES = ("homeroom", "scheduled")
USER_ROLES_11 = ("administrator", "aide", "guardian", "parent", "proctor", "relative", "student", "teacher")
ENROLLMENT_ROLES = ("administrator", "proctor", "student", "teacher")
ROLES_12 = (
    "aide",
    "counselor",
    "districtAdministrator",
    "guardian",
    "parent",
    "principal",
    "proctor",
    "relative",
    "siteAdministrator",
    "student",
    "systemAdministrator",
    "teacher",
)
ROLE_TYPES = ("primary", "secondary")
SEXES = ("male", "female", "other", "unspecified")
STATUSES = ("active", "tobedeleted", "inactive")  # inactive: deprecated 1.0/1.1 value, stored as tobedeleted

ORGS = TableSpec(
    "orgs",
    "orgs.csv",
    _base(
        Column("name", required=True),
        Column("type", ENUM, required=True, values=ORG_TYPES, extensible=True),
        Column("identifier"),
        Column("parentSourcedId", REF, ref="orgs"),
    ),
)

ACADEMIC_SESSIONS = TableSpec(
    "academic_sessions",
    "academicSessions.csv",
    _base(
        Column("title", required=True),
        Column("type", ENUM, required=True, values=SESSION_TYPES, extensible=True),
        Column("startDate", DATE, required=True),
        Column("endDate", DATE, required=True),
        Column("parentSourcedId", REF, ref="academic_sessions"),
        Column("schoolYear", YEAR, required=True),
    ),
)

COURSES = TableSpec(
    "courses",
    "courses.csv",
    _base(
        Column("schoolYearSourcedId", REF, ref="academic_sessions", aliases=("schoolYearId",)),
        Column("title", required=True),
        Column("courseCode"),
        Column("grades", LIST, aliases=("grade",)),
        Column("orgSourcedId", REF, required=True, ref="orgs"),
        Column("subjects", LIST),
        Column("subjectCodes", LIST),
    ),
)

CLASSES = TableSpec(
    "classes",
    "classes.csv",
    _base(
        Column("title", required=True),
        Column("grades", LIST, aliases=("grade",)),
        Column("courseSourcedId", REF, required=True, ref="courses"),
        Column("classCode"),
        Column("classType", ENUM, required=True, values=CLASS_TYPES, extensible=True),
        Column("location"),
        Column("schoolSourcedId", REF, required=True, ref="orgs"),
        Column("termSourcedIds", REFLIST, required=True, ref="academic_sessions", aliases=("termSourcedId",)),
        Column("subjects", LIST),
        Column("subjectCodes", LIST),
        Column("periods", LIST),
    ),
)

USERS = TableSpec(
    "users",
    "users.csv",
    _base(
        Column("enabledUser", BOOL, required=True),
        Column("orgSourcedIds", REFLIST, required=True, required_in=("1.1",), ref="orgs", versions=V11),
        Column(
            "role",
            ENUM,
            required=True,
            required_in=("1.1",),
            values=USER_ROLES_11,
            extensible=True,
            versions=V11,
        ),
        Column("username", required=True),
        Column("userIds", LIST, aliases=("userId",)),
        Column("givenName", required=True),
        Column("familyName", required=True),
        Column("middleName"),
        Column("identifier"),
        Column("email"),
        Column("sms"),
        Column("phone"),
        Column("agentSourcedIds", REFLIST, ref="users", aliases=("agents",)),
        Column("grades", LIST),
        Column("password", SECRET),
        Column("userMasterIdentifier", versions=V12),
        Column("resourceSourcedIds", IGNORED, versions=V12),  # 1.2.0 only, removed again in 1.2.1
        Column("preferredGivenName", versions=V12),
        Column("preferredMiddleName", versions=V12),
        Column("preferredFamilyName", versions=V12),
        Column("primaryOrgSourcedId", REF, ref="orgs", versions=V12),
        Column("pronouns", versions=V12),
    ),
)

DEMOGRAPHICS = TableSpec(
    "demographics",
    "demographics.csv",
    (
        Column("sourcedId", ID, required=True, aliases=("userSourcedId",)),
        Column("status", STATUS),
        Column("dateLastModified", DATETIME),
        Column("birthDate", DATE, aliases=("birthdate",)),
        Column("sex", ENUM, values=SEXES, extensible=True),
        Column("americanIndianOrAlaskaNative", BOOL),
        Column("asian", BOOL),
        Column("blackOrAfricanAmerican", BOOL),
        Column("nativeHawaiianOrOtherPacificIslander", BOOL),
        Column("white", BOOL),
        Column("demographicRaceTwoOrMoreRaces", BOOL),
        Column("hispanicOrLatinoEthnicity", BOOL),
        Column("countryOfBirthCode"),
        Column("stateOfBirthAbbreviation"),
        Column("cityOfBirth"),
        Column("publicSchoolResidenceStatus"),
    ),
)

ENROLLMENTS = TableSpec(
    "enrollments",
    "enrollments.csv",
    _base(
        Column("classSourcedId", REF, required=True, ref="classes"),
        Column("schoolSourcedId", REF, required=True, ref="orgs"),
        Column("userSourcedId", REF, required=True, ref="users"),
        Column("role", ENUM, required=True, values=ENROLLMENT_ROLES, extensible=True),
        Column("primary", BOOL),
        Column("beginDate", DATE),
        Column("endDate", DATE),
    ),
)

ROLES = TableSpec(
    "roles",
    "roles.csv",
    _base(
        Column("userSourcedId", REF, required=True, ref="users"),
        Column("roleType", ENUM, required=True, values=ROLE_TYPES),
        Column("role", ENUM, required=True, values=ROLES_12, extensible=True),
        Column("beginDate", DATE),
        Column("endDate", DATE),
        Column("orgSourcedId", REF, required=True, ref="orgs"),
        Column("userProfileSourcedId", REF, ref="user_profiles"),
    ),
)

USER_PROFILES = TableSpec(
    "user_profiles",
    "userProfiles.csv",
    _base(
        Column("userSourcedId", REF, required=True, ref="users"),
        Column("profileType", required=True),
        Column("vendorId", required=True),
        Column("applicationId"),
        Column("description"),
        Column("credentialType", required=True),
        Column("username", required=True),
        Column("password", SECRET),
    ),
)

# Load order: every required reference points at a table loaded earlier.
SPECS: tuple[TableSpec, ...] = (
    ORGS,
    ACADEMIC_SESSIONS,
    COURSES,
    CLASSES,
    USERS,
    DEMOGRAPHICS,
    ENROLLMENTS,
    ROLES,
    USER_PROFILES,
)
TABLES: tuple[str, ...] = tuple(s.table for s in SPECS)
BY_TABLE = {s.table: s for s in SPECS}
BY_FILE = {s.file: s for s in SPECS}

# Required references are enforced (rows rejected); optional ones are only reported as warnings.
# demographics.sourcedId is the user's own sourcedId (1:1), so it is a required reference to users.
REQUIRED_REFS: dict[str, tuple[tuple[str, str], ...]] = {
    "courses": (("orgSourcedId", "orgs"),),
    "classes": (
        ("courseSourcedId", "courses"),
        ("schoolSourcedId", "orgs"),
        ("termSourcedIds", "academic_sessions"),
    ),
    "users": (("orgSourcedIds", "orgs"),),
    "demographics": (("sourcedId", "users"),),
    "enrollments": (("classSourcedId", "classes"), ("userSourcedId", "users"), ("schoolSourcedId", "orgs")),
    "roles": (("userSourcedId", "users"), ("orgSourcedId", "orgs")),
    "user_profiles": (("userSourcedId", "users"),),
}
OPTIONAL_REFS: dict[str, tuple[tuple[str, str], ...]] = {
    "orgs": (("parentSourcedId", "orgs"),),
    "academic_sessions": (("parentSourcedId", "academic_sessions"),),
    "courses": (("schoolYearSourcedId", "academic_sessions"),),
    "users": (("agentSourcedIds", "users"), ("primaryOrgSourcedId", "orgs")),
    "roles": (("userProfileSourcedId", "user_profiles"),),
}

# Columns a bulk load never uses (a bulk file must leave them empty; the LMS takes bulk rows as they are):
# a malformed value there is dropped with a warning instead of rejecting the row. ``status`` is not one of
# them: a bulk row's status still decides whether the LMS keeps the record active.
BULK_IGNORED: tuple[str, ...] = ("dateLastModified",)

# Gradebook / resources files: recognised (so the manifest check understands them) but not loaded here.
OTHER_FILES_11 = (
    "categories.csv",
    "classResources.csv",
    "courseResources.csv",
    "lineItems.csv",
    "resources.csv",
    "results.csv",
)
OTHER_FILES_12 = (
    "lineItemLearningObjectiveIds.csv",
    "lineItemScoreScales.csv",
    "resultLearningObjectiveIds.csv",
    "resultScoreScales.csv",
    "scoreScales.csv",
    "userResources.csv",
)
KNOWN_FILES: tuple[str, ...] = (*(s.file for s in SPECS), *OTHER_FILES_11, *OTHER_FILES_12)
MANIFEST = "manifest.csv"
MODES = ("bulk", "delta", "absent")
MANIFEST_PROPERTIES = ("manifest.version", "oneroster.version", "source.systemName", "source.systemCode")
