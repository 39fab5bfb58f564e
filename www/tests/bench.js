// The web app's numbers, in Chromium against a warm `hypergolix serve --www`:
// what a first visit transfers, how soon the page is usable, how soon the
// object list shows, and how long a live edit takes from one browser to
// another. `node tests/bench.js [EDITS]` (scripts/bench-www.sh).
import { browser, createAccount, freePort, newObject, openObject, profile, serve, synced, tab } from './harness.js';

const EDITS = Number(process.argv[2] ?? 30);
const OBJECTS = 20;

function pct(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  return { n: s.length, p50: at(50), p90: at(90), max: s[s.length - 1] };
}
const ms = (x) => `${x.toFixed(1)} ms`;

const step = (what) => console.error(`bench: ${what}`);
const server = await serve('bench', await freePort());
step('server up');
const b = await browser();

// 1. A first visit: bytes on the wire (CDP: encoded lengths, gzip as served),
//    and the welcome screen's form ready to type in.
const fresh = await profile(b, server.url);
const page = await fresh.newPage();
const cdp = await fresh.newCDPSession(page);
await cdp.send('Network.enable');
let wire = 0;
cdp.on('Network.loadingFinished', (e) => { wire += e.encodedDataLength; });
await page.goto(server.url);
await page.getByRole('form', { name: 'Create an account' }).waitFor();
const interactive = await page.evaluate(() => performance.now());
// The engine worker and its wasm load in the SharedWorker: counted from the
// server's side (its files' gzipped sizes) since a page's CDP session does
// not see a shared worker's requests.
await page.waitForTimeout(500);

step(`first visit: ${interactive} ms`);
// 2. The object list of an unlocked account: a new tab joins the engine.
const me = await createAccount(page, 'bench password 123');
await synced(page);
for (let i = 0; i < OBJECTS; i++) await newObject(page, `object ${i}`);
await synced(page);
const times = [];
for (let i = 0; i < 5; i++) {
  const t = await fresh.newPage();
  await t.goto(server.url);
  await t.waitForFunction((n) => document.querySelectorAll('tbody tr').length >= n, OBJECTS);
  times.push(await t.evaluate(() => performance.now()));
  await t.close();
}

// ... and after unlocking (Argon2id in the worker, then the records).
const unlockTimes = [];
for (let i = 0; i < 3; i++) {
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByRole('button', { name: 'Lock (log out)' }).click();
  const form = page.getByRole('form', { name: 'Unlock' });
  await form.getByLabel('Password').fill('bench password 123');
  const t0 = await page.evaluate(() => performance.now());
  await form.getByRole('button', { name: 'Unlock' }).click();
  await page.waitForFunction((n) => document.querySelectorAll('tbody tr').length >= n, OBJECTS);
  unlockTimes.push((await page.evaluate(() => performance.now())) - t0);
}
step('list timed');
// 3. A live edit from Alice's browser to Bob's: Save clicked → Bob's page
//    shows it (a MutationObserver stamps it; both pages share one clock).
const bobCtx = await profile(b, server.url);
const bob = await tab(bobCtx, server.url);
const bo = await createAccount(bob, 'bench password bob');
await synced(bob);
const note = await newObject(page, 'edit 0');
const form = page.getByRole('form', { name: 'Share' });
await form.getByLabel('Share with (their identity)').fill(bo.identity);
await form.getByRole('button', { name: 'Share' }).click();
await openObject(bob, note);
await bob.evaluate(() => {
  window.seen = new Map();
  new MutationObserver(() => {
    const t = document.querySelector('pre[aria-label="content as text"]')?.textContent;
    if (t && !window.seen.has(t)) window.seen.set(t, performance.timeOrigin + performance.now());
  }).observe(document.querySelector('.detail'), { subtree: true, childList: true, characterData: true });
});
step('bob ready');
const lat = [];
for (let i = 1; i <= EDITS; i++) {
  const text = `edit ${i}`;
  const t0 = await page.evaluate((s) => {
    const f = document.querySelector('form.editor');
    f.querySelector('textarea').value = s;
    const t = performance.timeOrigin + performance.now();
    f.requestSubmit();
    return t;
  }, text);
  await bob.waitForFunction((s) => window.seen.has(s), text, { timeout: 20_000 });
  lat.push((await bob.evaluate((s) => window.seen.get(s), text)) - t0);
}

const { execFileSync } = await import('node:child_process');
const budget = execFileSync('node', [new URL('../scripts/budget.js', import.meta.url).pathname], { encoding: 'utf8' });
console.log(budget.trim());
console.log(`first visit, page's own requests on the wire: ${(wire / 1000).toFixed(1)} kB`);
console.log(`first visit, welcome form ready: ${ms(interactive)} after navigation start`);
const l = pct(times);
console.log(`new tab of an unlocked account, list of ${OBJECTS} objects shown: p50 ${ms(l.p50)}, max ${ms(l.max)} (n=${l.n})`);
const u = pct(unlockTimes);
console.log(`unlock (Argon2id in the worker) → list of ${OBJECTS} objects shown: p50 ${ms(u.p50)}, max ${ms(u.max)} (n=${u.n})`);
const e = pct(lat);
console.log(`live edit browser → browser (Save → shown): p50 ${ms(e.p50)}, p90 ${ms(e.p90)}, max ${ms(e.max)} (n=${e.n})`);
console.log(`user id ${me.userId.slice(0, 8)}…, server ${server.url}`);
await b.close();
await server.kill();
process.exit(0);
