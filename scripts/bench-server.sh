#!/usr/bin/env bash
# Persistence-server benchmarks over real websockets on loopback, for the
# embedded store and for PostgreSQL. The load generator is a separate process.
# Usage: scripts/bench-server.sh [seconds]   (results: docs/benchmarks.md)
# SERVER_BIN=PATH benchmarks another build of `hypergolix` (an older commit's)
# with this tree's load generator, for before/after comparisons.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
cargo build -q --release -p hypergolix-wasi-host --bins
HGX=${SERVER_BIN:-./target/release/hypergolix}
LOAD=./target/release/hypergolix-load
WORK=$(mktemp -d /tmp/hgx-bench-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${PGDATA:-}" ]; then runuser -u postgres -- "$PGBIN/pg_ctl" -m immediate -D "$PGDATA" stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" || true

start_server() { # args...; sets ADDR and SPID
  "$HGX" serve --listen 127.0.0.1:0 "$@" > "$WORK/server.out" 2> "$WORK/server.err" &
  SPID=$!
  PIDS+=("$SPID")
  for _ in $(seq 100); do
    ADDR=$(sed -n 's/^listening on //p' "$WORK/server.out")
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  cat "$WORK/server.err" >&2
  exit 1
}

run_suite() {
  local label=$1
  echo "=== $label"
  "$LOAD" --addr "$ADDR" publish --clients 8 --seconds "$SECS"
  for s in 1 100 1000; do
    "$LOAD" --addr "$ADDR" latency --subscribers "$s" --frames $(( s >= 1000 ? 50 : 300 ))
  done
  "$LOAD" --addr "$ADDR" idle --connections 10000 --pid "$SPID" --hold 3
}

start_server --store "$WORK/store.redb"
run_suite "embedded store (redb)"
kill "$SPID"; wait "$SPID" 2>/dev/null || true

if [ "${SKIP_POSTGRES:-0}" != 1 ]; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  mkdir -p "$WORK/pg" && chown postgres "$WORK/pg" "$WORK"
  PGDATA="$WORK/pg/data"
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  runuser -u postgres -- "$PGBIN/initdb" -A trust -U hgx -D "$PGDATA" >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -w -l "$WORK/pg/log" -D "$PGDATA" \
    -o "-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  start_server --postgres "postgresql://hgx@127.0.0.1:$PGPORT/postgres"
  run_suite "PostgreSQL $(basename "$(dirname "$PGBIN")")"
fi
