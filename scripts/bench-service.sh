#!/usr/bin/env bash
# The seed scenario over real sockets: one `hypergolix serve`, two
# `hypergolix start` (agents A and B, engines inside wasmtime, or natively
# with ENGINE=native), and the app-side load generator hypergolix-ipc-bench
# as a separate process. Everything on loopback, bounded in count.
# Usage: [LINK_UPDATES=N] [CLIENTS=K] scripts/bench-service.sh [hypergolix-ipc-bench args]   (results: docs/benchmarks.md)
# SERVICE_BIN=PATH runs another build of `hypergolix` (server and services)
# under this tree's load generators, for before/after comparisons.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p hypergolix-wasi-host --bins
cargo build -q --release -p hypergolix-link --example link_latency
HGX=${SERVICE_BIN:-./target/release/hypergolix}
WORK=$(mktemp -d /tmp/hgx-svc-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_addr() { # file
  for _ in $(seq 300); do
    a=$(sed -n 's/^listening on //p' "$1")
    if [ -n "$a" ]; then echo "$a"; return 0; fi
    sleep 0.1
  done
  echo "no listening line in $1" >&2
  return 1
}

"$HGX" serve --listen 127.0.0.1:0 --store "$WORK/server.redb" > "$WORK/server.out" 2> "$WORK/server.err" &
PIDS+=($!)
SERVER=$(wait_addr "$WORK/server.out")
EXTRA=()
[ "${ENGINE:-wasm}" = native ] && EXTRA+=(--native-engine)
for who in a b; do
  HYPERGOLIX_PASSWORD="bench $who" RUST_LOG=warn "$HGX" start --ipc 127.0.0.1:0 \
    --data-dir "$WORK/$who" --remote "ws://$SERVER/" \
    "${EXTRA[@]}" > "$WORK/$who.out" 2> "$WORK/$who.err" &
  PIDS+=($!)
done
A=$(wait_addr "$WORK/a.out")
B=$(wait_addr "$WORK/b.out")
echo "server $SERVER, A $A, B $B, engine ${ENGINE:-wasm}"
./target/release/hypergolix-ipc-bench --a "$A" --b "$B" "$@"
# CLIENTS=K: then K load generators at once, each with the same arguments
# (the service's group commit shows under concurrent apps).
if [ "${CLIENTS:-1}" -gt 1 ]; then
  CPIDS=()
  for i in $(seq "$CLIENTS"); do
    ./target/release/hypergolix-ipc-bench --a "$A" --b "$B" "$@" > "$WORK/client$i.out" 2>&1 &
    CPIDS+=($!)
  done
  for p in "${CPIDS[@]}"; do wait "$p"; done
  cat "$WORK"/client*.out | awk -v k="$CLIENTS" '
    /^closed-loop updates\/s:/ { u += $3 }
    /^creates\/s:/ { c += $2 }
    END { printf "%d clients at once: %.0f updates/s, %.0f creates/s in all\n", k, u, c }'
fi
# The same seed scenario through the Rust link on both sides.
./target/release/examples/link_latency "$A" "$B" "${LINK_UPDATES:-1000}"
# And through the Python link (python/): the venv python/tests/run.sh
# makes, or one named by PY_LINK_PYTHON (then it must exist).
PYL=${PY_LINK_PYTHON:-./target/py-link-venv/bin/python}
if [ -x "$PYL" ]; then
  "$PYL" python/bench/link_latency.py "$A" "$B" "${LINK_UPDATES:-1000}" 20
elif [ -n "${PY_LINK_PYTHON:-}" ]; then
  echo "PY_LINK_PYTHON=$PY_LINK_PYTHON is not an executable python" >&2
  exit 1
else
  echo "skipped the Python link: no venv at $PYL (python/tests/run.sh makes it)"
fi
# And through the unmodified 0.1.0 link from PyPI (the venv
# tests/python/venv.sh makes, or one named by HGX_LINK_PYTHON).
HGL=${HGX_LINK_PYTHON:-./target/hgx-link-venv/bin/python}
if [ -x "$HGL" ]; then
  PYTHONPATH=tests/python/py311-compat "$HGL" tests/python/hgxlink_latency.py \
    "${A##*:}" "${B##*:}" "${LINK_UPDATES:-1000}" 20
elif [ -n "${HGX_LINK_PYTHON:-}" ]; then
  echo "HGX_LINK_PYTHON=$HGX_LINK_PYTHON is not an executable python" >&2
  exit 1
else
  echo "skipped the 0.1.0 link: no venv at $HGL (tests/python/venv.sh makes it)"
fi
