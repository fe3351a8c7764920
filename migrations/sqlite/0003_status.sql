-- Passback ledger, schema version 3: the stored grade status and what the LMS
-- was seen to hold.
--
-- `current_grades` has one row per (activity, learner) that has a grade: the
-- current version and its status, decided by the status rules (src/status.rs)
-- in the same transaction as every fact or attempt that changes it. Listings
-- filter, sort and page on it in SQL instead of deriving statuses in memory.

CREATE TABLE current_grades (
    activity_ref  INTEGER NOT NULL REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref   INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    grade_ref     INTEGER NOT NULL REFERENCES grades(id) ON DELETE CASCADE,
    status        TEXT NOT NULL
                  CHECK (status IN ('pending', 'in_sync', 'lms_missing', 'differs', 'failed', 'cannot_send',
                                    'unknown')),
    status_detail TEXT,
    PRIMARY KEY (activity_ref, learner_ref)
) STRICT, WITHOUT ROWID;

CREATE INDEX current_grades_by_status ON current_grades (status, activity_ref, learner_ref);
CREATE INDEX current_grades_by_learner ON current_grades (learner_ref);

-- Existing grades start as 'pending'; the ledger recomputes every status when it
-- is opened by a build whose status rules differ from the ones last applied
-- (ledger_meta 'status_rules').
INSERT INTO current_grades (activity_ref, learner_ref, grade_ref, status)
SELECT g.activity_ref, g.learner_ref, g.id, 'pending'
FROM grades g
WHERE g.version = (SELECT MAX(version) FROM grades g2
                   WHERE g2.activity_ref = g.activity_ref AND g2.learner_ref = g.learner_ref);

DELETE FROM ledger_meta WHERE key = 'status_rules';

-- What the LMS was seen to hold for (activity, learner): from a read (an
-- attempt) or a gradebook export (an import batch). `score` is on the 0-1 scale;
-- NULL means the LMS holds no grade.
CREATE TABLE lms_observations (
    id            INTEGER PRIMARY KEY,
    activity_ref  INTEGER NOT NULL REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref   INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    score         REAL,
    observed_at   TEXT NOT NULL,
    source        TEXT NOT NULL,
    attempt_ref   INTEGER REFERENCES attempts(id) ON DELETE CASCADE,
    batch_ref     INTEGER REFERENCES import_batches(id) ON DELETE CASCADE
) STRICT;

CREATE INDEX lms_observations_latest ON lms_observations (activity_ref, learner_ref, observed_at DESC, id DESC);
