#!/usr/bin/env bash
# App benchmark: the real window's cold start (launch → first paint, launch → the ledger
# on screen) and the memory of all its processes (the shell and its WebKit processes,
# RSS and PSS) under Xvfb through tauri-driver, on a ledger of 100,000 grades. Baseline
# in the same run: the same app on an empty ledger.
#
# Usage: benches/app_start.sh   (release build; RUNS=5 launches per ledger)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  source <(sed -n '/^with_secret_service()/,/^}/p' dev)
  with_secret_service "$0" "$@"
  exit
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
RUNS="${RUNS:-5}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

npm --prefix ui run build --silent > /dev/null
cargo build --quiet --release -p passback-desktop -p passback-cli
APP="$TARGET_DIR/release/passback-desktop"
B="$TARGET_DIR/release/passback"
driver="$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")"

# 100,000 grades: 1,000 learners x 100 activities, one course.
python3 -c "
print('context_id,resource_link_id,user_id,lis_person_name_full,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url')
for a in range(100):
    for l in range(1000): print(f'bio-101,act-{a:02},u-{l:05},Learner {l},{(l * 7 + a) % 11},10,sid-{l}-{a},https://lms.example.edu/outcomes')" > "$WORK/big.csv"
printf 's3cret' | PASSBACK_DB="$WORK/big.sqlite" "$B" platform add-lti11 --name lms --consumer-key k \
  --allow-host lms.example.edu > /dev/null
PASSBACK_DB="$WORK/big.sqlite" "$B" import "$WORK/big.csv" --platform lms > /dev/null

measure() { # measure LEDGER: RUNS launches, one JSON line
  PASSBACK_DB="$1" xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
    "$1" --native-driver /usr/bin/WebKitWebDriver > "$4/driver.log" 2>&1 &
    td=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null && break; sleep 0.2; done
    python3 benches/app_start.py "$2" "$3"
    rc=$?
    kill $td 2>/dev/null; wait $td 2>/dev/null
    exit $rc' bash "$driver" "$APP" "$RUNS" "$WORK"
}

echo "== baseline: an empty ledger"
empty=$(measure "$WORK/empty.sqlite")
echo "$empty"
echo "== 100,000 grades"
big=$(measure "$WORK/big.sqlite")
echo "$big"
python3 - "$empty" "$big" <<'PY'
import json, sys
e, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
row = lambda name, r: print(f"| {name} | {r['first_paint_s']['median']*1000:.0f} ms | {r['ledger_on_screen_s']['median']*1000:.0f} ms "
                            f"({r['ledger_on_screen_s']['min']*1000:.0f}–{r['ledger_on_screen_s']['max']*1000:.0f}) | "
                            f"{r['rss_mb']['median']:.0f} MB | {r['pss_mb']['median']:.0f} MB |")
print("| ledger | launch → first paint (median) | launch → ledger on screen (median, min–max) | RSS, all processes | PSS |")
print("|---|---|---|---|---|")
row("empty (baseline)", e)
row("100,000 grades", b)
print("processes:", ", ".join(b["processes"]))
print(f"ratio, ledger on screen: {b['ledger_on_screen_s']['median'] / e['ledger_on_screen_s']['median']:.2f}x the empty ledger")
PY
