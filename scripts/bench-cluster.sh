#!/usr/bin/env bash
# The cluster benchmark: three `hypergolix serve` nodes (release build) on one
# PostgreSQL the test starts, subscribers spread over them, a publisher per
# object, one node killed with SIGKILL half way and started again. Prints
# publishes/s, push latency across nodes and within one, and memory per
# subscribed socket; fails if an acknowledged publish is lost, a subscriber
# does not end with every last frame, or a push goes backwards.
# Two runs: a closed loop (each publisher sends its next frame once the last
# is acknowledged: publishes/s, and latency under that load), then paced
# publishers (a frame every PACE ms each: latency below saturation).
# Usage: scripts/bench-cluster.sh [objects per node] [subscribers per node] [seconds] [pace ms]
# (results: docs/benchmarks.md). `.ci/run` runs the same test, smaller.
set -euo pipefail
cd "$(dirname "$0")/.."
export HGX_CLUSTER_OBJECTS=${1:-10}
export HGX_CLUSTER_SUBSCRIBERS=${2:-200}
export HGX_CLUSTER_SECONDS=${3:-10}
PACE=${4:-100}
run() {
  cargo test -q --release -p hypergolix-wasi-host --test postgres -- \
    --nocapture --test-threads 1 three_nodes_one_killed_lose_nothing 2>&1 |
    grep -E '^cluster:|panicked|test result'
}
echo "=== closed loop"
HGX_CLUSTER_PACE_MS=0 run
echo "=== paced: a frame every ${PACE} ms per publisher"
HGX_CLUSTER_PACE_MS=$PACE run
