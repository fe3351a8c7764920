#!/usr/bin/env bash
# Open the real Passback window under Xvfb through tauri-driver + WebKitWebDriver and
# read its empty state. Usage: tests/e2e/run-app-smoke.sh path/to/passback-desktop
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
app="$(realpath "${1:?usage: run-app-smoke.sh path/to/passback-desktop}")"
[ -x "$app" ] || { echo "error: $app is not a built desktop binary" >&2; exit 1; }
driver="$(command -v tauri-driver || true)"
[ -n "$driver" ] || driver="$HOME/.cargo/bin/tauri-driver"
[ -x "$driver" ] || { echo "error: tauri-driver not found; run ./dev setup" >&2; exit 1; }
command -v WebKitWebDriver >/dev/null || { echo "error: WebKitWebDriver not found (apt package webkit2gtk-driver)" >&2; exit 1; }

work="$(mktemp -d)"
artifacts="$here/artifacts"
mkdir -p "$artifacts"
# WebKitWebDriver with its output in a log file (this made the runs stable).
cat > "$work/webkitwebdriver" <<WRAP
#!/bin/sh
exec /usr/bin/WebKitWebDriver "\$@" >>"$work/webkitwebdriver.log" 2>&1
WRAP
chmod +x "$work/webkitwebdriver"

export PASSBACK_DB="$work/ledger.sqlite"   # a fresh, empty ledger: the app shows its empty state
unset PASSBACK_DEMO
set +e
xvfb-run -a -s "-screen 0 1280x800x24" bash -c '
  "$1" --native-driver "$2" >"$3/tauri-driver.log" 2>&1 &
  td=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null && break; sleep 0.2; done
  python3 "$4/app_smoke.py" "$5" "$6"
  rc=$?
  kill $td 2>/dev/null; wait $td 2>/dev/null
  exit $rc' bash "$driver" "$work/webkitwebdriver" "$work" "$here" "$app" "$artifacts"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "--- tauri-driver log"; tail -n 40 "$work/tauri-driver.log" || true
  echo "--- WebKitWebDriver log"; tail -n 40 "$work/webkitwebdriver.log" || true
fi
pkill -x -f "$app" 2>/dev/null || true   # only a leftover app process, never this script
rm -rf "$work"
exit $rc
