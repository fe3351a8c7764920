#!/usr/bin/env bash
# Sign + build one replaceResult: Passback (criterion) vs Python oauthlib, same
# machine, same run, both pinned to one core. Prints ops/s and the ratio.
# Usage: benches/sign_vs_oauthlib.sh   (installs oauthlib into a venv under the target dir)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
VENV="$TARGET_DIR/bench-venv"
OAUTHLIB_VERSION=3.2.2
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import oauthlib" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "oauthlib==$OAUTHLIB_VERSION"
fi
PIN="taskset -c 0"
command -v taskset >/dev/null || PIN=""

echo "== oauthlib $OAUTHLIB_VERSION (Python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())'))"
py_ops=$($PIN "$VENV/bin/python" benches/oauthlib_sign.py 3)
echo "oauthlib: $py_ops ops/s"

echo "== passback (criterion, release)"
cargo bench --quiet --bench sign_replace --no-run 2>/dev/null   # build on all cores, measure on one
$PIN cargo bench --quiet --bench sign_replace -- --warm-up-time 1 --measurement-time 3 >/dev/null 2>&1
python3 - "$TARGET_DIR/criterion/sign_replace_result/new/estimates.json" "$py_ops" <<'PY'
import json, sys
est = json.load(open(sys.argv[1]))
ns = est["mean"]["point_estimate"]
rs_ops = 1e9 / ns
py_ops = float(sys.argv[2])
print(f"passback: {rs_ops:,.0f} ops/s ({ns:,.0f} ns per operation, one core)")
print(f"ratio: passback is {rs_ops / py_ops:.1f}x oauthlib")
PY
