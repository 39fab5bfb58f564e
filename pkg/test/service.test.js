// The link against two real `hypergolix start` processes and a real
// `hypergolix serve`: share, live updates both ways of the API, delete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiId, HypergolixLink, HypergolixError } from '../src/index.js';
import { join } from 'node:path';
import { serve, service, shareWhenKnown, until, work } from './support.js';

test('two agents share an object and see each other\'s updates live', async () => {
  const server = await serve();
  const [a, b] = await Promise.all([service('a', server), service('b', server)]);

  await assert.rejects(HypergolixLink.connect('ws://127.0.0.1:9/'), (e) => e instanceof HypergolixError && e.kind === 'connect');
  const la = await HypergolixLink.connect(a);
  const lb = await HypergolixLink.connect(b);
  assert.equal(la.whoami.bytes[0], 2, 'GHIDs as they are');
  assert.ok(!la.whoami.equals(lb.whoami));
  await la.newToken();
  await lb.new_token(); // the original name

  const api = new ApiId(new Uint8Array(64).fill(9));
  const shares = [];
  await lb.registerApi(api, (s) => shares.push(s));
  const obj = await la.newObj('v0', { apiId: api });
  assert.ok(obj.mutable && obj.owned && obj.dynamic);
  // B's service publishes its identity when it reaches the server, which
  // may be a moment after it listens for apps.
  await shareWhenKnown(obj, lb.whoami);
  await until('B is told of the share', () => shares.length > 0);
  assert.ok(shares[0].address.equals(obj.address));
  assert.ok(shares[0].origin.equals(la.whoami));

  const onB = await lb.get(obj.address);
  assert.equal(new TextDecoder().decode(onB.state), 'v0');
  assert.ok(!onB.mutable);
  await assert.rejects(onB.setState('evil'), (e) => e.kind === 'immutable');
  const seen = [];
  onB.appendCallback((o) => seen.push(new TextDecoder().decode(o.state)));
  for (let i = 1; i <= 5; i++) await obj.update(`v${i}`); // the original name
  await until('B sees v5', () => seen.includes('v5'));

  const frozen = await obj.freeze();
  assert.ok(!frozen.dynamic);
  assert.equal(new TextDecoder().decode(frozen.state), 'v5');

  const secret = await la.newObj('diary', { private: true });
  await assert.rejects(secret.share(lb.whoami), (e) => e.kind === 'immutable');

  await obj.delete();
  await until('B sees the delete', () => !onB.alive);
  await assert.rejects(obj.setState('x'), (e) => e.kind === 'dead');
  la.close();
  lb.close();
});

test('in Node the link reaches a service on a Unix-domain socket', async () => {
  const server = await serve('unix-server');
  const url = await service('u', server, `unix:${join(work, 'u.sock')}`);
  assert.equal(url, `unix:${join(work, 'u.sock')}`);
  const link = await HypergolixLink.connect(url);
  await link.newToken();
  const obj = await link.newObj('over a unix socket');
  const second = await HypergolixLink.connect(url);
  const again = await second.get(obj.address);
  assert.equal(new TextDecoder().decode(again.state), 'over a unix socket');
  second.close();
  await assert.rejects(HypergolixLink.connect(`unix:${join(work, 'nothing.sock')}`), (e) => e.kind === 'connect');
  link.close();
});
