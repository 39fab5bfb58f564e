#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh machine.
# Idempotent: anything already present at the right version is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

log "Rust targets and components"
rustup target add wasm32-unknown-unknown wasm32-wasip2
rustup component add clippy rustfmt

# wasm-bindgen-cli must match the wasm-bindgen crate version in Cargo.lock exactly.
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$WB_VERSION" ]; then
  echo "cannot find the wasm-bindgen version in Cargo.lock" >&2
  exit 1
fi
if command -v wasm-bindgen >/dev/null && [ "$(wasm-bindgen --version | awk '{print $2}')" = "$WB_VERSION" ]; then
  log "wasm-bindgen-cli $WB_VERSION already installed"
else
  log "installing wasm-bindgen-cli $WB_VERSION"
  cargo install wasm-bindgen-cli --version "$WB_VERSION" --force
fi

CARGO_FUZZ_VERSION=0.13.2
if command -v cargo-fuzz >/dev/null && cargo fuzz --version | grep -q "$CARGO_FUZZ_VERSION"; then
  log "cargo-fuzz $CARGO_FUZZ_VERSION already installed"
else
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --force
fi

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# systemd-analyze checks the unit `hypergolix service install` writes.
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
# openssl makes the certificates of the browser's wss:// test.
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing from Debian: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
else
  log "chromium, chromedriver, postgresql, systemd-analyze and openssl already installed"
fi
