#!/usr/bin/env bash
# Makes (once) the Python 3.11 venv with the original Hypergolix 0.1.0 link
# from PyPI, at the pinned versions in requirements.txt, and prints the path
# of its python. Used by wasi-host/tests/python_link.rs.
#   HGX_LINK_VENV   where the venv lives (default: target/hgx-link-venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${HGX_LINK_VENV:-$(pwd)/target/hgx-link-venv}
PY=$(command -v python3.11 || true)
if [ -z "$PY" ]; then
  echo "python3.11 is needed for the 0.1.0 link (the py311 shim targets it)" >&2
  exit 1
fi
if ! "$VENV/bin/python" -c 'import hypergolix, golix, loopa' 2>/dev/null; then
  echo "making the hypergolix 0.1.0 venv in $VENV" >&2
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt >&2
fi
echo "$VENV/bin/python"
