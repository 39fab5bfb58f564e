#!/usr/bin/env bash
# The portable Golix benchmark natively, under wasmtime (wasip2 component run by
# the hypergolix host) and under Node (wasip1 module), with ratios to native.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null
cargo build -q --release -p hypergolix-core --example bench_portable --features bench
cargo build -q --release -p hypergolix-core --example bench_portable --features bench --target wasm32-wasip2
cargo build -q --release -p hypergolix-core --example bench_portable --features bench --target wasm32-wasip1
cargo build -q --release -p hypergolix-wasi-host
out=target/bench-wasm
mkdir -p $out
echo "running natively..." >&2
./target/release/examples/bench_portable > $out/native.tsv
echo "running under wasmtime..." >&2
./target/release/hypergolix run-wasm target/wasm32-wasip2/release/examples/bench_portable.wasm > $out/wasmtime.tsv
echo "running under node $(node --version)..." >&2
node --no-warnings scripts/node-wasi.mjs target/wasm32-wasip1/release/examples/bench_portable.wasm > $out/node.tsv
printf '%-28s %12s %12s %12s %8s %8s\n' operation native_ns wasmtime_ns node_ns wt/nat node/nat
paste $out/native.tsv $out/wasmtime.tsv $out/node.tsv | awk -F'\t' '{ printf "%-28s %12d %12d %12d %8.2f %8.2f\n", $1, $2, $5, $8, $5/$2, $8/$2 }'
