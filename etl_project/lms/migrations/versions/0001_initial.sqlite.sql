-- The LMS schema of revision 0001 (sqlite), as lms/schema.py's ddl() wrote it then: one statement
-- per block, each ended by a line holding only ';'. Frozen: a change to the schema is a new revision.

CREATE TABLE IF NOT EXISTS lms_sequences (name TEXT PRIMARY KEY, last BIGINT NOT NULL)
;

CREATE TABLE IF NOT EXISTS schools (
    id BIGINT NOT NULL,
    district TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    name TEXT,
    identifier TEXT,
    district_sourced_id TEXT,
    active INTEGER NOT NULL,
    row_hash BIGINT,
    deactivated_at TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id), UNIQUE (district, sourced_id))
;

CREATE TRIGGER IF NOT EXISTS schools_edited AFTER UPDATE ON schools FOR EACH ROW
    WHEN NEW.row_hash IS OLD.row_hash AND NOT (NEW.name IS OLD.name AND NEW.identifier IS OLD.identifier AND NEW.district_sourced_id IS OLD.district_sourced_id)
    BEGIN UPDATE schools SET row_hash = NULL WHERE id = NEW.id; END
;

CREATE TABLE IF NOT EXISTS terms (
    id BIGINT NOT NULL,
    district TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    title TEXT,
    type TEXT,
    start_date TEXT,
    end_date TEXT,
    parent_sourced_id TEXT,
    school_year INTEGER,
    active INTEGER NOT NULL,
    row_hash BIGINT,
    deactivated_at TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id), UNIQUE (district, sourced_id))
;

CREATE TRIGGER IF NOT EXISTS terms_edited AFTER UPDATE ON terms FOR EACH ROW
    WHEN NEW.row_hash IS OLD.row_hash AND NOT (NEW.title IS OLD.title AND NEW.type IS OLD.type AND NEW.start_date IS OLD.start_date AND NEW.end_date IS OLD.end_date AND NEW.parent_sourced_id IS OLD.parent_sourced_id AND NEW.school_year IS OLD.school_year)
    BEGIN UPDATE terms SET row_hash = NULL WHERE id = NEW.id; END
;

CREATE TABLE IF NOT EXISTS courses (
    id BIGINT NOT NULL,
    district TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    title TEXT,
    course_code TEXT,
    grades TEXT,
    org_sourced_id TEXT,
    school_year_sourced_id TEXT,
    subjects TEXT,
    active INTEGER NOT NULL,
    row_hash BIGINT,
    deactivated_at TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id), UNIQUE (district, sourced_id))
;

CREATE TRIGGER IF NOT EXISTS courses_edited AFTER UPDATE ON courses FOR EACH ROW
    WHEN NEW.row_hash IS OLD.row_hash AND NOT (NEW.title IS OLD.title AND NEW.course_code IS OLD.course_code AND NEW.grades IS OLD.grades AND NEW.org_sourced_id IS OLD.org_sourced_id AND NEW.school_year_sourced_id IS OLD.school_year_sourced_id AND NEW.subjects IS OLD.subjects)
    BEGIN UPDATE courses SET row_hash = NULL WHERE id = NEW.id; END
;

CREATE TABLE IF NOT EXISTS sections (
    id BIGINT NOT NULL,
    district TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    title TEXT,
    class_code TEXT,
    class_type TEXT,
    location TEXT,
    course_sourced_id TEXT,
    school_sourced_id TEXT,
    term_sourced_ids TEXT,
    periods TEXT,
    grades TEXT,
    active INTEGER NOT NULL,
    row_hash BIGINT,
    deactivated_at TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id), UNIQUE (district, sourced_id))
;

CREATE TRIGGER IF NOT EXISTS sections_edited AFTER UPDATE ON sections FOR EACH ROW
    WHEN NEW.row_hash IS OLD.row_hash AND NOT (NEW.title IS OLD.title AND NEW.class_code IS OLD.class_code AND NEW.class_type IS OLD.class_type AND NEW.location IS OLD.location AND NEW.course_sourced_id IS OLD.course_sourced_id AND NEW.school_sourced_id IS OLD.school_sourced_id AND NEW.term_sourced_ids IS OLD.term_sourced_ids AND NEW.periods IS OLD.periods AND NEW.grades IS OLD.grades)
    BEGIN UPDATE sections SET row_hash = NULL WHERE id = NEW.id; END
;

CREATE TABLE IF NOT EXISTS users (
    id BIGINT NOT NULL,
    district TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    username TEXT,
    given_name TEXT,
    family_name TEXT,
    middle_name TEXT,
    preferred_given_name TEXT,
    preferred_family_name TEXT,
    email TEXT,
    role TEXT,
    identifier TEXT,
    grades TEXT,
    org_sourced_ids TEXT,
    primary_org_sourced_id TEXT,
    enabled INTEGER,
    active INTEGER NOT NULL,
    row_hash BIGINT,
    deactivated_at TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id), UNIQUE (district, sourced_id))
;

CREATE TRIGGER IF NOT EXISTS users_edited AFTER UPDATE ON users FOR EACH ROW
    WHEN NEW.row_hash IS OLD.row_hash AND NOT (NEW.username IS OLD.username AND NEW.given_name IS OLD.given_name AND NEW.family_name IS OLD.family_name AND NEW.middle_name IS OLD.middle_name AND NEW.preferred_given_name IS OLD.preferred_given_name AND NEW.preferred_family_name IS OLD.preferred_family_name AND NEW.email IS OLD.email AND NEW.role IS OLD.role AND NEW.identifier IS OLD.identifier AND NEW.grades IS OLD.grades AND NEW.org_sourced_ids IS OLD.org_sourced_ids AND NEW.primary_org_sourced_id IS OLD.primary_org_sourced_id AND NEW.enabled IS OLD.enabled)
    BEGIN UPDATE users SET row_hash = NULL WHERE id = NEW.id; END
;

CREATE TABLE IF NOT EXISTS enrollments (
    id BIGINT NOT NULL,
    district TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    section_sourced_id TEXT,
    user_sourced_id TEXT,
    school_sourced_id TEXT,
    role TEXT,
    is_primary INTEGER,
    begin_date TEXT,
    end_date TEXT,
    active INTEGER NOT NULL,
    row_hash BIGINT,
    deactivated_at TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id), UNIQUE (district, sourced_id))
;

CREATE TRIGGER IF NOT EXISTS enrollments_edited AFTER UPDATE ON enrollments FOR EACH ROW
    WHEN NEW.row_hash IS OLD.row_hash AND NOT (NEW.section_sourced_id IS OLD.section_sourced_id AND NEW.user_sourced_id IS OLD.user_sourced_id AND NEW.school_sourced_id IS OLD.school_sourced_id AND NEW.role IS OLD.role AND NEW.is_primary IS OLD.is_primary AND NEW.begin_date IS OLD.begin_date AND NEW.end_date IS OLD.end_date)
    BEGIN UPDATE enrollments SET row_hash = NULL WHERE id = NEW.id; END
;

CREATE VIEW IF NOT EXISTS id_map AS
    SELECT district, 'schools' AS entity, sourced_id, id AS lms_id FROM schools
    UNION ALL SELECT district, 'terms' AS entity, sourced_id, id AS lms_id FROM terms
    UNION ALL SELECT district, 'courses' AS entity, sourced_id, id AS lms_id FROM courses
    UNION ALL SELECT district, 'sections' AS entity, sourced_id, id AS lms_id FROM sections
    UNION ALL SELECT district, 'users' AS entity, sourced_id, id AS lms_id FROM users
    UNION ALL SELECT district, 'enrollments' AS entity, sourced_id, id AS lms_id FROM enrollments
;

CREATE TABLE IF NOT EXISTS sync_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    district TEXT NOT NULL,
    partition_date DATE NOT NULL,
    run_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('applied', 'held', 'released', 'failed')),
    counts TEXT,
    held TEXT,
    released_by TEXT,
    release_reason TEXT,
    ledger_first BIGINT,
    ledger_last BIGINT,
    started_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at TEXT)
;

CREATE INDEX IF NOT EXISTS sync_runs_night ON sync_runs (district, partition_date)
;

CREATE TABLE IF NOT EXISTS change_sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sync_run_id BIGINT NOT NULL,
    entity TEXT NOT NULL,
    file_uri TEXT,
    file_version TEXT,
    file_sha256 TEXT,
    fields TEXT NOT NULL)
;

CREATE INDEX IF NOT EXISTS change_sources_run ON change_sources (sync_run_id)
;

CREATE TABLE IF NOT EXISTS change_entries (
    id BIGINT NOT NULL,
    district TEXT NOT NULL,
    source_id BIGINT NOT NULL,
    sourced_id TEXT NOT NULL,
    lms_id BIGINT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('created', 'updated', 'deactivated', 'reactivated')),
    line BIGINT,
    changes TEXT, PRIMARY KEY (id))
;

CREATE INDEX IF NOT EXISTS change_entries_lms_id ON change_entries (lms_id)
;

CREATE VIEW IF NOT EXISTS change_ledger AS
    SELECT e.id, s.sync_run_id, e.district, r.partition_date, r.run_id, s.entity, e.sourced_id, e.lms_id,
           e.operation,
           CASE WHEN e.operation = 'created' THEN (SELECT json_group_object(f.value, json(e.changes -> ('$[' || f.key || ']')))
              FROM json_each(s.fields) f WHERE json_type(e.changes, '$[' || f.key || ']') <> 'null') ELSE e.changes END AS changes,
           s.file_uri, s.file_version, e.line, s.file_sha256, r.released_by, r.release_reason,
           r.finished_at AS recorded_at
    FROM change_entries e
    JOIN change_sources s ON s.id = e.source_id
    JOIN sync_runs r ON r.id = s.sync_run_id AND r.district = e.district
;
