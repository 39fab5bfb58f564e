// The browser benchmark (run by scripts/bench-browser.sh):
// 1. update latency between an agent in a Chromium page (the packed
//    package in a Vite app, engine on IndexedDB) and an agent on a local
//    service (`hypergolix start` + this package's link in Node), through one
//    `hypergolix serve`, each way: p50/p99 from `setState` to the other
//    side's callback (both clocks are performance.timeOrigin + now(): the
//    same system clock, sub-millisecond);
//    then the same paced, one update every BENCH_PACE_MS (default 20) with
//    nothing polling meanwhile;
// 2. objects created per second by the page's engine (through its link);
// 3. the portable Golix benchmark in the page next to the native run;
// 4. CPU per update of each process on the path (Linux /proc).
// Usage: node bench.js [updates] (default 300); BENCH_WEB_DIR and
// NATIVE_TSV are set by the script.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiId, Ghid, HypergolixLink } from '../../src/index.js';
import { cleanUp, serve, service, shareWhenKnown, text, until, work } from '../support.js';
import { buildViteApp, launch, openApp, percentiles, staticServer } from './harness.js';

const N = Number(process.argv[2] ?? 300);
const API = 6;
const PACE = Number(process.env.BENCH_PACE_MS ?? 20);

// Where an update's time goes, by process: CPU seconds (user + system, from
// /proc; Linux only) of the server, the service, this Node process (the
// link) and each kind of Chromium process, taken before and after a loop.
const TICK_MS = 10; // USER_HZ is 100 on Linux
function cpuByProcess() {
  const out = new Map();
  let pids;
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let cmd;
    let stat;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    let kind = null;
    if (Number(pid) === process.pid) kind = 'node (the link, the bench)';
    else if (/hypergolix$/.test(cmd[0]) && cmd.includes('serve')) kind = 'hypergolix serve';
    else if (/hypergolix$/.test(cmd[0]) && cmd.includes('start')) kind = 'hypergolix start (service)';
    else if (/chrom/.test(cmd[0])) {
      // Chromium may rewrite its command line as one string.
      const line = cmd.join(' ');
      const type = /--type=(\S+)/.exec(line)?.[1];
      const sub = /--utility-sub-type=(\S+)/.exec(line)?.[1];
      kind = `chromium ${sub ?? type ?? 'browser'}`;
    }
    if (!kind) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(kind, (out.get(kind) ?? 0) + (Number(f[11]) + Number(f[12])) * TICK_MS);
  }
  return out;
}
function cpuSplit(before, after, n) {
  if (!before || !after) return '  (no /proc here)';
  return [...after].map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / n])
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, ms]) => `  ${k}: ${ms.toFixed(2)} ms`)
    .join('\n');
}
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
  const cpu0 = cpuByProcess();
  for (let i = 0; i < N; i++) {
    const state = `n${i}`;
    const t0 = now();
    await n.setState(state);
    const handle = await page.waitForFunction(([a, s]) => window.hgx.seen(a).find((x) => x.state === s)?.t, [addrN, state], { polling: 1 });
    toBrowser.push((await handle.jsonValue()) - t0);
  }
  const cpu1 = cpuByProcess();

  // Browser → native.
  const addrB = await page.evaluate((a) => window.hgx.newObj('start', a), API);
  await page.evaluate(([a, to]) => window.hgx.share(a, to), [addrB, native.whoami.toString()]);
  await until('the share reaches the native app', () => shares.some((s) => s.address.toString() === addrB));
  const onNative = await native.get(Ghid.fromString(addrB));
  const arrived = new Map();
  onNative.appendCallback((o) => arrived.set(text(o.state), now()));
  const toNative = [];
  const cpu2 = cpuByProcess();
  for (let i = 0; i < N; i++) {
    const state = `b${i}`;
    const t0 = await page.evaluate(([a, s]) => window.hgx.setState(a, s), [addrB, state]);
    await until(state, () => arrived.has(state), 10000);
    toNative.push(arrived.get(state) - t0);
  }
  const cpu3 = cpuByProcess();

  // Paced: one update every PACE ms, each way, with nothing polling during
  // the run (the closed loops above poll the page or the link between
  // updates, and on 2 cores that polling competes with the path measured).
  const sentN = new Map();
  const cpu4 = cpuByProcess();
  for (let i = 0; i < N; i++) {
    const state = `pn${i}`;
    sentN.set(state, now());
    await n.setState(state);
    await new Promise((r) => setTimeout(r, PACE));
  }
  await page.waitForFunction(([a, s]) => window.hgx.seen(a).some((x) => x.state === s), [addrN, `pn${N - 1}`]);
  const cpu5 = cpuByProcess();
  const pacedToBrowser = (await page.evaluate((a) => window.hgx.seen(a), addrN))
    .filter((x) => sentN.has(x.state))
    .map((x) => x.t - sentN.get(x.state));
  const cpu6 = cpuByProcess();
  const sentB = await page.evaluate(([a, n, ms]) => window.hgx.setStates(a, 'pb', n, ms), [addrB, N, PACE]);
  await until('the last paced update', () => arrived.has(`pb${N - 1}`), 10000);
  const cpu7 = cpuByProcess();
  const pacedToNative = sentB.filter((x) => arrived.has(x.state)).map((x) => arrived.get(x.state) - x.t);

  const creates = await page.evaluate(() => window.hgx.createRate(200));

  console.log(`update latency, native app → browser app: ${fmt(percentiles(toBrowser))}`);
  console.log(`update latency, browser app → native app: ${fmt(percentiles(toNative))}`);
  console.log(`paced (one every ${PACE} ms), native app → browser app: ${fmt(percentiles(pacedToBrowser))}`);
  console.log(`paced (one every ${PACE} ms), browser app → native app: ${fmt(percentiles(pacedToNative))}`);
  console.log(`objects created by the page's engine: ${creates.toFixed(0)}/s (200 in a row, each acknowledged)`);
  // The native → browser loop includes the bench's own polling of the page
  // (waitForFunction), which shows in Node and the renderer.
  console.log(`CPU per update, native app → browser app, by process:\n${cpuSplit(cpu0, cpu1, N)}`);
  console.log(`CPU per update, browser app → native app, by process:\n${cpuSplit(cpu2, cpu3, N)}`);
  console.log(`CPU per update, paced, native app → browser app, by process:\n${cpuSplit(cpu4, cpu5, N)}`);
  console.log(`CPU per update, paced, browser app → native app, by process:\n${cpuSplit(cpu6, cpu7, N)}`);

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
