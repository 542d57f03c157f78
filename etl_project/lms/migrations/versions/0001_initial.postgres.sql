-- The LMS schema of revision 0001 (postgres), as lms/schema.py's ddl() wrote it then: one statement
-- per block, each ended by a line holding only ';'. Frozen: a change to the schema is a new revision.

CREATE SCHEMA IF NOT EXISTS lms
;

CREATE SCHEMA IF NOT EXISTS lms_staging
;

CREATE OR REPLACE FUNCTION lms.clear_row_hash() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN NEW.row_hash := NULL; RETURN NEW; END $$
;

CREATE SEQUENCE IF NOT EXISTS lms.lms_ids
;

CREATE SEQUENCE IF NOT EXISTS lms.ledger_ids
;

CREATE TABLE IF NOT EXISTS lms.schools (
    id BIGINT NOT NULL,
    district TEXT COLLATE "C" NOT NULL,
    sourced_id TEXT COLLATE "C" NOT NULL,
    name TEXT,
    identifier TEXT,
    district_sourced_id TEXT,
    active BOOLEAN NOT NULL,
    row_hash BIGINT,
    deactivated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()) PARTITION BY LIST (district)
;

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'schools_edited'
                   AND tgrelid = 'lms.schools'::regclass) THEN
        CREATE TRIGGER schools_edited BEFORE UPDATE ON lms.schools FOR EACH ROW
        WHEN (NEW.row_hash IS NOT DISTINCT FROM OLD.row_hash AND (NEW.name, NEW.identifier, NEW.district_sourced_id) IS DISTINCT FROM (OLD.name, OLD.identifier, OLD.district_sourced_id))
        EXECUTE FUNCTION lms.clear_row_hash();
        ALTER TABLE lms.schools ENABLE ALWAYS TRIGGER schools_edited;
    END IF;
END $$
;

CREATE TABLE IF NOT EXISTS lms.terms (
    id BIGINT NOT NULL,
    district TEXT COLLATE "C" NOT NULL,
    sourced_id TEXT COLLATE "C" NOT NULL,
    title TEXT,
    type TEXT,
    start_date DATE,
    end_date DATE,
    parent_sourced_id TEXT,
    school_year INTEGER,
    active BOOLEAN NOT NULL,
    row_hash BIGINT,
    deactivated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()) PARTITION BY LIST (district)
;

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'terms_edited'
                   AND tgrelid = 'lms.terms'::regclass) THEN
        CREATE TRIGGER terms_edited BEFORE UPDATE ON lms.terms FOR EACH ROW
        WHEN (NEW.row_hash IS NOT DISTINCT FROM OLD.row_hash AND (NEW.title, NEW.type, NEW.start_date, NEW.end_date, NEW.parent_sourced_id, NEW.school_year) IS DISTINCT FROM (OLD.title, OLD.type, OLD.start_date, OLD.end_date, OLD.parent_sourced_id, OLD.school_year))
        EXECUTE FUNCTION lms.clear_row_hash();
        ALTER TABLE lms.terms ENABLE ALWAYS TRIGGER terms_edited;
    END IF;
END $$
;

CREATE TABLE IF NOT EXISTS lms.courses (
    id BIGINT NOT NULL,
    district TEXT COLLATE "C" NOT NULL,
    sourced_id TEXT COLLATE "C" NOT NULL,
    title TEXT,
    course_code TEXT,
    grades TEXT,
    org_sourced_id TEXT,
    school_year_sourced_id TEXT,
    subjects TEXT,
    active BOOLEAN NOT NULL,
    row_hash BIGINT,
    deactivated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()) PARTITION BY LIST (district)
;

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'courses_edited'
                   AND tgrelid = 'lms.courses'::regclass) THEN
        CREATE TRIGGER courses_edited BEFORE UPDATE ON lms.courses FOR EACH ROW
        WHEN (NEW.row_hash IS NOT DISTINCT FROM OLD.row_hash AND (NEW.title, NEW.course_code, NEW.grades, NEW.org_sourced_id, NEW.school_year_sourced_id, NEW.subjects) IS DISTINCT FROM (OLD.title, OLD.course_code, OLD.grades, OLD.org_sourced_id, OLD.school_year_sourced_id, OLD.subjects))
        EXECUTE FUNCTION lms.clear_row_hash();
        ALTER TABLE lms.courses ENABLE ALWAYS TRIGGER courses_edited;
    END IF;
END $$
;

CREATE TABLE IF NOT EXISTS lms.sections (
    id BIGINT NOT NULL,
    district TEXT COLLATE "C" NOT NULL,
    sourced_id TEXT COLLATE "C" NOT NULL,
    title TEXT,
    class_code TEXT,
    class_type TEXT,
    location TEXT,
    course_sourced_id TEXT,
    school_sourced_id TEXT,
    term_sourced_ids TEXT,
    periods TEXT,
    grades TEXT,
    active BOOLEAN NOT NULL,
    row_hash BIGINT,
    deactivated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()) PARTITION BY LIST (district)
;

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'sections_edited'
                   AND tgrelid = 'lms.sections'::regclass) THEN
        CREATE TRIGGER sections_edited BEFORE UPDATE ON lms.sections FOR EACH ROW
        WHEN (NEW.row_hash IS NOT DISTINCT FROM OLD.row_hash AND (NEW.title, NEW.class_code, NEW.class_type, NEW.location, NEW.course_sourced_id, NEW.school_sourced_id, NEW.term_sourced_ids, NEW.periods, NEW.grades) IS DISTINCT FROM (OLD.title, OLD.class_code, OLD.class_type, OLD.location, OLD.course_sourced_id, OLD.school_sourced_id, OLD.term_sourced_ids, OLD.periods, OLD.grades))
        EXECUTE FUNCTION lms.clear_row_hash();
        ALTER TABLE lms.sections ENABLE ALWAYS TRIGGER sections_edited;
    END IF;
END $$
;

CREATE TABLE IF NOT EXISTS lms.users (
    id BIGINT NOT NULL,
    district TEXT COLLATE "C" NOT NULL,
    sourced_id TEXT COLLATE "C" NOT NULL,
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
    enabled BOOLEAN,
    active BOOLEAN NOT NULL,
    row_hash BIGINT,
    deactivated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()) PARTITION BY LIST (district)
;

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'users_edited'
                   AND tgrelid = 'lms.users'::regclass) THEN
        CREATE TRIGGER users_edited BEFORE UPDATE ON lms.users FOR EACH ROW
        WHEN (NEW.row_hash IS NOT DISTINCT FROM OLD.row_hash AND (NEW.username, NEW.given_name, NEW.family_name, NEW.middle_name, NEW.preferred_given_name, NEW.preferred_family_name, NEW.email, NEW.role, NEW.identifier, NEW.grades, NEW.org_sourced_ids, NEW.primary_org_sourced_id, NEW.enabled) IS DISTINCT FROM (OLD.username, OLD.given_name, OLD.family_name, OLD.middle_name, OLD.preferred_given_name, OLD.preferred_family_name, OLD.email, OLD.role, OLD.identifier, OLD.grades, OLD.org_sourced_ids, OLD.primary_org_sourced_id, OLD.enabled))
        EXECUTE FUNCTION lms.clear_row_hash();
        ALTER TABLE lms.users ENABLE ALWAYS TRIGGER users_edited;
    END IF;
END $$
;

CREATE TABLE IF NOT EXISTS lms.enrollments (
    id BIGINT NOT NULL,
    district TEXT COLLATE "C" NOT NULL,
    sourced_id TEXT COLLATE "C" NOT NULL,
    section_sourced_id TEXT,
    user_sourced_id TEXT,
    school_sourced_id TEXT,
    role TEXT,
    is_primary BOOLEAN,
    begin_date DATE,
    end_date DATE,
    active BOOLEAN NOT NULL,
    row_hash BIGINT,
    deactivated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()) PARTITION BY LIST (district)
;

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'enrollments_edited'
                   AND tgrelid = 'lms.enrollments'::regclass) THEN
        CREATE TRIGGER enrollments_edited BEFORE UPDATE ON lms.enrollments FOR EACH ROW
        WHEN (NEW.row_hash IS NOT DISTINCT FROM OLD.row_hash AND (NEW.section_sourced_id, NEW.user_sourced_id, NEW.school_sourced_id, NEW.role, NEW.is_primary, NEW.begin_date, NEW.end_date) IS DISTINCT FROM (OLD.section_sourced_id, OLD.user_sourced_id, OLD.school_sourced_id, OLD.role, OLD.is_primary, OLD.begin_date, OLD.end_date))
        EXECUTE FUNCTION lms.clear_row_hash();
        ALTER TABLE lms.enrollments ENABLE ALWAYS TRIGGER enrollments_edited;
    END IF;
END $$
;

CREATE OR REPLACE VIEW lms.id_map AS
    SELECT district, 'schools' AS entity, sourced_id, id AS lms_id FROM lms.schools
    UNION ALL SELECT district, 'terms' AS entity, sourced_id, id AS lms_id FROM lms.terms
    UNION ALL SELECT district, 'courses' AS entity, sourced_id, id AS lms_id FROM lms.courses
    UNION ALL SELECT district, 'sections' AS entity, sourced_id, id AS lms_id FROM lms.sections
    UNION ALL SELECT district, 'users' AS entity, sourced_id, id AS lms_id FROM lms.users
    UNION ALL SELECT district, 'enrollments' AS entity, sourced_id, id AS lms_id FROM lms.enrollments
;

CREATE TABLE IF NOT EXISTS lms.sync_runs (
    id BIGSERIAL PRIMARY KEY,
    district TEXT NOT NULL,
    partition_date DATE NOT NULL,
    run_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('applied', 'held', 'released', 'failed')),
    counts JSON,
    held JSON,
    released_by TEXT,
    release_reason TEXT,
    ledger_first BIGINT,
    ledger_last BIGINT,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ)
;

CREATE INDEX IF NOT EXISTS sync_runs_night ON lms.sync_runs (district, partition_date)
;

CREATE TABLE IF NOT EXISTS lms.change_sources (
    id BIGSERIAL PRIMARY KEY,
    sync_run_id BIGINT NOT NULL,
    entity TEXT NOT NULL,
    file_uri TEXT,
    file_version TEXT,
    file_sha256 TEXT,
    fields JSON NOT NULL)
;

CREATE INDEX IF NOT EXISTS change_sources_run ON lms.change_sources (sync_run_id)
;

CREATE TABLE IF NOT EXISTS lms.change_entries (
    id BIGINT NOT NULL,
    district TEXT COLLATE "C" NOT NULL,
    source_id BIGINT NOT NULL,
    sourced_id TEXT COLLATE "C" NOT NULL,
    lms_id BIGINT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('created', 'updated', 'deactivated', 'reactivated')),
    line BIGINT,
    changes TEXT) PARTITION BY LIST (district)
;

CREATE INDEX IF NOT EXISTS change_entries_lms_id ON lms.change_entries (lms_id)
;

CREATE INDEX IF NOT EXISTS change_entries_id ON lms.change_entries USING brin (id)
;

CREATE OR REPLACE VIEW lms.change_ledger AS
    SELECT e.id, s.sync_run_id, e.district, r.partition_date, r.run_id, s.entity, e.sourced_id, e.lms_id,
           e.operation,
           CASE WHEN e.operation = 'created' THEN (SELECT json_object_agg(f.name, v.value)
              FROM json_array_elements_text(s.fields) WITH ORDINALITY AS f(name, n)
              JOIN json_array_elements(e.changes::json) WITH ORDINALITY AS v(value, n) USING (n)
              WHERE json_typeof(v.value) <> 'null') ELSE e.changes::json END AS changes,
           s.file_uri, s.file_version, e.line, s.file_sha256, r.released_by, r.release_reason,
           r.finished_at AS recorded_at
    FROM lms.change_entries e
    JOIN lms.change_sources s ON s.id = e.source_id
    JOIN lms.sync_runs r ON r.id = s.sync_run_id AND r.district = e.district
;
