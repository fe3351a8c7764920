#!/usr/bin/env bash
# Team ledger benchmark: the 10,000-grade sync of benches/sync_bench.sh (sandbox LMS, Moodle
# dialect, 20 ms per request, `passback sync --concurrency 16` per worker) on a SQLite ledger
# file and on a PostgreSQL team ledger, with one worker and with two workers started together
# (two processes splitting the grades through their claims). SQLite with one worker is the
# baseline every other case is compared with, measured in the same run.
#
# PostgreSQL is a throw-away cluster (tests/postgres/cluster.sh) with the server's default
# durability (fsync and synchronous_commit on), on the same 2 cores as everything else.
#
# Usage: benches/team_sync_bench.sh   (release build; RUNS=N repeats each case, default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
source <(sed -n '/^with_secret_service()/,/^}/p; /^with_postgres()/,/^}/p' dev)
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  with_secret_service "$0" "$@"
  exit
fi
if [ -z "${PASSBACK_TEST_POSTGRES:-}" ]; then
  PASSBACK_PG_DURABLE=1 with_postgres "$0" "$@"
  exit
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --quiet --release -p passback-cli
python3 benches/team_sync.py "$TARGET_DIR/release/passback" "${RUNS:-1}"
