#!/usr/bin/env bash
# The web app's benchmark: first-load size and time, the object list of a
# new tab, live-edit latency between two browsers (Chromium, serve --www).
# ./scripts/bench-www.sh [EDITS]   (needs the release binary and www/dist)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/release/hypergolix ] || cargo build --release -p hypergolix-wasi-host
[ -f www/dist/index.html ] || (cd www && npm ci --no-audit --no-fund && npm run build)
cd www && exec node tests/bench.js "${1:-30}"
