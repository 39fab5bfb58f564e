// What the package's Node tests share: real `hypergolix` processes (serve,
// start) in a private temporary directory, and waiting for a condition.
import { after } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const bin = process.env.HYPERGOLIX_BIN ?? join(root, 'target/release/hypergolix');
export const work = mkdtempSync(join(tmpdir(), 'hgx-pkg-'));

const cleanUps = [];

/** Registers `f` to run in `cleanUp` (processes, servers, browsers started by a test). */
export function onCleanUp(f) {
  cleanUps.push(f);
}

/**
 * Runs what `onCleanUp` registered (kills every process started here,
 * closes browsers and dev servers) and removes the work directory (tests:
 * done by `after`, which also runs when a test timed out with its
 * `finally` still pending).
 */
export async function cleanUp() {
  await Promise.all(cleanUps.splice(0).map(async (f) => { try { await f(); } catch { /* best effort */ } }));
  rmSync(work, { recursive: true, force: true });
}
after(cleanUp);

const serving = new Map();

/** Runs `hypergolix ARGS`; resolves to the address it prints as `listening on …`. */
export function run(args, env = {}, onSpawn = () => {}) {
  const p = spawn(bin, args, { env: { ...process.env, RUST_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanUp(() => p.kill('SIGKILL'));
  onSpawn(p);
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: p.stdout });
    lines.on('line', (l) => {
      if (l.startsWith('listening on ')) resolve(l.slice('listening on '.length).trim());
    });
    p.on('exit', (code, signal) => reject(new Error(`${args[0]} exited with ${code ?? signal}`)));
  });
}

/** A free TCP port on 127.0.0.1 (for a server that must come back on it). */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A persistence server on store `name` (`extra`: more `serve` arguments,
 * e.g. `--tls-cert`); resolves to its ws:// URL.
 */
export async function serve(name = 'server', port = 0, extra = []) {
  let proc;
  const addr = await run(
    ['serve', '--listen', `127.0.0.1:${port}`, '--store', join(work, `${name}.redb`), ...extra], {}, (p) => { proc = p; },
  );
  const url = `ws://${addr}/`;
  serving.set(url, proc);
  return url;
}

/** Kills (-9) the server at `url` started by `serve`; resolves once it is gone. */
export function killServe(url) {
  const p = serving.get(url);
  serving.delete(url);
  return new Promise((resolve) => {
    if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

/**
 * A local service of a new agent on `server`, listening on `ipc` (a
 * loopback address, or `unix:PATH`); resolves to what a link connects to
 * (`ws://ADDR/`, or `unix:PATH`).
 */
export async function service(who, server, ipc = '127.0.0.1:0', extra = []) {
  const addr = await run(
    ['start', '--ipc', ipc, '--insecure-test-kdf', '--data-dir', join(work, who),
      '--remote', server, ...extra],
    { HYPERGOLIX_PASSWORD: `pw ${who}`, HYPERGOLIX_CACHE_DIR: join(work, 'cache') },
  );
  return addr.startsWith('unix:') ? addr : `ws://${addr}/`;
}

/** Waits until `f()` holds (polling every 10 ms), or throws after `ms`. */
export async function until(what, f, ms = 20000) {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Shares `obj` with `recipient`, retrying while the recipient's identity
 * has not reached the server yet (a new agent publishes it on connect). */
export async function shareWhenKnown(obj, recipient) {
  for (let i = 0; ; i++) {
    try {
      await obj.share(recipient);
      return;
    } catch (e) {
      if (i > 200 || e.kind !== 'unknown_recipient') throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

export const text = (b) => new TextDecoder().decode(b);
