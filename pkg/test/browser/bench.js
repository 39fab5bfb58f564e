// The browser benchmark (run by scripts/bench-browser.sh):
// 1. update latency between an agent in a Chromium page (the packed
//    package in a Vite app, engine on IndexedDB) and an agent on a local
//    service (`hypergolix start` + this package's link in Node), through one
//    `hypergolix serve`, each way: p50/p99 from `setState` to the other
//    side's callback (both clocks are performance.timeOrigin + now(): the
//    same system clock, sub-millisecond);
// 2. objects created per second by the page's engine (through its link);
// 3. the portable Golix benchmark in the page next to the native run.
// Usage: node bench.js [updates] (default 300); BENCH_WEB_DIR and
// NATIVE_TSV are set by the script.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiId, Ghid, HypergolixLink } from '../../src/index.js';
import { cleanUp, serve, service, shareWhenKnown, text, until, work } from '../support.js';
import { buildViteApp, launch, openApp, percentiles, staticServer } from './harness.js';

const N = Number(process.argv[2] ?? 300);
const API = 6;
const now = () => performance.timeOrigin + performance.now();
const fmt = (p) => `p50 ${p.p50.toFixed(2)} ms, p90 ${p.p90.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms, max ${p.max.toFixed(2)} ms (n=${p.n})`;

const dist = buildViteApp(work);
const site = await staticServer(dist);
const server = await serve('bench');
const native = await HypergolixLink.connect(await service('native', server));
await native.newToken();
const api = new ApiId(new Uint8Array(64).fill(API));
const shares = [];
await native.registerApi(api, (s) => shares.push(s));
const { context, page } = await launch(join(work, 'chromium'));
try {
  await openApp(page, site.url);
  const me = await page.evaluate(([s, a]) => window.hgx.create(s, 'bench password', a), [server, API]);

  // Native → browser.
  const n = await native.newObj('start', { apiId: api });
  await shareWhenKnown(n, Ghid.fromString(me.identity));
  const addrN = n.address.toString();
  await page.waitForFunction((a) => window.hgx.shares().some((s) => s.address === a), addrN);
  await page.evaluate((a) => window.hgx.get(a), addrN);
  const toBrowser = [];
  for (let i = 0; i < N; i++) {
    const state = `n${i}`;
    const t0 = now();
    await n.setState(state);
    const handle = await page.waitForFunction(([a, s]) => window.hgx.seen(a).find((x) => x.state === s)?.t, [addrN, state], { polling: 1 });
    toBrowser.push((await handle.jsonValue()) - t0);
  }

  // Browser → native.
  const addrB = await page.evaluate((a) => window.hgx.newObj('start', a), API);
  await page.evaluate(([a, to]) => window.hgx.share(a, to), [addrB, native.whoami.toString()]);
  await until('the share reaches the native app', () => shares.some((s) => s.address.toString() === addrB));
  const onNative = await native.get(Ghid.fromString(addrB));
  const arrived = new Map();
  onNative.appendCallback((o) => arrived.set(text(o.state), now()));
  const toNative = [];
  for (let i = 0; i < N; i++) {
    const state = `b${i}`;
    const t0 = await page.evaluate(([a, s]) => window.hgx.setState(a, s), [addrB, state]);
    await until(state, () => arrived.has(state), 10000);
    toNative.push(arrived.get(state) - t0);
  }

  const creates = await page.evaluate(() => window.hgx.createRate(200));

  console.log(`update latency, native app → browser app: ${fmt(percentiles(toBrowser))}`);
  console.log(`update latency, browser app → native app: ${fmt(percentiles(toNative))}`);
  console.log(`objects created by the page's engine: ${creates.toFixed(0)}/s (200 in a row, each acknowledged)`);

  // The portable Golix benchmark in the page.
  if (process.env.BENCH_WEB_DIR) {
    const benchSite = await staticServer(process.env.BENCH_WEB_DIR);
    await page.goto(`${benchSite.url}index.html`);
    const tsv = await page.evaluate(async () => {
      const m = await import('./hypergolix_web.js');
      await m.default();
      return m.benchPortable(400);
    });
    await benchSite.close();
    const nat = new Map(readFileSync(process.env.NATIVE_TSV, 'utf8').trim().split('\n').map((l) => {
      const [k, ns] = l.split('\t');
      return [k, Number(ns)];
    }));
    console.log(`\n${'operation'.padEnd(28)} ${'native/s'.padStart(10)} ${'chromium/s'.padStart(11)} ${'ratio'.padStart(6)}`);
    for (const line of tsv.trim().split('\n')) {
      const [k, ns] = line.split('\t');
      const b = Number(ns);
      const a = nat.get(k);
      console.log(`${k.padEnd(28)} ${(1e9 / a).toFixed(0).padStart(10)} ${(1e9 / b).toFixed(0).padStart(11)} ${(b / a).toFixed(2).padStart(6)}`);
    }
  }
} finally {
  await page.evaluate(() => window.hgx?.close?.()).catch(() => {});
  await context.close();
  native.close();
  await site.close();
  await cleanUp();
}
process.exit(0);
