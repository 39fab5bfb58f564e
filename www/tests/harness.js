// What the web app's tests share: the built app (`www/dist`) served by a
// real `hypergolix serve --www`, Debian's Chromium driven by playwright-core,
// screenshots checked against the DOM, and an accessibility pass (axe-core).
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const www = fileURLToPath(new URL('..', import.meta.url));
export const dist = join(www, 'dist');
export const bin = process.env.HYPERGOLIX_BIN ?? join(root, 'target/release/hypergolix');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots of the main screens (kept after the run: CI artifacts). */
export const shots = process.env.HGX_SCREENSHOTS ?? join(root, 'target/www-screenshots');
export const work = mkdtempSync(join(tmpdir(), 'hgx-www-'));

const cleanUps = [];
export function onCleanUp(f) { cleanUps.push(f); }
after(async () => {
  await Promise.all(cleanUps.splice(0).reverse().map(async (f) => { try { await f(); } catch { /* best effort */ } }));
  rmSync(work, { recursive: true, force: true });
});

if (!existsSync(join(dist, 'index.html'))) {
  throw new Error(`${dist} has no index.html: build the app first (cd www && npm run build)`);
}
if (!existsSync(bin)) throw new Error(`${bin} is missing: cargo build --release -p hypergolix-wasi-host`);

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * `hypergolix serve --www dist` on `port` with the store `name`; resolves to
 * `{ url, ws, kill }` (`kill()`: SIGKILL, resolves once it is gone).
 */
export async function serve(name, port) {
  const p = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--store', join(work, `${name}.redb`), '--www', dist],
    { env: { ...process.env, RUST_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const kill = () => new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
  onCleanUp(kill);
  const addr = await new Promise((resolve, reject) => {
    createInterface({ input: p.stdout }).on('line', (l) => {
      if (l.startsWith('listening on ')) resolve(l.slice('listening on '.length).trim());
    });
    p.on('exit', (code, signal) => reject(new Error(`serve exited with ${code ?? signal}`)));
  });
  return { url: `http://${addr}/`, ws: `ws://${addr}/`, kill };
}

/**
 * A local service (`hypergolix start`) of a new agent syncing with `ws`,
 * allowing web pages of `origin`; resolves to its IPC URL.
 */
export async function service(who, ws, origin) {
  const p = spawn(bin, ['start', '--ipc', '127.0.0.1:0', '--insecure-test-kdf', '--data-dir', join(work, who),
    '--remote', ws, '--allow-origin', origin],
  { env: { ...process.env, RUST_LOG: 'warn', HYPERGOLIX_PASSWORD: `pw ${who}`, HYPERGOLIX_CACHE_DIR: join(work, 'cache') },
    stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanUp(() => p.kill('SIGKILL'));
  const addr = await new Promise((resolve, reject) => {
    createInterface({ input: p.stdout }).on('line', (l) => {
      if (l.startsWith('listening on ')) resolve(l.slice('listening on '.length).trim());
    });
    p.on('exit', (code, signal) => reject(new Error(`start exited with ${code ?? signal}`)));
  });
  return `ws://${addr}/`;
}

/** Debian's Chromium, headless. */
export async function browser() {
  const b = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  onCleanUp(() => b.close());
  return b;
}

/** A fresh profile (a browser context: its own storage) with clipboard access. */
export async function profile(b, origin) {
  const context = await b.newContext({ viewport: { width: 1200, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  return context;
}

/** A new tab of `context` on the app; page errors fail loudly in the log. */
export async function tab(context, url) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  page.on('console', (m) => { if (m.type() === 'error') console.error('page console:', m.text()); });
  await page.goto(url);
  await page.waitForSelector('#app :is(h1, [role=alert])');
  return page;
}

/** Fills and submits the create-account form; resolves to the user id shown. */
export async function createAccount(page, password) {
  return (await createAccountWithWords(page, password)).ids;
}

/** `createAccount`, and the recovery words the app shows once on the way. */
export async function createAccountWithWords(page, password) {
  const form = page.getByRole('form', { name: 'Create an account' });
  await form.getByLabel('Password', { exact: true }).fill(password);
  await form.getByLabel('Password again').fill(password);
  await form.getByRole('button', { name: 'Create account' }).click();
  const words = (await readWords(page)).join(' ');
  return { ids: await ids(page), words };
}

/** The recovery words on screen, then "written down" and Continue. */
export async function readWords(page) {
  const list = page.getByTestId('recovery-words');
  await list.waitFor({ timeout: 30_000 });
  const words = (await list.locator('li').allTextContents()).map((w) => w.trim());
  const go = page.getByRole('button', { name: 'Continue' });
  if (!(await go.isDisabled())) throw new Error('Continue is enabled before the words are confirmed');
  await page.getByLabel('I have written them down').check();
  await go.click();
  return words;
}

/** Fills and submits the log-in form of a new device (`server`: another server than the page's). */
export async function logIn(page, userId, password, server) {
  const form = page.getByRole('form', { name: 'Log in on this device' });
  await form.getByLabel('User id').fill(userId);
  await form.getByLabel('Password').fill(password);
  if (server) {
    await form.locator('summary', { hasText: 'Server' }).click();
    await form.getByLabel('Persistence server address').fill(server);
  }
  await form.getByRole('button', { name: 'Log in' }).click();
  return form;
}

/** The user id and identity the main screen shows. */
export async function ids(page) {
  await page.getByRole('heading', { name: 'Your account' }).waitFor({ timeout: 30_000 });
  return {
    userId: (await page.getByTestId('user-id').textContent()).trim(),
    identity: (await page.getByTestId('identity').textContent()).trim(),
  };
}

/** Creates an object with `content` through the form; resolves to its address. */
export async function newObject(page, content, { dynamic = true, format = 'Text' } = {}) {
  const form = page.getByRole('form', { name: 'New object' });
  await form.getByLabel('Content').fill(content);
  await form.getByLabel('Format').selectOption({ label: format });
  const box = form.getByLabel('Can be changed later (dynamic)');
  if ((await box.isChecked()) !== dynamic) await box.click();
  const before = await page.evaluate(() => document.querySelector('.detail:not([hidden]) h2')?.textContent ?? null);
  await form.getByRole('button', { name: 'Create' }).click();
  // The new object opens (another may have been open before).
  await page.waitForFunction((prev) => {
    const h = document.querySelector('.detail:not([hidden]) h2');
    return h && h.textContent !== prev;
  }, before);
  return (await page.locator('.detail .props code.ghid').first().textContent()).trim();
}

/** Opens the object `address` from the list (waiting for it to be listed). */
export async function openObject(page, address, timeout = 20_000) {
  const row = page.locator(`tr[data-address="${address}"]`);
  await row.filter({ hasNotText: 'fetching…' }).waitFor({ timeout });
  await row.getByRole('button').click();
  await page.locator('.detail h2', { hasText: `Object ${address.slice(0, 8)}…${address.slice(-4)}` }).waitFor();
}

/** The opened object's content as text. */
export async function shownText(page) {
  return (await page.locator('pre[aria-label="content as text"]').textContent());
}

/** Waits until the opened object shows `text`. */
export async function waitForText(page, text, timeout = 20_000) {
  await page.locator('pre[aria-label="content as text"]', { hasText: text }).waitFor({ timeout });
}

/** Saves `text` as the opened object's content. */
export async function edit(page, text) {
  const form = page.getByRole('form', { name: 'Edit' });
  await form.getByLabel('Content').fill(text);
  await form.getByRole('button', { name: 'Save' }).click();
  await waitForText(page, text);
}

/** Waits for the status line to say everything reached the server. */
export async function synced(page, timeout = 30_000) {
  await page.locator('.status', { hasText: 'everything synced' }).waitFor({ timeout });
}

/**
 * A screenshot of the screen (`name`.png), checked against the DOM: a
 * heading is rendered, no error screen, the app is not blank.
 */
export async function screenshot(page, name) {
  mkdirSync(shots, { recursive: true });
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  const check = await page.evaluate(() => ({
    text: document.querySelector('#app')?.innerText.trim().length ?? 0,
    headings: [...document.querySelectorAll('h1, h2')].filter((e) => e.getBoundingClientRect().height > 0).length,
    fatal: !!document.querySelector('#fatal-h'),
  }));
  assert.ok(check.text > 20 && check.headings > 0, `${name}: the screen is blank: ${JSON.stringify(check)}`);
  assert.ok(!check.fatal, `${name}: the app shows its error screen`);
  assert.ok(readFileSync(file).length > 5_000, `${name}: the screenshot is empty`);
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe-core on the current screen: no serious or critical violation. */
export async function accessible(page, name) {
  // Evaluated over the DevTools protocol: the app's CSP allows no inline script.
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${name}: accessibility violations: ${JSON.stringify(bad, null, 1)}`);
  return found;
}
