#!/usr/bin/env bash
# `npm pack`, then install the tarball into a fresh plain Node project and
# use it there with no other step: import, the codec, a real connection
# to a `hypergolix start` it runs (from $HYPERGOLIX_BIN, default the
# release build), and the wasm engine.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HYPERGOLIX_BIN:-$(pwd)/../target/release/hypergolix}
WORK=$(mktemp -d /tmp/hgx-pack-XXXXXX)
SVC=""
trap '[ -n "$SVC" ] && kill "$SVC" 2>/dev/null; rm -rf "$WORK"' EXIT
HYPERGOLIX_PASSWORD=pack RUST_LOG=warn "$BIN" start --ipc 127.0.0.1:0 --native-engine \
  --insecure-test-kdf --data-dir "$WORK/svc" > "$WORK/svc.out" 2> "$WORK/svc.err" &
SVC=$!
ADDR=""
for _ in $(seq 300); do
  ADDR=$(sed -n 's/^listening on //p' "$WORK/svc.out")
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "the service did not start:"; cat "$WORK/svc.err"; exit 1; }
TARBALL=$(npm pack --silent --pack-destination "$WORK")
cd "$WORK"
npm init -y >/dev/null
npm install --no-audit --no-fund "./$TARBALL" >/dev/null
cat > try.mjs <<'JS'
import { ApiId, Engine, Ghid, HypergolixLink, ipc } from 'hypergolix';
const m = ipc.encode('?I', 7);
const back = ipc.decode(m);
if (back.code !== '?I' || back.token !== 7) throw new Error('codec');
if (ApiId.default().bytes.length !== 65) throw new Error('api id');
const url = process.argv[2];
if (url) {
  const link = await HypergolixLink.connect(url);
  if (!(link.whoami instanceof Ghid)) throw new Error('whoami');
  await link.newToken();
  const o = await link.newObj('from a packed install');
  console.log('packed install works:', o.address.toString().slice(0, 12) + '…');
  link.close();
  // The wasm engine loads from the installed package too (offline here:
  // nothing listens on the discard port).
  const engine = await Engine.create({ server: 'ws://127.0.0.1:9/', password: 'pack', storage: 'memory', onLog: () => {} });
  const local = await engine.link();
  const kept = await local.newObj('kept in memory');
  if (!(engine.userId instanceof Ghid) || !kept.address) throw new Error('engine');
  console.log('packed engine works:', engine.userId.toString().slice(0, 12) + '…');
  local.close();
  await engine.close();
} else {
  console.log('packed install imports and encodes');
}
JS
node try.mjs "ws://$ADDR/"
