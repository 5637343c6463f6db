#!/usr/bin/env bash
# Short, bounded run of every fuzz target (scripts/test runs it): the committed seeds in
# seeds/TARGET first, then FUZZ_SECONDS (default 8) of fuzzing with a fixed seed; new inputs
# go to a temp dir, so the tree stays clean. A finding fails the run and is saved under
# artifacts/TARGET/ (replay: cargo fuzz run --dev TARGET artifacts/TARGET/crash-...).
#
# Needs cargo-fuzz (scripts/setup installs it). The machine has one stable toolchain:
# RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz passes (AddressSanitizer, whose
# runtime ships with the stable toolchain). The debug build (--dev) compiles in about half
# the time of the release one; the long runs in README.md use the release build.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
secs=${FUZZ_SECONDS:-8}
cargo fuzz build --dev
for t in $(cargo fuzz list); do
  work=$(mktemp -d)
  dict=()
  if [ -f "dicts/$t.dict" ]; then dict=(-dict="dicts/$t.dict"); fi
  if ! cargo fuzz run --dev "$t" "$work" "seeds/$t" -- -seed=1 -max_total_time="$secs" \
      -timeout=20 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 "${dict[@]}" \
      >"$work.log" 2>&1; then
    tail -n 60 "$work.log"
    echo "fuzz smoke: $t FAILED (artifact in fuzz/artifacts/$t/)"
    rm -rf "$work" "$work.log"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log" | grep -o '[0-9]*$' || echo '?')
  echo "fuzz smoke: $t ok, $runs inputs in ${secs}s ($(ls "seeds/$t" | wc -l) seeds)"
  rm -rf "$work" "$work.log"
done
