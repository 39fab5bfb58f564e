// What the browser tests and the browser benchmark share: the packed
// package installed into a fresh Vite app and built, a static server for
// it, and Debian's Chromium driven by playwright-core.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { onCleanUp } from '../support.js';

const pkgDir = fileURLToPath(new URL('../..', import.meta.url));
/** The Vite version the fresh app gets. */
export const VITE = process.env.HGX_VITE ?? 'vite@7';
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function sh(cmd, args, cwd) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/**
 * `npm pack`s the package, makes a fresh Vite app in `work/app` that
 * installs the tarball (no other step), copies the test page in and builds
 * it; returns the `dist` directory.
 */
export function buildViteApp(work) {
  return join(viteApp(work), 'dist');
}

/** The fresh Vite app of `buildViteApp` (built), as its directory. */
export function viteApp(work) {
  const tarball = sh('npm', ['pack', '--silent', '--pack-destination', work], pkgDir).trim().split('\n').pop();
  const app = join(work, 'app');
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'hgx-vite-app', private: true, type: 'module' }));
  sh('npm', ['install', '--no-audit', '--no-fund', '--silent', VITE, join(work, tarball)], app);
  cpSync(fileURLToPath(new URL('./app', import.meta.url)), app, { recursive: true });
  sh('npx', ['vite', 'build', '--logLevel', 'warn'], app);
  return app;
}

/**
 * Vite's dev server on `app` (port `port`); resolves to { url, close } once
 * it answers HTTP. Readiness is polled, not read from Vite's banner: the
 * banner's wording and colours change with the environment (with `CI` set,
 * picocolors colours it even into a pipe). The server is killed by
 * `cleanUp` too, so a test that times out does not leave it running.
 */
export async function viteDev(app, port, ms = 60000) {
  const p = spawn('npx', ['vite', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], {
    cwd: app, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, NO_COLOR: '1' },
  });
  const close = () => { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } };
  onCleanUp(close);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  let exited = null;
  p.on('exit', (code, signal) => { exited = code ?? signal; });
  const url = `http://127.0.0.1:${port}/`;
  const t0 = Date.now();
  for (;;) {
    if (exited !== null) throw new Error(`vite dev exited with ${exited}:\n${out}`);
    if (Date.now() - t0 > ms) {
      close();
      throw new Error(`vite dev did not answer on ${url} within ${ms} ms:\n${out}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return { url, close };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const TYPES = {
  '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css',
};

/** Serves `dir` on 127.0.0.1 (`port` 0: any); resolves to { url, close }. */
export function staticServer(dir, port = 0) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dir, path === '/' ? 'index.html' : path);
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}/`,
      port: server.address().port,
      close: () => new Promise((r) => server.close(r)),
    }));
  });
}

/**
 * Debian's Chromium, headless, with a profile in `userDataDir` (IndexedDB
 * lives there, so a relaunch on the same directory finds it again) and
 * `extra` command-line switches.
 */
export async function launch(userDataDir, extra = []) {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extra,
    ],
  });
  onCleanUp(() => context.close().catch(() => {}));
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  page.on('console', (m) => { if (m.type() === 'error') console.error('page console:', m.text()); });
  return { context, page };
}

/** Opens the app and waits for the package to load. */
export async function openApp(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent !== 'loading…');
}

/** Percentiles of a list of numbers. */
export function percentiles(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  return { n: s.length, p50: at(50), p90: at(90), p99: at(99), max: s[s.length - 1] };
}
