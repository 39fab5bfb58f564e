#!/usr/bin/env bash
# The main job. For now: build the engine for WASI and the native host, and run
# the engine's self-test under wasmtime. (The local service arrives with issue 5.)
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2
cargo build --release -p hypergolix-core --example wasi_vectors --features vectors --target wasm32-wasip2
cargo build --release -p hypergolix-wasi-host
./target/release/hypergolix selftest "$@"
