-- Passback ledger, schema version 8: team ledgers (see the SQLite migration of
-- the same number for what each change is for).
ALTER TABLE attempts ADD COLUMN actor TEXT COLLATE "C";
ALTER TABLE import_batches ADD COLUMN actor TEXT COLLATE "C";
ALTER TABLE grades ADD COLUMN actor TEXT COLLATE "C";
ALTER TABLE sync_runs ADD COLUMN actor TEXT COLLATE "C";

CREATE TABLE grade_claims (
    activity_ref BIGINT NOT NULL REFERENCES activities(id) ON DELETE CASCADE,
    learner_ref  BIGINT NOT NULL REFERENCES learners(id) ON DELETE CASCADE,
    run_ref      BIGINT NOT NULL REFERENCES sync_runs(id) ON DELETE CASCADE,
    expires_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (activity_ref, learner_ref)
);

CREATE INDEX grade_claims_by_run ON grade_claims (run_ref);

-- Platform rows say where secrets are sent: on a shared ledger only its
-- administrators may change them (the ledger's owner, or members of the role
-- passback_admin, which the database's administrator creates and grants). Other
-- people work the grades; the keyring entries' host binding refuses a platform
-- pointed elsewhere anyway.
CREATE FUNCTION passback_platforms_admin_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner name;
BEGIN
    SELECT tableowner INTO owner FROM pg_tables WHERE schemaname = TG_TABLE_SCHEMA AND tablename = TG_TABLE_NAME;
    IF pg_has_role(current_user, owner, 'MEMBER') THEN
        RETURN COALESCE(NEW, OLD);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'passback_admin') THEN
        IF pg_has_role(current_user, 'passback_admin', 'MEMBER') THEN
            RETURN COALESCE(NEW, OLD);
        END IF;
    END IF;
    RAISE EXCEPTION 'only the team ledger''s administrators may add, change or remove platforms (database role %, or a member of passback_admin): ask one of them', owner
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER platforms_admin_only BEFORE INSERT OR UPDATE OR DELETE ON platforms
    FOR EACH ROW EXECUTE FUNCTION passback_platforms_admin_only();
CREATE TRIGGER platform_allowed_hosts_admin_only BEFORE INSERT OR UPDATE OR DELETE ON platform_allowed_hosts
    FOR EACH ROW EXECUTE FUNCTION passback_platforms_admin_only();
