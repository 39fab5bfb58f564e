#!/usr/bin/env bash
# The Python link's checks: a venv with the package installed the way users
# install it (pip install ./python), mypy --strict, the wheel builds, and
# pytest against real services (the release binary, or HYPERGOLIX_BIN).
#   HGX_PY_VENV   where the venv lives (default: target/py-link-venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
VENV=${HGX_PY_VENV:-$ROOT/target/py-link-venv}
PY=$(command -v python3.11 || command -v python3)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check 'pytest==8.4.2' 'mypy==1.18.2' 'build==1.3.0'
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps ./python
"$VENV/bin/pip" install -q --disable-pip-version-check ./python
(cd python && "$VENV/bin/mypy" --strict src/hypergolix)
rm -rf "$ROOT/target/py-dist"
"$VENV/bin/python" -m build --outdir "$ROOT/target/py-dist" python >/dev/null
ls "$ROOT/target/py-dist"/hypergolix-0.2.0-py3-none-any.whl >/dev/null
export HYPERGOLIX_BIN=${HYPERGOLIX_BIN:-$ROOT/target/release/hypergolix}
cd python && exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
