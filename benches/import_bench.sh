#!/usr/bin/env bash
# Import and listing benchmarks, each beside a baseline measured in the same run:
#   * a 1,000,000-line Open edX log (10 % outcome-failure records, a fifth of them
#     with bodies over several lines), after its lti_provider dump, vs a plain
#     Python regex scan of the same file;
#   * 100,000 Caliper LTIEvents (signed launches, verified) vs Python's json module;
#   * a 100,000-row tool grade CSV vs Python's csv module;
#   * `passback grades --json` over the 100,000 grades vs Python's sqlite3 + json.
# Each passback run imports into a fresh ledger. Wall time is the median of RUNS
# runs (default 3), peak RSS the largest; both whole-process, from wait4.
#
# Usage: benches/import_bench.sh     (release build; inputs generated once under the target dir)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  # The CLI keeps platform secrets in the OS keyring: run inside a private one.
  source <(sed -n '/^with_secret_service()/,/^}/p' dev)
  with_secret_service "$0" "$@"
  exit
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
DATA="$TARGET_DIR/bench-import"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
RUNS="${RUNS:-3}"

cargo build --quiet --release -p passback-cli
B="$TARGET_DIR/release/passback"
if [ ! -f "$DATA/complete" ] || [ benches/import_data.py -nt "$DATA/complete" ]; then
  echo "== generating inputs in $DATA"
  python3 benches/import_data.py "$DATA"
  touch "$DATA/complete"
fi

export PASSBACK_DB="$WORK/ledger.sqlite"
fresh="rm -f $PASSBACK_DB $PASSBACK_DB-wal $PASSBACK_DB-shm && \
  printf canvas-secret | $B platform add-lti11 --name canvas --consumer-key canvas-key --allow-host canvas.example.edu"
m() { python3 benches/measure.py --runs "$RUNS" "$@"; }

echo "== Open edX log ($(wc -l < "$DATA/edx.log") lines)"
edx=$(m --setup "$fresh && $B import $DATA/edx-dump.json" -- "$B" import "$DATA/edx.log")
edx_py=$(m -- python3 benches/baseline/edx_regex_scan.py "$DATA/edx.log")
echo "== Caliper (100,000 events)"
cal=$(m --setup "$fresh" -- "$B" import "$DATA/caliper.json")
cal_py=$(m -- python3 benches/baseline/caliper_json.py "$DATA/caliper.json")
echo "== tool grade CSV (100,000 rows)"
csv=$(m --setup "$fresh" -- "$B" import "$DATA/tool-grades.csv")
csv_py=$(m -- python3 benches/baseline/tool_csv.py "$DATA/tool-grades.csv")
echo "== grades --json (100,000 grades)"
sh -c "$fresh && $B import $DATA/tool-grades.csv" > /dev/null
lst=$(m -- "$B" grades --json)
lst_py=$(m -- python3 benches/baseline/grades_json.py "$PASSBACK_DB")

python3 - "$edx" "$edx_py" "$cal" "$cal_py" "$csv" "$csv_py" "$lst" "$lst_py" <<'PY'
import json, sys
r = [json.loads(a) for a in sys.argv[1:]]
rows = [("Open edX log", 1_000_000, "lines"), ("Caliper", 100_000, "events"),
        ("tool grade CSV", 100_000, "rows"), ("grades --json", 100_000, "grades")]
print(f"{'':16} {'passback':>24} {'baseline (Python)':>24} {'ratio':>7}")
for i, (name, n, unit) in enumerate(rows):
    p, b = r[2 * i], r[2 * i + 1]
    pw, bw = p["median_wall_s"], b["median_wall_s"]
    cell = lambda w, kb: f"{n / w:>10,.0f} {unit}/s {kb / 1024:>5.0f} MB"
    print(f"{name:16} {cell(pw, p['max_rss_kb']):>24} {cell(bw, b['max_rss_kb']):>24} {bw / pw:>6.2f}x")
    print(f"{'':16} {pw:>13.3f} s wall {'':>4} {bw:>13.3f} s wall")
PY
