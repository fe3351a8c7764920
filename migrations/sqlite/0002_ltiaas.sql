-- Passback ledger, schema version 2: LTIAAS service keys and score timestamps.
-- Service keys themselves live only in the OS keyring; this table holds the
-- keyring reference and when the key was captured (see src/secrets.rs).

-- One service key per (platform, context, resource link). A newer capture
-- replaces an older one (newest wins); `captured_at` is when the ID token that
-- carried the key was read, so the ledger can show each key's age.
CREATE TABLE service_keys (
    id                 INTEGER PRIMARY KEY,
    platform_id        INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
    context_id         TEXT NOT NULL,
    resource_link_id   TEXT NOT NULL,
    -- LTIAAS's own id of the LMS registration the launch came from (`platform.id`).
    ltiaas_platform_id TEXT,
    secret_ref         TEXT NOT NULL UNIQUE,
    captured_at        TEXT NOT NULL,
    -- Where the key came from, e.g. `ltiaas-idtoken`.
    source             TEXT NOT NULL,
    UNIQUE (platform_id, context_id, resource_link_id)
) STRICT;

-- The last score timestamp sent per (platform, line item, LTI user id), in Unix
-- milliseconds. AGS requires strictly increasing timestamps per (line item,
-- user); a send whose clock has not moved past this value uses this + 1 ms.
CREATE TABLE ltiaas_score_clock (
    platform_id       INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
    line_item_id      TEXT NOT NULL,
    lti_user_id       TEXT NOT NULL,
    last_timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (platform_id, line_item_id, lti_user_id)
) STRICT;
