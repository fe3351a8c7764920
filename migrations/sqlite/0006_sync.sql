-- Passback ledger, schema version 6: sync runs.
--
-- One row per reconcile or sync run: who ran it, when, and how it ended. A run
-- that has not finished holds the ledger's sync lock: a second run refuses to
-- start while the first one's process is alive (same host) or its heartbeat is
-- recent (another host), and recovers the journal of a run whose process died.

CREATE TABLE sync_runs (
    id            INTEGER PRIMARY KEY,
    -- `pid@host`, as attempts record it in `run_id`.
    run_id        TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    host          TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind = 'reconcile' OR kind = 'sync'),
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL,
    finished_at   TEXT,
    -- What it did (JSON: planned, confirmed, failed, skipped, by cause), once finished.
    summary       TEXT
) STRICT;

CREATE INDEX sync_runs_open ON sync_runs (finished_at, id);
