#!/usr/bin/env bash
# The whole test suite, set-up included: `./scripts/test.sh` on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
# Steps that drive servers and browsers get a deadline, so a hang fails the
# run with a message instead of eating CI's whole budget: guard MINUTES CMD...
guard() {
  local minutes=$1; shift
  local rc=0
  timeout --kill-after=30 "$(( minutes * 60 ))" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "!! timed out after ${minutes} min: $*" >&2
  fi
  return "$rc"
}

step "set-up"
./scripts/setup.sh

export CARGO_TERM_COLOR=never
step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --features hypergolix-core/vectors,hypergolix-core/conformance,hypergolix-core/bench -- -D warnings
cargo clippy -p hypergolix-web --target wasm32-unknown-unknown --all-targets -- -D warnings
cargo clippy -p hypergolix-engine-component --target wasm32-wasip2 -- -D warnings

step "native tests (core, web)"
cargo test --workspace --exclude hypergolix-wasi-host --features hypergolix-core/vectors,hypergolix-core/conformance

step "golden vectors are reproducible from their generator"
cargo run -q -p hypergolix-core --features vectors --example gen_vectors > "$ROOT/target/golix-cs3.regenerated.json"
cmp vectors/golix-cs3.json "$ROOT/target/golix-cs3.regenerated.json"
echo "vectors/golix-cs3.json matches its generator"

step "the browser host in headless Chromium: golden vectors, local-store conformance on IndexedDB, the engine's life (page and Web Worker)"
(cd web && CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} WASM_BINDGEN_TEST_TIMEOUT=180 \
  cargo test --target wasm32-unknown-unknown)

step "the host: the engine built into the binary under wasmtime, golden vectors as WASI components, the server, the local service, the links (wasi-host)"
# build.rs builds the engine component (wasm32-wasip2) into the binary.
cargo test --release -p hypergolix-wasi-host
./target/release/hypergolix selftest --cache-dir "$ROOT/target/wasmtime-cache"

step "the engine's slow case in release: 40,000 updates, so request tokens wrap, then a share still reaches its recipient"
cargo test --release -p hypergolix-core --test engine -- --ignored

step "the Python link (python/): pip install, mypy --strict, wheel, pytest against a real server and two services"
guard 15 ./python/tests/run.sh

step "the seed scenario over real sockets (serve + two local services), short run"
LINK_UPDATES=100 PY_LINK_PYTHON="$ROOT/target/py-link-venv/bin/python" HGX_LINK_PYTHON="$ROOT/target/hgx-link-venv/bin/python" guard 15 ./scripts/bench-service.sh --updates 200 --creates 50 --shares 5

step "npm package hypergolix (pkg/): the wasm engine (size budget), codec vs captured 0.1.0 messages, link vs real services, engines in Node vs a real server, a Chromium page (packed into a fresh Vite app) sharing live with a local service, packed install in Node, the two-engine benchmark (short run)"
./scripts/build-pkg.sh
(cd pkg && npm ci --no-audit --no-fund && guard 20 npm test && guard 10 ./test/pack.sh \
  && guard 5 node test/bench-engines.js 100 20 100)

step "the web app (www/): typecheck, build (first load within 400 KB gzipped), then in Chromium against serve --www: accounts, two agents sharing live, a second device, offline, two tabs, errors, screenshots, axe"
(cd www && npm ci --no-audit --no-fund && npm run build && guard 15 npm test)

step "browser benchmarks, short runs (latency browser <-> local service, in-page Golix rates; the web app: first load, list, live edit)"
guard 20 ./scripts/bench-browser.sh 30
guard 5 ./scripts/bench-www.sh 10

step "independent Python implementation of suite 0x3 reproduces the vectors"
./tests/independent/run.sh

step "fuzz smoke run"
./fuzz/smoke.sh "${FUZZ_SECONDS:-5}"

step "benchmarks compile and run once"
cargo bench -p hypergolix-core --bench golix -- --test
cargo bench -p hypergolix-core --bench engine -- --test
cargo bench -p hypergolix-wasi-host --bench engine_wasm -- --test
cargo bench -p hypergolix-wasi-host --bench connect -- --test

step "done in $(( $(date +%s) - START ))s"
