#!/usr/bin/env bash
# The main job: build the engine (a WASI component) and the native host, then
# run the local service in the foreground. Apps connect on ws://127.0.0.1:7772;
# with no remote configured an embedded persistence store keeps everything in
# ~/.hypergolix (or $HYPERGOLIX_DATA_DIR). The first start creates an account:
# the password comes from $HYPERGOLIX_PASSWORD, or is asked for on the terminal.
# Extra arguments go to `hypergolix start` (see `hypergolix start --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
echo "building the engine component and the host (the first build takes a few minutes)…" >&2
cargo build --release -p hypergolix-engine-component --target wasm32-wasip2
cargo build --release -p hypergolix-wasi-host
# Self-check: the golden vectors under the same wasmtime.
cargo build --release -p hypergolix-core --example wasi_vectors --features vectors --target wasm32-wasip2
./target/release/hypergolix selftest >/dev/null
DATA_DIR=${HYPERGOLIX_DATA_DIR:-$HOME/.hypergolix}
exec ./target/release/hypergolix start --data-dir "$DATA_DIR" \
  --component target/wasm32-wasip2/release/hypergolix_engine_component.wasm "$@"
