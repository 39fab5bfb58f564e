// The link against two real `hypergolix start` processes and a real
// `hypergolix serve`: share, live updates both ways of the API, delete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiId, AppObj, Ghid, HypergolixLink, HypergolixError } from '../src/index.js';
import { join } from 'node:path';
import { serve, service, shareWhenKnown, text, until, work } from './support.js';

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
  // A recipient no server has heard of has a kind (and NK code) of its own.
  const nobody = new Ghid(Uint8Array.of(1, ...new Uint8Array(64).fill(0x5a)));
  await assert.rejects(obj.share(nobody), (e) => e.kind === 'unknown_recipient' && e.code === 0x0100);
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

test('the original names keep their semantics: *_obj, from_async, _legroom, both callback kinds', async () => {
  const server = await serve('seed-server');
  const [a, b] = await Promise.all([service('seed-a', server), service('seed-b', server)]);
  const la = await HypergolixLink.connect(a);
  const lb = await HypergolixLink.connect(b);
  assert.equal(la.app_token, null);
  const token = await la.new_token();
  assert.deepEqual(la.app_token, token);
  await lb.new_token();
  const api = new ApiId(new Uint8Array(64).fill(11));
  const shared = [];
  await lb.register_api(api, async (s) => shared.push(await lb.get_obj(s.address)));

  // from_async with the seed's option names; legroom as this link made it.
  const early = [];
  const obj = await AppObj.from_async(la, 'v0', {
    api_id: api, _legroom: 3, threadsafe_callbacks: [(o) => early.push(o)],
  });
  assert.equal(obj.threadsafe_callbacks.length, 1);
  assert.equal(obj._legroom, 3);
  assert.equal((await la.get_obj(obj.address)).legroom, 3, 'the same object, legroom kept');
  await assert.rejects(la.new_obj('x', { legroom: 256 }), RangeError);
  const other = await HypergolixLink.connect(a);
  await other.new_token();
  assert.equal((await other.get_obj(obj.address)).legroom, 0, 'the service does not say, as 0.1.0');
  await assert.rejects(other.update_obj(obj, 'x'), (e) => e.kind === 'foreign');
  other.close();

  // A static object's state is set once: no assignment, no update.
  const stat = await la.new_obj('fixed', { api_id: api, dynamic: false, _legroom: 5 });
  assert.equal(stat.legroom, 0);
  assert.throws(() => { stat.state = new Uint8Array([1]); }, TypeError);
  await assert.rejects(la.update_obj(stat, 'again'), (e) => e.kind === 'immutable');
  assert.equal(text(stat.state), 'fixed');

  await shareWhenKnown(obj, lb.whoami);
  await until('B gets the share', () => shared.length > 0);
  const onB = shared[0];
  assert.equal(text(onB.state), 'v0');

  // Both kinds, each in registration order; async ones awaited one after another.
  const seen = [];
  onB.append_threadsafe_callback((o) => seen.push(`ts2 ${text(o.state)}`));
  onB.prepend_threadsafe_callback(() => seen.push('ts1'));
  const asyncSecond = async (o) => seen.push(`as2 ${text((await o.sync(), o).state)}`);
  onB.append_async_callback(asyncSecond);
  onB.prepend_async_callback(async () => {
    await new Promise((r) => setTimeout(r, 30));
    seen.push('as1');
  });
  const gone = onB.appendAsyncCallback(() => seen.push('removed'));
  assert.equal(onB.async_callbacks.length, 3);
  onB.remove_async_callback(gone);
  assert.throws(() => onB.remove_async_callback(gone), (e) => e.kind === 'not_registered');
  assert.equal(onB.removeAsyncCallback(gone), false);
  const spare = () => {};
  onB.appendCallback(spare);
  onB.remove_threadsafe_callback(spare);
  assert.throws(() => onB.remove_threadsafe_callback(spare), (e) => e.kind === 'not_registered');
  await la.update_obj(obj, 'v1');
  await until('B runs every callback', () => seen.some((s) => s.startsWith('as2')) && seen.some((s) => s.startsWith('ts2')));
  const at = (p) => seen.findIndex((s) => s.startsWith(p));
  assert.ok(at('ts1') < at('ts2') && at('as1') < at('as2'), seen.join(', '));
  assert.ok(seen.includes('ts2 v1') && seen.includes('as2 v1') && !seen.includes('removed'), seen.join(', '));

  // clear_*: the next update runs only what was added afterwards.
  onB.clear_threadsafe_callbacks();
  onB.clear_async_callbacks();
  assert.equal(onB.threadsafe_callbacks.length + onB.async_callbacks.length, 0);
  seen.length = 0;
  onB.append_threadsafe_callback(() => seen.push('ts sentinel'));
  onB.append_async_callback(async () => seen.push('as sentinel'));
  await la.update_obj(obj, 'v2');
  await until('the sentinels run', () => seen.length === 2);
  assert.deepEqual([...seen].sort(), ['as sentinel', 'ts sentinel']);

  // freeze_obj, hold_obj, share_obj, discard_obj, delete_obj; then dead.
  const frozen = await la.freeze_obj(obj);
  assert.ok(!frozen.is_dynamic);
  assert.equal(text(frozen.state), 'v2');
  await lb.hold_obj(onB);
  await la.delete_obj(obj);
  await assert.rejects(la.share_obj(obj, lb.whoami), (e) => e.kind === 'dead');
  await until('B sees the delete', () => !onB.is_alive && seen.length === 4);
  const kept = await la.new_obj('k', { api_id: api });
  await la.share_obj(kept, lb.whoami);
  await until('B gets the second share', () => shared.length > 1);
  await lb.discard_obj(shared[1]);
  await assert.rejects(lb.hold_obj(shared[1]), (e) => e.kind === 'dead');
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

test('the account over the link: password change and recovery words need the current password', async () => {
  const server = await serve('account');
  const addr = await service('account', server);
  const link = await HypergolixLink.connect(addr);
  await assert.rejects(link.changePassword('not it', 'x'), (e) => e instanceof HypergolixError && /wrong password/.test(e.message));
  await link.changePassword('pw account', 'new pw');
  await assert.rejects(link.recoveryWords('pw account'), (e) => /wrong password/.test(e.message));
  const words = await link.recovery_words('new pw');
  assert.equal(words.split(' ').length, 12);
  await assert.rejects(link.changePassword('new pw', ''), (e) => e.kind === 'input');
  link.close();
});

