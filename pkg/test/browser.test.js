// End to end, in a real browser: the packed package in a fresh Vite app,
// the engine in a headless Chromium page on IndexedDB, an agent on a local
// service (`hypergolix start`, driven through this package's link from
// Node), one `hypergolix serve` between them. They share an object each
// way and see each other's updates live; the page's account survives a
// reload and a kill -9 of the browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiId, Ghid, HypergolixLink } from '../src/index.js';
import { freePort, killServe, serve, service, shareWhenKnown, text, until, work } from './support.js';
import { launch, openApp, staticServer, viteApp, viteDev } from './browser/harness.js';

const API = 5;
const app = viteApp(work);

test('a browser agent and a local-service agent share live', { timeout: 300_000 }, async () => {
  const site = await staticServer(join(app, 'dist'));
  const port = await freePort();
  let server = await serve('e2e', port);
  const native = await HypergolixLink.connect(await service('native', server));
  await native.newToken();
  const nativeShares = [];
  await native.registerApi(new ApiId(new Uint8Array(64).fill(API)), (s) => nativeShares.push(s));

  const profile = join(work, 'chromium');
  let { context, page } = await launch(profile);
  try {
    await openApp(page, site.url);
    const me = await page.evaluate(([s, a]) => window.hgx.create(s, 'browser password', a), [server, API]);
    const browserId = Ghid.fromString(me.identity);

    // Native → browser: share, then live updates.
    const fromNative = await native.newObj('n0', { apiId: new ApiId(new Uint8Array(64).fill(API)) });
    await shareWhenKnown(fromNative, browserId);
    await page.waitForFunction((addr) => window.hgx.shares().some((s) => s.address === addr), fromNative.address.toString());
    const addrN = fromNative.address.toString();
    await page.evaluate((addr) => window.hgx.get(addr), addrN);
    assert.equal(await page.evaluate((addr) => window.hgx.state(addr), addrN), 'n0');
    for (let i = 1; i <= 5; i++) await fromNative.setState(`n${i}`);
    await page.waitForFunction((addr) => window.hgx.seen(addr).some((s) => s.state === 'n5'), addrN);

    // Browser → native: share, then live updates.
    const addrB = await page.evaluate((a) => window.hgx.newObj('b0', a), API);
    await page.evaluate(([a, to]) => window.hgx.share(a, to), [addrB, native.whoami.toString()]);
    await until('the native app is told of the share', () => nativeShares.some((s) => s.address.toString() === addrB));
    const onNative = await native.get(Ghid.fromString(addrB));
    assert.equal(text(onNative.state), 'b0');
    const seen = [];
    onNative.appendCallback((o) => seen.push(text(o.state)));
    for (let i = 1; i <= 5; i++) await page.evaluate(([a, s]) => window.hgx.setState(a, s), [addrB, `b${i}`]);
    await until('the native app sees b5', () => seen.includes('b5'));

    // The package in a module Web Worker of the same app: an engine of its
    // own, whose share reaches the native app.
    const w = await page.evaluate((s) => window.hgx.worker({ op: 'create', server: s, password: 'worker password' }), server);
    assert.ok(w.identity && w.identity !== me.identity);
    const fromWorker = await page.evaluate(
      ([to, api]) => window.hgx.worker({ op: 'share', state: 'from a worker', to, api }),
      [native.whoami.toString(), API],
    );
    await until('the native app is told of the worker\'s share', () => nativeShares.some((s) => s.address.toString() === fromWorker.address));
    assert.equal(text((await native.get(Ghid.fromString(fromWorker.address))).state), 'from a worker');

    // A reload: the account and its objects come back from IndexedDB.
    await page.evaluate(() => window.hgx.synced());
    await openApp(page, site.url);
    await page.evaluate(([s, u, a]) => window.hgx.login(s, u, 'browser password', a), [server, me.userId, API]);
    await page.evaluate((addr) => window.hgx.get(addr), addrB);
    assert.equal(await page.evaluate((addr) => window.hgx.state(addr), addrB), 'b5');

    // kill -9 of the browser right after an acknowledged update, with the
    // server gone so the update exists only in IndexedDB.
    await killServe(server);
    await page.evaluate(([a, s]) => window.hgx.setState(a, s), [addrB, 'acknowledged, then killed']);
    execFileSync('pkill', ['-KILL', '-f', profile]);
    await context.close().catch(() => {});
    ({ context, page } = await launch(profile));
    await openApp(page, site.url);
    await page.evaluate(([s, u, a]) => window.hgx.login(s, u, 'browser password', a), [server, me.userId, API]);
    await page.evaluate((addr) => window.hgx.get(addr), addrB);
    assert.equal(await page.evaluate((addr) => window.hgx.state(addr), addrB), 'acknowledged, then killed');
    // The server comes back on its store; the page's engine reconnects and
    // sends what it had acknowledged.
    server = await serve('e2e', port);
    await until('the native app sees the update sent after the restart', () => seen.includes('acknowledged, then killed'), 60000);
  } finally {
    await context.close().catch(() => {});
    native.close();
    await site.close();
  }
});

test('a browser owner unshares: the remaining agent reads on, the unshared one reads nothing new', { timeout: 180_000 }, async () => {
  const site = await staticServer(join(app, 'dist'));
  const server = await serve('revoke');
  const apiId = new ApiId(new Uint8Array(64).fill(API));
  const agent = async (name) => {
    const link = await HypergolixLink.connect(await service(name, server));
    await link.newToken();
    const shares = [];
    await link.registerApi(apiId, (s) => shares.push(s));
    return { link, shares };
  };
  const b = await agent('revoke-b');
  const c = await agent('revoke-c');
  const { context, page } = await launch(join(work, 'chromium-revoke'));
  try {
    await openApp(page, site.url);
    await page.evaluate(([s, a]) => window.hgx.create(s, 'owner password', a), [server, API]);
    const addr = await page.evaluate((a) => window.hgx.newObj('r0', a), API);
    for (const x of [b, c]) await page.evaluate(([a, to]) => window.hgx.share(a, to), [addr, x.link.whoami.toString()]);
    await until('both agents are told', () => [b, c].every((x) => x.shares.some((s) => s.address.toString() === addr)));
    const onB = await b.link.get(Ghid.fromString(addr));
    const onC = await c.link.get(Ghid.fromString(addr));
    const seenB = [];
    onB.appendCallback((o) => seenB.push(text(o.state)));
    const ids = (...xs) => xs.map((x) => x.link.whoami.toString()).sort();
    assert.deepEqual(await page.evaluate((a) => window.hgx.sharedWith(a), addr), ids(b, c));

    await page.evaluate(([a, to]) => window.hgx.unshare(a, to), [addr, b.link.whoami.toString()]);
    assert.deepEqual(await page.evaluate((a) => window.hgx.sharedWith(a), addr), ids(c));
    await page.evaluate(([a, s]) => window.hgx.setState(a, s), [addr, 'r1 for c']);
    await until('C reads r1', () => text(onC.state) === 'r1 for c');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(text(onB.state), 'r0');
    assert.deepEqual(seenB, []);

    await page.evaluate(([a, to]) => window.hgx.share(a, to), [addr, b.link.whoami.toString()]);
    await page.evaluate(([a, s]) => window.hgx.setState(a, s), [addr, 'r2 for both']);
    await until('B reads r2', () => text(onB.state) === 'r2 for both', 60000);
    await until('C reads r2', () => text(onC.state) === 'r2 for both');
    assert.ok(seenB.every((s) => s === 'r1 for c' || s === 'r2 for both'), seenB.join());
  } finally {
    await context.close().catch(() => {});
    b.link.close();
    c.link.close();
    await site.close();
  }
});

/**
 * A test CA and a server certificate for `localhost` it signed, made with
 * openssl in `dir`; with the SHA-256 of the server key's SPKI (base64), the
 * form Chromium's `--ignore-certificate-errors-spki-list` takes.
 */
function testCertificates(dir) {
  mkdirSync(dir, { recursive: true });
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Hypergolix test CA');
  ossl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
  const cert = new X509Certificate(readFileSync(join(dir, 'server.crt')));
  const spki = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), spki };
}

test('the page engine reaches serve --tls-cert over wss:// (Chromium trusts the test certificate)', { timeout: 120_000 }, async () => {
  const tls = testCertificates(join(work, 'tls'));
  const site = await staticServer(join(app, 'dist'));
  const port = await freePort();
  await serve('tls', port, ['--tls-cert', tls.cert, '--tls-key', tls.key]);
  const wss = `wss://localhost:${port}/`;
  const native = await HypergolixLink.connect(await service('native-tls', wss, '127.0.0.1:0', ['--ca-file', tls.ca]));
  await native.newToken();
  const shares = [];
  await native.registerApi(new ApiId(new Uint8Array(64).fill(API)), (s) => shares.push(s));
  const { context, page } = await launch(join(work, 'chromium-tls'), [`--ignore-certificate-errors-spki-list=${tls.spki}`]);
  try {
    await openApp(page, site.url);
    await page.evaluate(([s, a]) => window.hgx.create(s, 'tls password', a), [wss, API]);
    const addr = await page.evaluate((a) => window.hgx.newObj('over wss', a), API);
    await page.evaluate(([a, to]) => window.hgx.share(a, to), [addr, native.whoami.toString()]);
    await until('the native app is told of the share over wss', () => shares.some((s) => s.address.toString() === addr), 60000);
    assert.equal(text((await native.get(Ghid.fromString(addr))).state), 'over wss');
  } finally {
    await context.close().catch(() => {});
    native.close();
    await site.close();
  }
});

test('the package works under Vite\'s dev server too (page and worker)', { timeout: 120_000 }, async () => {
  const server = await serve('dev');
  const dev = await viteDev(app, await freePort());
  const { context, page } = await launch(join(work, 'chromium-dev'));
  try {
    await openApp(page, dev.url);
    const me = await page.evaluate(([s, a]) => window.hgx.create(s, 'dev password', a), [server, API]);
    assert.ok(Ghid.fromString(me.identity));
    const w = await page.evaluate((s) => window.hgx.worker({ op: 'create', server: s, password: 'worker password' }), server);
    assert.ok(Ghid.fromString(w.identity));
  } finally {
    await context.close().catch(() => {});
    dev.close();
  }
});
