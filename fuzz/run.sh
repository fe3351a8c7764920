#!/usr/bin/env bash
# Fuzz Passback's input surfaces with cargo fuzz (libFuzzer), on the stable toolchain.
#
#   fuzz/run.sh [TARGET|all] [SECONDS]   fuzz each target (default: all) for SECONDS (default 30)
#
# Installs cargo-fuzz when it is missing, builds every target once (AddressSanitizer;
# RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags cargo fuzz passes), then runs the
# targets one after another (PASSBACK_FUZZ_JOBS=N: N at a time). Inputs that add coverage
# go to fuzz/target/corpus/<target>/ (kept between runs, not committed); a crash, panic,
# timeout or leak stops that target, its input lands in fuzz/artifacts/<target>/ and the
# script fails. fuzz/README.md says how to turn a crash into a regression test.
set -euo pipefail

FUZZ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ"
# The main workspace's CARGO_TARGET_DIR is for its own builds; this crate builds in fuzz/target.
unset CARGO_TARGET_DIR
CARGO_FUZZ_VERSION=0.13.2

which="${1:-all}"
secs="${2:-30}"
jobs="${PASSBACK_FUZZ_JOBS:-1}"
# 0 would mean "no limit" to libFuzzer.
[[ "$secs" =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS must be a whole number above 0, not $secs" >&2; exit 2; }

if ! command -v cargo-fuzz >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
  echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install, once)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
fi
export PATH="$HOME/.cargo/bin:$PATH"

mapfile -t all < <(cargo fuzz list)
if [ "$which" = all ]; then
  targets=("${all[@]}")
else
  printf '%s\n' "${all[@]}" | grep -qx -- "$which" || { echo "no fuzz target $which (one of: ${all[*]})" >&2; exit 2; }
  targets=("$which")
fi

echo "==> building the fuzz targets (cargo fuzz build, AddressSanitizer)"
# Only this build needs RUSTC_BOOTSTRAP (not installing cargo-fuzz, whose build scripts
# would otherwise think they are on nightly). One target builds only that one.
if [ "$which" = all ]; then
  RUSTC_BOOTSTRAP=1 cargo fuzz build
else
  RUSTC_BOOTSTRAP=1 cargo fuzz build "$which"
fi
# Run what was just built (`cargo fuzz run` would rebuild for each target).
bin="$FUZZ/target/$(rustc -vV | sed -n 's/^host: //p')/release"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_odr_violation=0}"

logs="$FUZZ/target/fuzz-logs"
mkdir -p "$logs"
run_one() {
  local t="$1" work="$FUZZ/target/corpus/$1"
  mkdir -p "$work" "$FUZZ/artifacts/$t"
  # The first folder collects new inputs; corpus/<target> (committed) is only read.
  if "$bin/$t" "$work" "corpus/$t" -artifact_prefix="$FUZZ/artifacts/$t/" \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$logs/$t.log" 2>&1; then
    local execs rate
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || echo '?')"
    rate="$(grep -o 'exec/s: *[0-9]*' "$logs/$t.log" | tail -1 | grep -o '[0-9]*$' || echo '?')"
    printf 'ok      %-18s %ss, %s runs (%s/s)\n' "$t" "$secs" "$execs" "$rate"
  else
    printf 'FAILED  %-18s see fuzz/artifacts/%s/ and %s\n' "$t" "$t" "$logs/$t.log"
    grep -E 'panicked at|ERROR: |SUMMARY: |Test unit written to' "$logs/$t.log" | head -8 | sed 's/^/        /'
    return 1
  fi
}

echo "==> fuzzing ${#targets[@]} target(s) for ${secs}s each, $jobs at a time"
failed=0
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=$((failed + 1))
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=$((failed + 1))
  running=$((running - 1))
done
if [ "$failed" -gt 0 ]; then
  echo "fuzzing: $failed target(s) found a problem" >&2
  exit 1
fi
echo "fuzzing: no finding"
