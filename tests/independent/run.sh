#!/usr/bin/env bash
# Runs the independent Python implementation of cipher suite 0x3 against the
# golden vectors, in a venv with the `cryptography` package from PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${HGX_PYVENV:-/tmp/hgx-independent-venv}
PY=$(command -v python3.11 || command -v python3)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import cryptography' 2>/dev/null || "$VENV/bin/pip" install -q 'cryptography==50.0.2'
exec "$VENV/bin/python" tests/independent/cs3_reference.py
