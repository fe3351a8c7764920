#!/usr/bin/env bash
# UI benchmark: the window through `passback ui-server` in Debian Chromium on a ledger
# of 100,000 grades (1,000 learners x 100 activities) and 300,000 attempts (three
# reconciles against the sandbox LMS, each reading every grade): first grade row on
# screen (three fresh loads), a search keystroke to repaint (p95 over 20), JS heap.
# Baseline in the same run: the same page on a ledger of 100 grades.
#
# Usage: benches/ui_bench.sh   (release CLI; builds the UI; ATTEMPT_RUNS=0 skips the attempts)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  source <(sed -n '/^with_secret_service()/,/^}/p' dev)
  with_secret_service "$0" "$@"
  exit
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
ATTEMPT_RUNS="${ATTEMPT_RUNS:-3}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --quiet --release -p passback-cli
npm --prefix ui run build --silent > /dev/null
B="$TARGET_DIR/release/passback"

start_json() { # start_json OUT CMD... : run CMD in the background, wait for its first JSON line in OUT
  local out="$1"; shift
  "$@" > "$out" 2> "$out.err" &
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$out" ] && return 0; sleep 0.1; done
  cat "$out.err" >&2; return 1
}
field() { python3 -c "import json, sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]])" "$1" "$2"; }

# ledger NAME LEARNERS ACTIVITIES: a ledger of LEARNERS x ACTIVITIES grades wired to the sandbox.
ledger() {
  local name="$1" learners="$2" activities="$3"
  export PASSBACK_DB="$WORK/$name.sqlite"
  python3 -c "
import sys
for a in range($activities):
    for l in range($learners): print(f'sid-{l}-{a}')" > "$WORK/$name.sids"
  start_json "$WORK/$name.sb" "$B" sandbox --dialect moodle --sourcedids "$WORK/$name.sids"
  local url; url=$(field "$WORK/$name.sb" lti11_outcome_url)
  printf %s "$(field "$WORK/$name.sb" consumer_secret)" | "$B" platform add-lti11 --name sb \
    --consumer-key "$(field "$WORK/$name.sb" consumer_key)" --allow-host 127.0.0.1 > /dev/null
  python3 -c "
print('context_id,resource_link_id,user_id,lis_person_name_full,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url')
for a in range($activities):
    for l in range($learners): print(f'bio-101,act-{a:02},u-{l:05},Learner {l},{(l * 7 + a) % 11},10,sid-{l}-{a},$url')" > "$WORK/$name.csv"
  "$B" import "$WORK/$name.csv" --platform sb > /dev/null
}

echo "== baseline: 100 grades"
ledger small 10 10
start_json "$WORK/small.ui" "$B" ui-server --listen 127.0.0.1:0 --ui-dir ui/dist
small=$(node benches/ui_bench.mjs "$(field "$WORK/small.ui" url)")

echo "== 100,000 grades, $((ATTEMPT_RUNS * 100000)) attempts (this takes a few minutes)"
ledger big 1000 100
for _ in $(seq "$ATTEMPT_RUNS"); do "$B" reconcile --concurrency 32 > /dev/null; done
attempts=$(python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM attempts').fetchone()[0])" "$PASSBACK_DB")
start_json "$WORK/big.ui" "$B" ui-server --listen 127.0.0.1:0 --ui-dir ui/dist
big=$(node benches/ui_bench.mjs "$(field "$WORK/big.ui" url)")
python3 - "$small" "$big" "$attempts" <<'PY'
import json, sys
small, big, attempts = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
med = lambda xs: sorted(xs)[len(xs) // 2]
print(f"{'':34}{'100,000 grades':>22}{'100 grades':>16}")
print(f"{'attempts in the ledger':34}{attempts:>22,}{'':>16}")
print(f"{'first grade row (3 loads, ms)':34}{str(big['first_row_ms']):>22}{str(small['first_row_ms']):>16}")
print(f"{'keystroke to repaint, p95 (ms)':34}{big['keystroke_p95_ms']:>22}{small['keystroke_p95_ms']:>16}")
print(f"{'keystroke to repaint, median (ms)':34}{big['keystroke_median_ms']:>22}{small['keystroke_median_ms']:>16}")
print(f"{'rows in the DOM':34}{big['rendered_rows']:>22}{small['rendered_rows']:>16}")
print(f"{'JS heap (MB)':34}{big['js_heap_mb']:>22}{small['js_heap_mb']:>16}")
fr = med(big['first_row_ms'])
print(f"summary: first row {fr} ms (target <= 1000: {'met' if fr <= 1000 else 'NOT met'}), keystroke p95 "
      f"{big['keystroke_p95_ms']} ms (target <= 100: {'met' if big['keystroke_p95_ms'] <= 100 else 'NOT met'}); "
      f"ratio to 100 grades: first row {fr / max(1, med(small['first_row_ms'])):.1f}x, keystroke p95 "
      f"{big['keystroke_p95_ms'] / max(1, small['keystroke_p95_ms']):.1f}x")
PY
