// The link against two real `hypergolix start` processes and a real
// `hypergolix serve`: share, live updates both ways of the API, delete.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { ApiId, HypergolixLink, HypergolixError } from '../src/index.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = process.env.HYPERGOLIX_BIN ?? join(root, 'target/release/hypergolix');
const component = join(root, 'target/wasm32-wasip2/release/hypergolix_engine_component.wasm');
const work = mkdtempSync(join(tmpdir(), 'hgx-pkg-'));
const procs = [];
after(() => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

function run(args, env = {}) {
  const p = spawn(bin, args, { env: { ...process.env, RUST_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: p.stdout });
    lines.on('line', (l) => {
      if (l.startsWith('listening on ')) resolve(l.slice('listening on '.length).trim());
    });
    p.on('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

const until = async (what, f, ms = 20000) => {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('two agents share an object and see each other\'s updates live', async () => {
  const server = await run(['serve', '--listen', '127.0.0.1:0', '--store', join(work, 'server.redb')]);
  const svc = (who) => run(
    ['start', '--ipc', '127.0.0.1:0', '--insecure-test-kdf', '--data-dir', join(work, who),
      '--remote', `ws://${server}/`, '--component', component],
    { HYPERGOLIX_PASSWORD: `pw ${who}`, HYPERGOLIX_CACHE_DIR: join(work, 'cache') },
  );
  const [a, b] = await Promise.all([svc('a'), svc('b')]);

  await assert.rejects(HypergolixLink.connect('ws://127.0.0.1:9/'), (e) => e instanceof HypergolixError && e.kind === 'connect');
  const la = await HypergolixLink.connect(`ws://${a}/`);
  const lb = await HypergolixLink.connect(`ws://${b}/`);
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
  for (let i = 0; ; i++) {
    try {
      await obj.share(lb.whoami);
      break;
    } catch (e) {
      if (i > 200 || !/not known/.test(e.message)) throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
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
