// The sync-engine comparison benchmark (run by scripts/bench-engines.sh),
// in the topology the peers measure themselves in: two clients in one Node
// process, each the npm package's engine (`storage: 'memory'`) with its own
// WebSocket to one `hypergolix serve` process on its embedded store (redb,
// durable: a publish is acknowledged once committed). Everything on
// loopback. It prints:
// 1. closed-loop updates: A sets the state of an object shared with B and
//    waits for B's callback to see it, N times: p50/p90/p99 and updates/s;
// 2. share: A creates an object and shares it with B, timed until B's
//    share handler was told and B's `get` returned its state (M times,
//    after one warm-up);
// 3. objects created one at a time, each until the server acknowledged it
//    (`newObj` then `engine.synced()`): objects/s.
// Usage: node bench-engines.js [updates, default 1000] [shares, default 100]
//        [objects, default 1000]
import { ApiId, Engine } from '../src/index.js';
import { cleanUp, serve, shareWhenKnown, text, until } from './support.js';

const N = Number(process.argv[2] ?? 1000);
const M = Number(process.argv[3] ?? 100);
const K = Number(process.argv[4] ?? 1000);
const quiet = () => {};

function percentiles(xs) {
  const s = [...xs].sort((x, y) => x - y);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s[s.length - 1], n: s.length };
}
const fmt = (p) => `p50 ${p.p50.toFixed(2)} ms, p90 ${p.p90.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms, max ${p.max.toFixed(2)} ms (n=${p.n})`;

/** Resolves when `check()` holds, re-checked whenever `poke` is called. */
function waiter() {
  let wake = null;
  return {
    poke() { const w = wake; wake = null; w?.(); },
    async until(check) {
      while (!check()) await new Promise((r) => { wake = r; });
    },
  };
}

try {
  const server = await serve('bench-engines');
  const [a, b] = await Promise.all(['a', 'b'].map((who) => Engine.create({
    server, password: `bench ${who}`, storage: 'memory', onLog: quiet,
  })));
  await until('both online', () => a.online && b.online);
  const [la, lb] = await Promise.all([a.link(), b.link()]);
  await la.newToken();
  await lb.newToken();
  const api = new ApiId(new Uint8Array(64).fill(7));
  const shares = new Map();
  const shared = waiter();
  await lb.registerApi(api, (o) => { shares.set(o.address.toString(), o); shared.poke(); });

  // 2 (first: it also makes the object of 1). One warm-up share: the first
  // to a new recipient fetches its identity.
  const warm = await la.newObj('warm-up', { apiId: api });
  await shareWhenKnown(warm, b.identity);
  await shared.until(() => shares.has(warm.address.toString()));
  const shareMs = [];
  for (let i = 0; i < M; i++) {
    const t0 = performance.now();
    const o = await la.newObj(`share ${i}`, { apiId: api });
    await o.share(b.identity);
    const key = o.address.toString();
    await shared.until(() => shares.has(key));
    const onB = await lb.get(o.address);
    if (text(onB.state) !== `share ${i}`) throw new Error(`share ${i}: B read another state`);
    shareMs.push(performance.now() - t0);
  }

  // 1. Closed-loop updates on the warm-up object.
  const onB = await lb.get(warm.address);
  let last = '';
  const seen = waiter();
  onB.appendCallback((o) => { last = text(o.state); seen.poke(); });
  const updateMs = [];
  const u0 = performance.now();
  for (let i = 0; i < N; i++) {
    const want = `v${i}`;
    const t0 = performance.now();
    await warm.setState(want);
    await seen.until(() => last === want);
    updateMs.push(performance.now() - t0);
  }
  const updateRate = N / ((performance.now() - u0) / 1000);

  // 3. Objects created one at a time until the server acknowledged each.
  await a.synced();
  const c0 = performance.now();
  for (let i = 0; i < K; i++) {
    await la.newObj(`object ${i}`, { apiId: api });
    await a.synced();
  }
  const createRate = K / ((performance.now() - c0) / 1000);

  console.log(`closed-loop update A→B: ${fmt(percentiles(updateMs))}; ${updateRate.toFixed(0)} updates/s`);
  console.log(`new object shared, readable by B: ${fmt(percentiles(shareMs))}`);
  console.log(`objects created one at a time until acknowledged: ${createRate.toFixed(0)} objects/s (n=${K})`);
  la.close();
  lb.close();
  await Promise.all([a.close(), b.close()]);
} finally {
  await cleanUp();
}
