-- The sync journal records what a run's attempts showed the LMS to hold in
-- batches after their commits ("folds"), and recovery folds again what a stopped
-- run may have left unfolded: both ask "is this attempt observed yet?".
CREATE INDEX IF NOT EXISTS lms_observations_attempt ON lms_observations (attempt_ref) WHERE attempt_ref IS NOT NULL;
