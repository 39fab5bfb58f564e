#!/usr/bin/env bash
# Browser benchmarks (docs/benchmarks.md): update latency between an agent in
# headless Chromium (the npm package in a Vite app) and one on a local
# service, objects created per second in the page, and the portable Golix
# benchmark in Chromium next to native. Needs what scripts/setup.sh installs.
# Usage: ./scripts/bench-browser.sh [updates per direction, default 300]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
./scripts/build-pkg.sh
cargo build -q --release -p hypergolix-wasi-host
# The same engine build as the package's, plus `benchPortable`.
cargo build -q --profile wasm-release -p hypergolix-web --features bench --target wasm32-unknown-unknown
OUT=target/bench-web
rm -rf "$OUT" && mkdir -p "$OUT"
wasm-bindgen --target web --out-dir "$OUT" --out-name hypergolix_web \
  target/wasm32-unknown-unknown/wasm-release/hypergolix_web.wasm
echo '<!doctype html><title>bench</title>' > "$OUT/index.html"
cargo build -q --release -p hypergolix-core --example bench_portable --features bench
./target/release/examples/bench_portable > "$OUT/native.tsv"
(cd pkg && npm ci --no-audit --no-fund --silent)
BENCH_WEB_DIR="$ROOT/$OUT" NATIVE_TSV="$ROOT/$OUT/native.tsv" node pkg/test/browser/bench.js "${1:-300}"
