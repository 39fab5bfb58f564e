#!/usr/bin/env bash
# The sync-engine comparison (docs/benchmarks.md, "Two engines in Node"):
# two npm-package engines in one Node process (memory storage), each with
# its own WebSocket to one `hypergolix serve` on redb; closed-loop updates,
# shares and objects created until acknowledged. Loopback only.
# Usage: ./scripts/bench-engines.sh [updates 1000] [shares 100] [objects 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-pkg.sh
cargo build -q --release -p hypergolix-wasi-host
(cd pkg && npm ci --no-audit --no-fund --silent)
node pkg/test/bench-engines.js "$@"
