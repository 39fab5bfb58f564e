#!/usr/bin/env bash
# The main job: build the `hypergolix` binary (the native host, with the
# engine's WASI component built into it) and run the local service in the
# foreground. Apps connect on ws://127.0.0.1:7772; with no remote configured
# an embedded persistence store keeps everything in ~/.hypergolix (or
# $HYPERGOLIX_DATA_DIR). The first start creates an account: the password
# comes from $HYPERGOLIX_PASSWORD, or is asked for on the terminal.
# Extra arguments go to `hypergolix start` (see `hypergolix start --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
echo "building hypergolix (the first build takes a few minutes)…" >&2
cargo build --release --locked -p hypergolix-wasi-host
# Self-check: the golden vectors inside the built-in engine, under wasmtime.
./target/release/hypergolix selftest >/dev/null
exec ./target/release/hypergolix start "$@"
