// Races between an answer and a push, which the real service produces only
// now and then, made certain by a scripted peer on a real websocket: the
// service's `>O` answer is followed at once, in the same TCP write, by a
// `!O` push (or an `XO` delete) of the same object, before the link has
// made the object, while it applies the answer, or while it refreshes its
// objects after a reconnect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { Ghid } from '../src/ghid.js';
import { HypergolixLink } from '../src/link.js';
import { concat, decode, encode, NATIVE_GHIDS_SUBPROTOCOL, packObjDef } from '../src/ipc.js';
import { onCleanUp, text, until } from './support.js';

const ghid = (fill) => new Ghid(concat(Uint8Array.of(1), new Uint8Array(64).fill(fill)));
const ME = ghid(7);
const OBJ = ghid(9);

const def = (state) => packObjDef({
  address: OBJ, author: ME, private: false, dynamic: true, legroom: 0, apiId: null, isLink: false,
  state: new TextEncoder().encode(state),
});

/** One unmasked binary frame, as a server sends it (RFC 6455 §5.2). */
function frame(payload) {
  const n = payload.length;
  let head;
  if (n < 126) head = Uint8Array.of(0x82, n);
  else if (n < 65536) head = Uint8Array.of(0x82, 126, n >> 8, n & 0xff);
  else throw new Error('the scripted service sends small frames only');
  return concat(head, payload);
}

/**
 * A scripted service: answers `?I` with ME, the n-th `>O` with state
 * `old{n}` followed in the same write by `then` (`push`: `!O` with
 * `new{n}`; `delete`: `XO`), anything else with an empty `AK`.
 * Resolves to `{ url, fetches(), drop() }`.
 */
async function scripted(then) {
  let fetches = 0;
  const sockets = new Set();
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has(NATIVE_GHIDS_SUBPROTOCOL) ? NATIVE_GHIDS_SUBPROTOCOL : false),
  });
  const http = createServer();
  http.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      ws.on('message', (data) => {
        const m = decode(new Uint8Array(data));
        let out;
        if (m.code === 'AK') return; // the link's answer to a push
        if (m.code === '?I') out = [encode('AK', m.token, ME.bytes)];
        else if (m.code === '>O') {
          const n = fetches++;
          out = [
            encode('AK', m.token, def(`old${n}`)),
            then === 'push' ? encode('!O', 1, def(`new${n}`)) : encode('XO', 1, OBJ.bytes),
          ];
        } else out = [encode('AK', m.token, new Uint8Array(0))];
        // One write: the link reads the answer and the push together.
        socket.write(concat(...out.map(frame)));
      });
    });
  });
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  onCleanUp(() => {
    for (const s of sockets) s.destroy();
    http.close();
  });
  return {
    url: `ws://127.0.0.1:${http.address().port}/`,
    fetches: () => fetches,
    drop: () => { for (const s of sockets) s.destroy(); },
  };
}

test('a push right after the answer reaches the new object', async () => {
  const svc = await scripted('push');
  const link = await HypergolixLink.connect(svc.url);
  try {
    const obj = await link.get(OBJ);
    await until('the pushed state reaches the object', () => text(obj.state) === 'new0', 5000);
  } finally {
    link.close();
  }
});

test('a delete right after the answer reaches the new object', async () => {
  const svc = await scripted('delete');
  const link = await HypergolixLink.connect(svc.url);
  try {
    let obj = null;
    try {
      obj = await link.get(OBJ);
    } catch (e) {
      assert.equal(e.kind, 'dead', `unexpected: ${e.message}`);
    }
    if (obj) await until('the object learns it was deleted', () => !obj.alive, 5000);
  } finally {
    link.close();
  }
});

test('an older answer never overwrites a newer push', async () => {
  const svc = await scripted('push');
  const link = await HypergolixLink.connect(svc.url);
  try {
    // The object stays tracked; each fetch again races its answer against
    // the push that follows it.
    const held = await link.get(OBJ);
    for (let n = 1; n < 200; n++) {
      const again = await link.get(OBJ);
      const want = `new${n}`;
      await until(`${want} stays`, () => text(again.state) === want && text(held.state) === want, 5000);
    }
  } finally {
    link.close();
  }
});

test('a push during the refresh after a reconnect wins', async () => {
  const svc = await scripted('push');
  const link = await HypergolixLink.connect(svc.url);
  try {
    const obj = await link.get(OBJ);
    await until('new0', () => text(obj.state) === 'new0', 5000);
    const seen = [];
    obj.appendCallback((o) => seen.push(text(o.state)));
    svc.drop();
    // The link reconnects and fetches the object again: `old1`, then at
    // once the push `new1`, which the answer must not overwrite.
    await until('the refresh', () => svc.fetches() >= 2 && text(obj.state) === 'new1', 10000);
    await new Promise((r) => setTimeout(r, 200)); // anything the refresh would still apply, applied
    assert.equal(text(obj.state), 'new1', 'stale after the refresh');
    assert.equal(seen.at(-1), 'new1', 'the last callback saw the newest state');
  } finally {
    link.close();
  }
});
