#!/usr/bin/env bash
# Short fuzz run of every target (CI smoke test). Usage: fuzz/smoke.sh [SECONDS]
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them, so no second toolchain is needed. The crypto is
# memory-safe Rust (#![forbid(unsafe_code)]), so no sanitizer is used.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET=${1:-5}
export RUSTC_BOOTSTRAP=1
cargo fuzz build --sanitizer none --release
mkdir -p logs
python3 seed_corpus.py $(cargo fuzz list)
n=0
for t in $(cargo fuzz list); do
  mkdir -p "corpus/$t"
  echo "fuzzing $t for ${SECONDS_PER_TARGET}s"
  if ! cargo fuzz run --sanitizer none --release "$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -print_final_stats=1 >"logs/$t.log" 2>&1; then
    tail -40 "logs/$t.log" >&2
    echo "fuzz target $t failed: see fuzz/artifacts/$t and fuzz/logs/$t.log" >&2
    exit 1
  fi
  grep -E "stat::number_of_executed_units|stat::average_exec_per_sec" "logs/$t.log" | sed 's/^/  /'
  n=$((n + 1))
done
echo "fuzz smoke: $n targets ran without a crash"
