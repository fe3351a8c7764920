-- Passback ledger, schema version 8: team ledgers.
--
-- Who did what: the person or job (`user@host`, or a name given with --actor)
-- behind every attempt, import batch, grade version and run.
ALTER TABLE attempts ADD COLUMN actor TEXT;
ALTER TABLE import_batches ADD COLUMN actor TEXT;
ALTER TABLE grades ADD COLUMN actor TEXT;
ALTER TABLE sync_runs ADD COLUMN actor TEXT;

-- Claims: a run (reconcile or sync) takes the grades it is about to work on, so
-- two runs on one ledger split the work and a grade is never in flight in two
-- runs at once. A claim is a lease: the run renews it while it works and drops it
-- when it ends; one whose run stopped expires, and the next run that takes the
-- grade first closes what the stopped run left in flight (once: in the claiming
-- transaction).
CREATE TABLE grade_claims (
    activity_ref INTEGER NOT NULL REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref  INTEGER NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    run_ref      INTEGER NOT NULL REFERENCES sync_runs(id) ON DELETE CASCADE,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (activity_ref, learner_ref)
) STRICT, WITHOUT ROWID;

CREATE INDEX grade_claims_by_run ON grade_claims (run_ref);
