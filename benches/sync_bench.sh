#!/usr/bin/env bash
# Sync benchmark: `passback sync --concurrency 16` of 10,000 tool grades to the sandbox LMS
# (Moodle dialect, 20 ms added to every request), beside a baseline in the same run:
# grade passback as Open edX does it, one replaceResult at a time from Python
# (requests + oauthlib), for 1,000 of the same grades, extrapolated to 10,000.
#
# passback reads every grade before writing it (overwrite protection needs the LMS value):
# two requests per grade. Its ideal wall time is requests x latency / concurrency; the
# efficiency is that ideal over the measured wall time. CPU is the whole process's
# user + sys (wait4), start, ledger, planning and journal included.
#
# Usage: benches/sync_bench.sh   (release build; installs oauthlib and requests into the
#        venv under the target dir that benches/sign_vs_oauthlib.sh uses)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  # The CLI keeps platform secrets in the OS keyring: run inside a private one.
  source <(sed -n '/^with_secret_service()/,/^}/p' dev)
  with_secret_service "$0" "$@"
  exit
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
VENV="$TARGET_DIR/bench-venv"
OAUTHLIB_VERSION=3.2.2
REQUESTS_VERSION=2.32.3
GRADES=10000
BASELINE_GRADES=1000
LATENCY_MS=20
CONCURRENCY=16

WORK="$(mktemp -d)"
SANDBOX_PID=""
cleanup() {
  if [ -n "$SANDBOX_PID" ]; then
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --quiet --release -p passback-cli
B="$TARGET_DIR/release/passback"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import oauthlib, requests" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "oauthlib==$OAUTHLIB_VERSION" "requests==$REQUESTS_VERSION"
fi

# The sandbox LMS, knowing sid-0 .. sid-9999; it prints one JSON line when it listens.
python3 -c "for i in range($GRADES): print(f'sid-{i}')" > "$WORK/sourcedids.txt"
"$B" sandbox --dialect moodle --seed 3 --sourcedids "$WORK/sourcedids.txt" --latency-ms "$LATENCY_MS" \
  > "$WORK/sandbox.json" 2> "$WORK/sandbox.log" &
SANDBOX_PID=$!
for _ in $(seq 100); do
  [ -s "$WORK/sandbox.json" ] && break
  kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$WORK/sandbox.log" >&2; exit 1; }
  sleep 0.1
done
field() { python3 -c "import json, sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]])" "$WORK/sandbox.json" "$1"; }
BASE_URL=$(field base_url)
OUTCOME_URL=$(field lti11_outcome_url)
KEY=$(field consumer_key)
SECRET=$(field consumer_secret)
# The sandbox's request counters, and how many sourcedids hold a result.
results() {
  python3 -c "import json, sys, urllib.request as u
r = json.load(u.urlopen(sys.argv[1] + '/_sandbox/results'))
print(json.dumps({k: r[k] for k in ('total_requests', 'total_reads', 'total_writes')} | {'results': len(r['results'])}))" "$BASE_URL"
}
# CPU seconds the sandbox has used so far (it shares the machine's cores with the client).
ticks=$(getconf CLK_TCK)
sandbox_cpu() { awk -v t="$ticks" '{ print ($14 + $15) / t }' "/proc/$SANDBOX_PID/stat"; }

# A fresh ledger with the sandbox as platform `sb`, and the grades imported.
export PASSBACK_DB="$WORK/ledger.sqlite"
printf %s "$SECRET" | "$B" platform add-lti11 --name sb --consumer-key "$KEY" --allow-host 127.0.0.1 > /dev/null
python3 - "$WORK/grades.csv" "$GRADES" "$OUTCOME_URL" <<'PY'
import sys
path, n, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write("context_id,resource_link_id,user_id,score_given,score_maximum,lis_result_sourcedid,lis_outcome_service_url\n")
    for i in range(n):
        f.write(f"c1,rl-{i % 20},u-{i},{(i * 7) % 11},10,sid-{i},{url}\n")
PY
"$B" import "$WORK/grades.csv" --platform sb > /dev/null

echo "== passback sync --concurrency $CONCURRENCY ($GRADES grades, ${LATENCY_MS} ms per request)"
sb0=$(sandbox_cpu)
sync=$(python3 benches/rusage.py -- "$B" sync --concurrency "$CONCURRENCY")
sb1=$(sandbox_cpu)
sync_lms=$(results)

echo "== Open edX-style sequential replaceResult, Python ($BASELINE_GRADES grades)"
python3 -c "import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1] + '/_sandbox/reset', method='POST'))" "$BASE_URL"
base=$(printf %s "$SECRET" | "$VENV/bin/python" benches/baseline/edx_sequential_sync.py "$OUTCOME_URL" "$KEY" "$BASELINE_GRADES")
base_lms=$(results)

python3 - "$sync" "$sync_lms" "$base" "$base_lms" "$GRADES" "$LATENCY_MS" "$CONCURRENCY" "$sb0" "$sb1" <<'PY'
import json, sys
sync, lms, base, blms = (json.loads(a) for a in sys.argv[1:5])
grades, latency, conc = int(sys.argv[5]), float(sys.argv[6]) / 1e3, int(sys.argv[7])
sandbox_cpu = float(sys.argv[9]) - float(sys.argv[8])
if lms["total_writes"] != grades or lms["results"] != grades:
    sys.exit(f"sync left the LMS with {lms['total_writes']} writes, {lms['results']} results")
if blms["total_writes"] != base["grades"] or blms["total_reads"] != 0:
    sys.exit(f"baseline: {blms['total_writes']} writes, {blms['total_reads']} reads")
req, wall, cpu = lms["total_requests"], sync["wall_s"], sync["cpu_s"]
ideal = req * latency / conc
eff = ideal / wall
cpu_grade, cpu_req = cpu / grades, cpu / req
rt = latency
bn, bwall, bcpu = base["grades"], base["wall_s"], base["cpu_s"]
bideal = blms["total_requests"] * latency
extrap = bwall / bn * grades
pct = lambda s: f"{s / rt * 100:.2f} % of one round trip"
breq, bwrites, reads, writes = blms["total_requests"], blms["total_writes"], lms["total_reads"], lms["total_writes"]
rows = [
    ("grades", f"{grades:,}", f"{bn:,}"),
    ("requests (reads+writes)", f"{req:,} ({reads:,}+{writes:,})", f"{breq:,} (0+{bwrites:,})"),
    ("requests per grade", f"{req / grades:.2f}", f"{breq / bn:.2f}"),
    ("wall", f"{wall:.2f} s", f"{bwall:.2f} s (send loop)"),
    ("wall per grade", f"{wall / grades * 1e3:.3f} ms", f"{bwall / bn * 1e3:.2f} ms"),
    (f"ideal (req x {latency * 1e3:.0f} ms / N)", f"{ideal:.2f} s (N={conc})", f"{bideal:.2f} s (N=1)"),
    ("efficiency (ideal / wall)", f"{eff * 100:.1f} %", f"{bideal / bwall * 100:.1f} %"),
    ("CPU user+sys", f"{sync['user_s']:.2f}+{sync['sys_s']:.2f} s", f"{bcpu:.2f} s (send loop)"),
    ("CPU per grade", f"{cpu_grade * 1e3:.3f} ms", f"{bcpu / bn * 1e3:.3f} ms"),
    ("CPU per request", f"{cpu_req * 1e3:.3f} ms", f"{bcpu / breq * 1e3:.3f} ms"),
    ("peak RSS", f"{sync['max_rss_kb'] / 1024:.0f} MB", ""),
    ("sandbox LMS CPU", f"{sandbox_cpu:.2f} s", ""),
]
print()
print(f"{'':27} {'passback sync':>24} {'sequential (Python)':>26}")
for label, a, b in rows:
    print(f"{label:27} {a:>24} {b:>26}")
print()
print(f"CPU per grade {cpu_grade * 1e3:.3f} ms = {pct(cpu_grade)}; per request {cpu_req * 1e3:.3f} ms = {pct(cpu_req)}")
print(f"sequential baseline extrapolated to {grades:,} grades: {extrap:.1f} s")
print(f"summary: passback synced {grades:,} grades in {wall:.2f} s ({req / grades:.0f} requests per grade, "
      f"efficiency {eff * 100:.1f} %, target >= 90 % {'met' if eff >= 0.9 else 'NOT met'}; "
      f"CPU {cpu_grade * 1e3:.3f} ms per grade, target < {rt * 10:.1f} ms {'met' if cpu_grade < 0.01 * rt else 'NOT met'}); "
      f"sequential Python {bwall / bn * 1e3:.1f} ms per grade -> {extrap:.0f} s, {extrap / wall:.1f}x passback's wall time")
PY
