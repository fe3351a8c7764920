-- Passback ledger, schema version 4: importing what other systems emit.
--
-- One import batch per file, with counts and every rejected row (line, column,
-- reason: never the row's content). What a batch added carries its batch_ref
-- (grade versions, LMS observations, other systems' attempts, launches) and the
-- outcome targets it replaced are kept in batch_target_changes, so `passback
-- import undo` can take exactly that batch back.

DROP TABLE import_batches;

CREATE TABLE import_batches (
    id               INTEGER PRIMARY KEY,
    file_name        TEXT NOT NULL,
    file_hash        TEXT NOT NULL,
    file_bytes       INTEGER NOT NULL DEFAULT 0,
    format           TEXT NOT NULL,
    platform_ref     INTEGER REFERENCES platforms(id) ON DELETE SET NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    status           TEXT NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'imported', 'partial', 'rejected', 'cancelled', 'undone')),
    rows_read        INTEGER NOT NULL DEFAULT 0,
    rows_imported    INTEGER NOT NULL DEFAULT 0,
    rows_unchanged   INTEGER NOT NULL DEFAULT 0,
    rows_quarantined INTEGER NOT NULL DEFAULT 0,
    rows_skipped     INTEGER NOT NULL DEFAULT 0,
    -- Notes for people (JSON array of strings): where the export time came from,
    -- unverified launches and why, platforms to add.
    notes            TEXT NOT NULL DEFAULT '[]'
) STRICT;

-- A rejected (quarantined) or skipped row: where and why, never its content.
CREATE TABLE import_issues (
    batch_ref   INTEGER NOT NULL REFERENCES import_batches(id) ON DELETE CASCADE,
    line        INTEGER NOT NULL,
    column_name TEXT,
    kind        TEXT NOT NULL CHECK (kind = 'rejected' OR kind = 'skipped'),
    reason      TEXT NOT NULL
) STRICT;

CREATE INDEX import_issues_by_batch ON import_issues (batch_ref, line);

-- The outcome targets a batch set, with the one each replaced (JSON; NULL when
-- there was none), so undo can put them back. Batch-level, never per row read:
-- the rest of what a batch added carries its batch_ref.
CREATE TABLE batch_target_changes (
    id           INTEGER PRIMARY KEY,
    batch_ref    INTEGER NOT NULL REFERENCES import_batches(id) ON DELETE CASCADE,
    activity_ref INTEGER NOT NULL,
    learner_ref  INTEGER NOT NULL,
    previous     TEXT
) STRICT;

CREATE INDEX batch_target_changes_by_batch ON batch_target_changes (batch_ref, id);

-- The import batch that added a grade version (NULL for one recorded otherwise).
-- Read only to undo a batch, which may scan: no index, so imports do not pay for
-- one per row. (Attempts get theirs in 0005.)
ALTER TABLE grades ADD COLUMN batch_ref INTEGER;

-- UNIQUE (activity_ref, learner_ref, version) already orders versions; the
-- current one is in current_grades.
DROP INDEX grades_current;

-- When the source says the grade was given (a log line's time, a CSV's timestamp):
-- an older observation never becomes the current version.
ALTER TABLE grades ADD COLUMN observed_at TEXT;

-- Why no outcome target is known, when the source said (e.g. the Open edX
-- lti_provider records of this learner were not imported yet).
ALTER TABLE outcome_targets ADD COLUMN unavailable_reason TEXT;

-- Identifiers LMS gradebook exports join on.
ALTER TABLE learners ADD COLUMN canvas_user_id TEXT;
ALTER TABLE activities ADD COLUMN canvas_assignment_id TEXT;
CREATE INDEX learners_by_person_sourcedid ON learners (platform_id, person_sourcedid);
CREATE INDEX learners_by_canvas_user ON learners (platform_id, canvas_user_id);
CREATE INDEX learners_by_email ON learners (platform_id, email COLLATE NOCASE);


-- Launches seen in captures and event streams (never their signature or nonce).
CREATE TABLE launches (
    id                INTEGER PRIMARY KEY,
    context_ref       INTEGER REFERENCES contexts(id) ON DELETE CASCADE,
    activity_ref      INTEGER REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref       INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    role              TEXT NOT NULL,
    consumer_key      TEXT,
    launched_at       TEXT NOT NULL,
    source            TEXT NOT NULL,
    verification      TEXT NOT NULL CHECK (verification = 'verified' OR verification = 'unverified'),
    verification_note TEXT,
    locale            TEXT,
    direction         TEXT,
    batch_ref         INTEGER REFERENCES import_batches(id) ON DELETE CASCADE
) STRICT;

CREATE INDEX launches_by_learner ON launches (learner_ref, launched_at);
-- The same launch imported twice is one launch.
CREATE UNIQUE INDEX launches_once ON launches (learner_ref, IFNULL(context_ref, 0), IFNULL(activity_ref, 0),
                                              launched_at);

-- Open edX lti_provider records (from a dumpdata JSON or CSV), by their Django
-- primary keys: they map an Open edX user, course and usage to the LTI user id,
-- the sourcedid and the outcome service of the LMS that launched it. One Open edX
-- instance per ledger.
CREATE TABLE edx_consumers (
    pk            INTEGER PRIMARY KEY,
    consumer_key  TEXT NOT NULL,
    consumer_name TEXT,
    instance_guid TEXT
) STRICT;

CREATE TABLE edx_outcome_services (
    pk          INTEGER PRIMARY KEY,
    url         TEXT NOT NULL,
    consumer_pk INTEGER NOT NULL
) STRICT;

CREATE TABLE edx_lti_users (
    pk          INTEGER PRIMARY KEY,
    consumer_pk INTEGER NOT NULL,
    lti_user_id TEXT NOT NULL,
    edx_user    INTEGER NOT NULL
) STRICT;

CREATE INDEX edx_lti_users_by_user ON edx_lti_users (edx_user);

CREATE TABLE edx_graded_assignments (
    pk                 INTEGER PRIMARY KEY,
    edx_user           INTEGER NOT NULL,
    course_key         TEXT NOT NULL,
    usage_key          TEXT NOT NULL,
    outcome_service_pk INTEGER NOT NULL,
    sourcedid          TEXT NOT NULL,
    version_number     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX edx_graded_by_user ON edx_graded_assignments (edx_user, course_key, usage_key);

-- Filtering and sorting the grade listing in SQL.
CREATE INDEX activities_by_resource_link ON activities (resource_link_id);
