// The engine itself (the wasm build) in Node, on memory storage, against a
// real `hypergolix serve`: two agents share and update live, a second device
// logs in with user id + password, and the refusals carry their codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiId, Engine, Ghid, HypergolixError } from '../src/index.js';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, freePort, killServe, serve, shareWhenKnown, text, until } from './support.js';

const quiet = () => {};

test('engines in Node: share, live updates, a second device, refusals', async () => {
  const server = await serve('engines');
  await assert.rejects(
    Engine.create({ server, password: 'x' }),
    (e) => e instanceof HypergolixError && e.kind === 'bad_option' && /IndexedDB/.test(e.message),
  );
  const a = await Engine.create({ server, password: 'pw a', storage: 'memory', onLog: quiet });
  const b = await Engine.create({ server, password: 'pw b', storage: 'memory', onLog: quiet });
  assert.ok(a.userId instanceof Ghid && a.identity instanceof Ghid);
  assert.ok(!a.identity.equals(b.identity));
  await until('both online', () => a.online && b.online);

  const la = await a.link();
  const lb = await b.link();
  assert.ok(la.whoami.equals(a.identity));
  await la.newToken();
  await lb.newToken();
  const api = new ApiId(new Uint8Array(64).fill(3));
  const shares = [];
  await lb.registerApi(api, (s) => shares.push(s));
  const note = await la.newObj('v0', { apiId: api });
  await shareWhenKnown(note, b.identity);
  await until('B is told of the share', () => shares.length > 0);
  assert.ok(shares[0].origin.equals(a.identity));
  const onB = await lb.get(note.address);
  assert.equal(text(onB.state), 'v0');
  const seen = [];
  onB.appendCallback((o) => seen.push(text(o.state)));
  for (let i = 1; i <= 5; i++) await note.setState(`v${i}`);
  await until('B sees v5', () => seen.includes('v5'));
  await assert.rejects(onB.setState('not mine'), (e) => e.kind === 'immutable');

  // A second device of A: user id and password, nothing else.
  await a.synced();
  const a2 = await Engine.login({ server, userId: a.userId, password: 'pw a', storage: 'memory', onLog: quiet });
  assert.ok(a2.identity.equals(a.identity));
  const la2 = await a2.link();
  const there = await la2.get(note.address);
  assert.equal(text(there.state), 'v5');
  // The second device lists what the first made and B shared, a private
  // object only to the app token that made it.
  const secret = await la.newObj('only this app', { apiId: api, private: true });
  const fromB = await lb.newObj('from b', { apiId: api });
  await shareWhenKnown(fromB, a.identity);
  await a.synced();
  const listed = async (link) => (await link.listObjects()).map((o) => o.address.toString()).sort();
  await until('A lists what B shared', async () => (await listed(la)).includes(fromB.address.toString()));
  assert.deepEqual(await listed(la), [note, secret, fromB].map((o) => o.address.toString()).sort());
  await until('the second device lists note and share', async () => (await listed(la2)).length === 2);
  assert.deepEqual(await listed(la2), [note, fromB].map((o) => o.address.toString()).sort());
  const row = (await la.listObjects()).find((o) => o.address.equals(secret.address));
  assert.ok(row.private && row.owned && row.dynamic && row.loaded && !row.isLink);
  assert.ok(row.author.equals(a.identity) && row.apiId.equals(api));
  assert.equal(row.size, 'only this app'.length);
  assert.ok(row.changed instanceof Date && Math.abs(row.changed - Date.now()) < 60_000);
  const onA = [];
  note.appendCallback((o) => onA.push(text(o.state)));
  await there.setState('from the second device');
  await until('the first device sees it', () => onA.includes('from the second device'));
  await until('B sees it', () => seen.includes('from the second device'));

  await assert.rejects(
    Engine.login({ server, userId: a.userId, password: 'wrong', storage: 'memory', onLog: quiet }),
    (e) => e instanceof HypergolixError && e.kind === 'wrong_password',
  );
  // A password change needs the current password, checked against the
  // account on the server: the second device changes it, the first (which
  // never saw that) is asked with the new one. Both keep working.
  await assert.rejects(a2.changePassword('not it', 'pw a2'), (e) => e.kind === 'wrong_password');
  await a2.changePassword('pw a', 'pw a2');
  await assert.rejects(a.changePassword('pw a', 'x'), (e) => e.kind === 'wrong_password');
  await assert.rejects(
    Engine.login({ server, userId: a.userId, password: 'pw a', storage: 'memory', onLog: quiet }),
    (e) => e.kind === 'wrong_password',
  );
  const a3 = await Engine.login({ server, userId: a.userId, password: 'pw a2', storage: 'memory', onLog: quiet });
  await a3.close();
  await assert.rejects(
    Engine.login({ server: 'ws://127.0.0.1:9/', userId: a.userId, password: 'pw a', storage: 'memory', timeoutMs: 1000, onLog: quiet }),
    (e) => e.kind === 'unreachable',
  );
  await assert.rejects(
    Engine.open({ server, password: 'pw', storage: 'memory', userId: 'not a ghid' }),
    (e) => e.kind === 'bad_option',
  );
  // A promise that rejects, as its type says (not a throw).
  const noUser = Engine.login({ server, password: 'pw', storage: 'memory' });
  await assert.rejects(noUser, (e) => e.kind === 'bad_option');

  await note.delete();
  await until('B sees the delete', () => !onB.alive);
  for (const l of [la, lb, la2]) l.close();
  await Promise.all([a.close(), b.close(), a2.close()]);
  assert.ok(a.closed);
  await assert.rejects(a.link(), (e) => e instanceof HypergolixError && e.kind === 'closed');
});

test('recovery words: made with the account, replaced, and recovering it in a new engine', async () => {
  const server = await serve('recovery');
  const a = await Engine.create({ server, password: 'lost', storage: 'memory', onLog: quiet });
  const words = a.takeRecoveryWords();
  assert.equal(words.split(' ').length, 12);
  assert.equal(a.takeRecoveryWords(), null, 'handed over once');
  const la = await a.link();
  await la.newToken();
  const note = await la.newObj('kept');
  await a.synced();

  // Mistyped, or of the right form and never made: refused, nothing opened.
  const swapped = words.split(' ');
  [swapped[0], swapped[1]] = [swapped[1], swapped[0]];
  const attempts = [
    [swapped.join(' '), ['bad_recovery_words', 'wrong_recovery_words']],
    ['abandon ability able', ['bad_recovery_words']],
    ['legal winner thank year wave sausage worth useful legal winner thank yellow', ['wrong_recovery_words']],
  ];
  for (const [recoveryWords, kinds] of attempts) {
    await assert.rejects(
      Engine.recover({ server, userId: a.userId, recoveryWords, password: 'new', storage: 'memory', onLog: quiet }),
      (e) => e instanceof HypergolixError && kinds.includes(e.kind),
    );
  }
  // The words, as someone types them: the account, under a new password.
  const b = await Engine.recover({
    server, userId: a.userId, recoveryWords: `  ${words.toUpperCase()} `, password: 'new', storage: 'memory', onLog: quiet,
  });
  assert.ok(b.identity.equals(a.identity));
  const lb = await b.link();
  assert.equal(text((await lb.get(note.address)).state), 'kept');
  await b.synced();
  await assert.rejects(
    Engine.login({ server, userId: a.userId, password: 'lost', storage: 'memory', onLog: quiet }),
    (e) => e.kind === 'wrong_password',
  );
  // New words need the password; the old ones then open nothing.
  await assert.rejects(b.recoveryWords('lost'), (e) => e.kind === 'wrong_password');
  const fresh = await b.recoveryWords('new');
  assert.notEqual(fresh, words);
  await assert.rejects(
    Engine.recover({ server, userId: a.userId, recoveryWords: words, password: 'x', storage: 'memory', onLog: quiet }),
    (e) => e.kind === 'wrong_recovery_words',
  );
  const c = await Engine.recover({ server, userId: a.userId, recoveryWords: fresh, password: 'newer', storage: 'memory', onLog: quiet });
  assert.ok(c.identity.equals(a.identity));
  for (const l of [la, lb]) l.close();
  await Promise.all([a.close(), b.close(), c.close()]);
});

test('export and import: the account in one file, refused when damaged, shared with the CLI', async () => {
  const server = await serve('export');
  const a = await Engine.create({ server, password: 'pw', storage: 'memory', onLog: quiet });
  const la = await a.link();
  await la.newToken();
  const note = await la.newObj('exported');
  await a.synced();
  await assert.rejects(a.exportAccount('nope'), (e) => e.kind === 'wrong_password');
  const file = await a.exportAccount('pw');
  assert.ok(file instanceof Uint8Array && file.length > 200);
  const flipped = file.slice();
  flipped[200] ^= 1;
  const damaged = [file.slice(0, file.length - 10), flipped, new TextEncoder().encode('#!/bin/sh\necho hi\n')];
  for (const bad of damaged) {
    await assert.rejects(
      Engine.import({ server, file: bad, password: 'pw', storage: 'memory', onLog: quiet }),
      (e) => e instanceof HypergolixError && e.kind === 'corrupt_export',
    );
  }
  await assert.rejects(
    Engine.import({ server, file, password: 'wrong', storage: 'memory', onLog: quiet }),
    (e) => e.kind === 'wrong_password',
  );
  const b = await Engine.import({ server, file, password: 'pw', storage: 'memory', onLog: quiet });
  assert.ok(b.identity.equals(a.identity) && b.userId.equals(a.userId));
  const lb = await b.link();
  const copy = await lb.get(note.address);
  assert.equal(text(copy.state), 'exported');
  // The restored engine syncs: the original's update reaches it.
  const seen = [];
  copy.appendCallback((o) => seen.push(text(o.state)));
  await note.setState('after the export');
  await until('the import sees the update', () => seen.includes('after the export'));

  // A file `hypergolix export` wrote opens here too.
  const dir = await mkdtemp(join(tmpdir(), 'hgx-export-'));
  const env = { ...process.env, HYPERGOLIX_DATA_DIR: join(dir, 'data'), HYPERGOLIX_PASSWORD: 'cli pw', HYPERGOLIX_CACHE_DIR: join(dir, 'cache') };
  const cli = (...args) => execFileSync(bin, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const made = cli('create-account', '--insecure-test-kdf');
  const identity = /identity: (\S+)/.exec(made)[1];
  cli('export', join(dir, 'cli.hgx'), '--insecure-test-kdf');
  const c = await Engine.import({ server, file: new Uint8Array(await readFile(join(dir, 'cli.hgx'))), password: 'cli pw', storage: 'memory', onLog: quiet });
  assert.equal(c.identity.toString(), identity);
  for (const l of [la, lb]) l.close();
  await Promise.all([a.close(), b.close(), c.close()]);
  await rm(dir, { recursive: true, force: true });
});

test('synced() waits for the server, names what is pending, and ends with the engine', async () => {
  const port = await freePort();
  let server = await serve('synced', port);
  const a = await Engine.create({ server, password: 'pw a', storage: 'memory', onLog: quiet });
  const la = await a.link();
  await la.newToken();
  const first = await la.newObj('one');
  const s = await a.synced();
  assert.ok(s.synced && s.loading === 0 && s.online);

  // The server is gone: a change waits, and synced() says what for.
  await killServe(server);
  await until('A sees the server gone', () => !a.online);
  await first.setState('two');
  const t0 = Date.now();
  await assert.rejects(
    a.synced({ timeoutMs: 300 }),
    (e) => e instanceof HypergolixError && e.kind === 'timeout' && /not synced after 300 ms: .+/.test(e.message),
  );
  assert.ok(Date.now() - t0 < 5000);
  // It resolves once the server is back and has the change, not before.
  const waiting = a.synced();
  let done = false;
  waiting.then(() => { done = true; }, () => {});
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(done, false);
  server = await serve('synced', port);
  const back = await waiting;
  assert.ok(back.synced && back.online);

  // Closing the engine ends a wait with `closed`.
  await killServe(server);
  await until('A sees the server gone again', () => !a.online);
  await first.setState('three');
  const orphan = a.synced();
  la.close();
  await a.close();
  await assert.rejects(orphan, (e) => e instanceof HypergolixError && e.kind === 'closed');
});

test('a server that does not answer the push-containers offer is still reached', async () => {
  // A relay to a real server that accepts no subprotocol (as 0.1.0's
  // server, or an older one): \`ws\` then fails the handshake that offered
  // one, and the engine connects again without the offer.
  const { WebSocketServer, WebSocket } = await import('ws');
  const upstream = await serve('offer');
  const offers = [];
  const relay = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => false });
  relay.on('connection', (client, req) => {
    offers.push(req.headers['sec-websocket-protocol'] ?? null);
    const up = new WebSocket(upstream);
    const queued = [];
    up.on('open', () => { for (const m of queued.splice(0)) up.send(m); });
    client.on('message', (m) => (up.readyState === WebSocket.OPEN ? up.send(m) : queued.push(m)));
    up.on('message', (m) => client.send(m));
    client.on('close', () => up.terminate());
    up.on('close', () => client.close());
    up.on('error', () => client.terminate());
    client.on('error', () => up.terminate());
  });
  await new Promise((r) => relay.on('listening', r));
  try {
    const server = `ws://127.0.0.1:${relay.address().port}/`;
    const a = await Engine.create({ server, password: 'pw a', storage: 'memory', onLog: quiet });
    const la = await a.link();
    await la.newToken();
    await la.newObj('through a server that knows no subprotocol');
    const s = await a.synced();
    assert.ok(s.online && s.synced);
    assert.equal(offers[0], 'hypergolix-remote.push-containers');
    assert.ok(offers.includes(null), `offers: ${offers}`);
    la.close();
    await a.close();
  } finally {
    relay.close();
  }
});

test('engines in Node: unshare rotates the key; only the remaining recipient reads on', async () => {
  const server = await serve('unshare');
  const open = (pw) => Engine.create({ server, password: pw, storage: 'memory', onLog: quiet });
  const [a, b, c] = await Promise.all([open('pw a'), open('pw b'), open('pw c')]);
  await until('all online', () => a.online && b.online && c.online);
  const [la, lb, lc] = await Promise.all([a.link(), b.link(), c.link()]);
  for (const l of [la, lb, lc]) await l.newToken();
  const api = new ApiId(new Uint8Array(64).fill(9));
  const toB = [];
  const toC = [];
  await lb.registerApi(api, (s) => toB.push(s));
  await lc.registerApi(api, (s) => toC.push(s));
  const note = await la.newObj('v1', { apiId: api });
  await shareWhenKnown(note, b.identity);
  await shareWhenKnown(note, c.identity);
  await until('both are told', () => toB.length > 0 && toC.length > 0);
  const onB = await lb.get(note.address);
  const onC = await lc.get(note.address);
  const seenB = [];
  onB.appendCallback((o) => seenB.push(text(o.state)));
  const ids = (gs) => gs.map((g) => g.toString()).sort();
  assert.deepEqual(ids(await note.sharedWith()), ids([b.identity, c.identity]));
  await assert.rejects(onC.unshare(b.identity), (e) => e.kind === 'immutable');

  await note.unshare(b.identity);
  assert.deepEqual(ids(await note.shared_with()), ids([c.identity]));
  await note.setState('v2 for C');
  await until('C reads v2', () => text(onC.state) === 'v2 for C');
  // B received the frames; no key it holds opens them.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(text(onB.state), 'v1');
  assert.deepEqual(seenB, []);

  await note.share(b.identity);
  await note.setState('v3 for both');
  await until('B reads v3', () => text(onB.state) === 'v3 for both');
  await until('C reads v3', () => text(onC.state) === 'v3 for both');
  // Shared again: a new master, so B reads the state current at the share
  // and what follows, nothing published while it was unshared.
  assert.equal(seenB.at(-1), 'v3 for both');
  assert.ok(seenB.every((s) => s === 'v2 for C' || s === 'v3 for both'), seenB.join());

  const fixed = await la.newObj('static', { apiId: api, dynamic: false });
  await assert.rejects(fixed.unshare(b.identity), (e) => e.kind === 'immutable');
  for (const l of [la, lb, lc]) l.close();
  await Promise.all([a.close(), b.close(), c.close()]);
});
