#!/usr/bin/env bash
# Builds the browser engine into the npm package: `hypergolix-web` for
# wasm32-unknown-unknown (profile wasm-release: LTO, size-optimised but the
# crypto at opt-level 3), then wasm-bindgen's ES-module glue into pkg/wasm/.
# Prints the wasm's size, raw and gzipped; fails past 300 KiB gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --profile wasm-release -p hypergolix-web --target wasm32-unknown-unknown
rm -rf pkg/wasm
wasm-bindgen --target web --remove-name-section --remove-producers-section \
  --out-dir pkg/wasm --out-name hypergolix_web \
  target/wasm32-unknown-unknown/wasm-release/hypergolix_web.wasm
WASM=pkg/wasm/hypergolix_web_bg.wasm
RAW=$(stat -c %s "$WASM")
GZ=$(gzip -9 -c "$WASM" | wc -c)
echo "pkg/wasm: $((RAW / 1024)) KiB raw, $((GZ / 1024)) KiB gzipped ($GZ bytes)" >&2
if [ "$GZ" -gt 307200 ]; then
  echo "the wasm is over the 300 KiB gzipped budget" >&2
  exit 1
fi
