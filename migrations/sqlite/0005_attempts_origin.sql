-- no-transaction
-- Passback ledger, schema version 5: who made an attempt and why it ended (a
-- stable cause code), and CHECK constraints SQLite evaluates cheaply.
--
-- Attempts now record who made them: Passback itself, or another system whose
-- log was imported (an Open edX failure: one system's try at one time, recorded
-- once however often its log is imported), with the import batch that recorded it. And `x IN ('a', 'b', …)` in
-- a CHECK costs SQLite a temporary table for every row it checks: imports write
-- an attempt and a grade status per row, so those two tables are rebuilt with
-- the same constraints spelled `x = 'a' OR x = 'b' …`.
--
-- lms_observations references attempts, so the rebuild runs with foreign keys off
-- (which SQLite only allows outside a transaction: hence `no-transaction` and the
-- explicit one below). It can run again safely if the process stops after COMMIT.

PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

DROP TABLE IF EXISTS attempts_rebuilt;
CREATE TABLE attempts_rebuilt (
    id                 INTEGER PRIMARY KEY,
    grade_ref          INTEGER REFERENCES grades(id) ON DELETE CASCADE,
    activity_ref       INTEGER REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref        INTEGER REFERENCES learners(id) ON DELETE CASCADE,
    operation          TEXT NOT NULL CHECK (operation = 'replace' OR operation = 'read' OR operation = 'delete'
                                            OR operation = 'score' OR operation = 'score_read'),
    transport          TEXT NOT NULL CHECK (transport = 'lti11' OR transport = 'ltiaas'),
    target             TEXT NOT NULL,
    message_identifier TEXT,
    started_at         TEXT NOT NULL,
    finished_at        TEXT,
    outcome            TEXT NOT NULL DEFAULT 'pending'
                       CHECK (outcome = 'pending' OR outcome = 'success' OR outcome = 'processing'
                              OR outcome = 'failure' OR outcome = 'error'),
    http_status        INTEGER,
    code_major         TEXT,
    description        TEXT,
    error_class        TEXT CHECK (error_class IS NULL OR error_class = 'transient' OR error_class = 'auth'
                                   OR error_class = 'permanent'),
    fix_hint           TEXT,
    read_score         REAL,
    request_excerpt    TEXT,
    response_excerpt   TEXT,
    -- 'passback', or the system whose log an import read (e.g. 'open-edx').
    origin             TEXT NOT NULL DEFAULT 'passback',
    -- The import batch that recorded another system's attempt (read only by undo).
    batch_ref          INTEGER,
    -- Why it ended as it did: a stable code (`signature_rejected`, `rate_limited`,
    -- `unknown_sourcedid`, …) beside the human description; NULL while in flight.
    cause              TEXT,
    -- The process that sent it (`pid@host`), so one that died mid-request is
    -- told from one still running.
    run_id             TEXT
) STRICT;
INSERT INTO attempts_rebuilt (id, grade_ref, activity_ref, learner_ref, operation, transport, target,
                              message_identifier, started_at, finished_at, outcome, http_status, code_major,
                              description, error_class, fix_hint, read_score, request_excerpt, response_excerpt)
    SELECT id, grade_ref, activity_ref, learner_ref, operation, transport, target, message_identifier, started_at,
           finished_at, outcome, http_status, code_major, description, error_class, fix_hint, read_score,
           request_excerpt, response_excerpt
    FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_rebuilt RENAME TO attempts;
CREATE INDEX attempts_by_grade ON attempts (grade_ref, id DESC);
CREATE UNIQUE INDEX attempts_external_once ON attempts (grade_ref, origin, started_at)
    WHERE origin <> 'passback';

DROP TABLE IF EXISTS current_grades_rebuilt;
CREATE TABLE current_grades_rebuilt (
    activity_ref  INTEGER NOT NULL REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref   INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    grade_ref     INTEGER NOT NULL REFERENCES grades(id) ON DELETE CASCADE,
    status        TEXT NOT NULL
                  CHECK (status = 'pending' OR status = 'in_sync' OR status = 'lms_missing' OR status = 'differs'
                         OR status = 'failed' OR status = 'cannot_send' OR status = 'unknown'),
    status_detail TEXT,
    PRIMARY KEY (activity_ref, learner_ref)
) STRICT, WITHOUT ROWID;
INSERT INTO current_grades_rebuilt SELECT activity_ref, learner_ref, grade_ref, status, status_detail
    FROM current_grades;
DROP TABLE current_grades;
ALTER TABLE current_grades_rebuilt RENAME TO current_grades;
CREATE INDEX current_grades_by_status ON current_grades (status, activity_ref, learner_ref);
CREATE INDEX current_grades_by_learner ON current_grades (learner_ref);

COMMIT;
PRAGMA foreign_keys = ON;
