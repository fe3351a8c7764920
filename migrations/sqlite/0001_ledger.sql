-- Passback ledger, schema version 1.
-- Secrets are never stored here: platforms and outcome targets hold keyring
-- references only (see src/secrets.rs).

CREATE TABLE ledger_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE platforms (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('lti11', 'ltiaas')),
    consumer_key  TEXT,
    base_url      TEXT,
    allow_http    INTEGER NOT NULL DEFAULT 0 CHECK (allow_http IN (0, 1)),
    secret_ref    TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    CHECK (kind <> 'lti11' OR consumer_key IS NOT NULL),
    CHECK (kind <> 'ltiaas' OR base_url IS NOT NULL)
) STRICT;

CREATE TABLE platform_allowed_hosts (
    platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
    host        TEXT NOT NULL,
    PRIMARY KEY (platform_id, host)
) STRICT;

CREATE TABLE contexts (
    id          INTEGER PRIMARY KEY,
    platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
    context_id  TEXT NOT NULL,
    title       TEXT,
    label       TEXT,
    UNIQUE (platform_id, context_id)
) STRICT;

CREATE TABLE activities (
    id                  INTEGER PRIMARY KEY,
    context_ref         INTEGER NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,
    resource_link_id    TEXT NOT NULL,
    title               TEXT,
    points_possible     REAL CHECK (points_possible IS NULL OR points_possible >= 0),
    ltiaas_line_item_id TEXT,
    UNIQUE (context_ref, resource_link_id)
) STRICT;

CREATE TABLE learners (
    id               INTEGER PRIMARY KEY,
    platform_id      INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
    lti_user_id      TEXT NOT NULL,
    name             TEXT,
    email            TEXT,
    person_sourcedid TEXT,
    role             TEXT NOT NULL DEFAULT 'unknown'
                     CHECK (role IN ('learner', 'instructor', 'teaching_assistant', 'content_developer',
                                     'administrator', 'mentor', 'other', 'unknown')),
    UNIQUE (platform_id, lti_user_id)
) STRICT;

CREATE TABLE outcome_targets (
    id                              INTEGER PRIMARY KEY,
    activity_ref                    INTEGER NOT NULL REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref                     INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    lis_result_sourcedid            TEXT,
    lis_outcome_service_url         TEXT,
    ext_outcome_data_values_accepted TEXT,
    ext_result_total_score_accepted INTEGER NOT NULL DEFAULT 0,
    ext_submitted_at_accepted       INTEGER NOT NULL DEFAULT 0,
    ext_prioritize_non_tool_grade_accepted INTEGER NOT NULL DEFAULT 0,
    ext_needs_additional_review_accepted INTEGER NOT NULL DEFAULT 0,
    service_key_ref                 TEXT,
    learned_at                      TEXT NOT NULL,
    learned_from                    TEXT NOT NULL,
    UNIQUE (activity_ref, learner_ref)
) STRICT;

-- Grades are versioned: a changed score is a new row with version + 1; rows
-- are never updated in place, so a value that was sent is never overwritten.
CREATE TABLE grades (
    id            INTEGER PRIMARY KEY,
    activity_ref  INTEGER NOT NULL REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref   INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    version       INTEGER NOT NULL CHECK (version >= 1),
    score_given   REAL NOT NULL CHECK (score_given >= 0),
    score_maximum REAL NOT NULL CHECK (score_maximum > 0),
    comment       TEXT,
    result_text   TEXT,
    result_url    TEXT,
    submitted_at  TEXT,
    recorded_at   TEXT NOT NULL,
    source        TEXT NOT NULL,
    UNIQUE (activity_ref, learner_ref, version)
) STRICT;

CREATE INDEX grades_current ON grades (activity_ref, learner_ref, version DESC);

-- One row per request to an LMS about a grade: written before the request
-- leaves (outcome 'pending'), completed when the answer (or failure) is known.
CREATE TABLE attempts (
    id                 INTEGER PRIMARY KEY,
    grade_ref          INTEGER REFERENCES grades(id) ON DELETE CASCADE,
    activity_ref       INTEGER REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref        INTEGER REFERENCES learners(id) ON DELETE CASCADE,
    operation          TEXT NOT NULL CHECK (operation IN ('replace', 'read', 'delete', 'score', 'score_read')),
    transport          TEXT NOT NULL CHECK (transport IN ('lti11', 'ltiaas')),
    target             TEXT NOT NULL,
    message_identifier TEXT,
    started_at         TEXT NOT NULL,
    finished_at        TEXT,
    outcome            TEXT NOT NULL DEFAULT 'pending'
                       CHECK (outcome IN ('pending', 'success', 'processing', 'failure', 'error')),
    http_status        INTEGER,
    code_major         TEXT,
    description        TEXT,
    error_class        TEXT CHECK (error_class IS NULL OR error_class IN ('transient', 'auth', 'permanent')),
    fix_hint           TEXT,
    read_score         REAL,
    request_excerpt    TEXT,
    response_excerpt   TEXT
) STRICT;

CREATE INDEX attempts_by_grade ON attempts (grade_ref, id DESC);

CREATE TABLE import_batches (
    id               INTEGER PRIMARY KEY,
    file_name        TEXT NOT NULL,
    file_hash        TEXT NOT NULL,
    format           TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT,
    status           TEXT NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'imported', 'partial', 'rejected')),
    rows_total       INTEGER NOT NULL DEFAULT 0,
    rows_imported    INTEGER NOT NULL DEFAULT 0,
    rows_quarantined INTEGER NOT NULL DEFAULT 0,
    errors           TEXT NOT NULL DEFAULT '[]'
) STRICT;
