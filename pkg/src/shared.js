// One engine for every tab and worker of an origin: the engine runs in a
// SharedWorker (`serveEngines()` there), and each tab talks to it through
// `EngineHost` / `SharedEngine`, with the same API as `Engine`. Closing any
// tab leaves the engine running for the others; the worker lives as long as
// one tab holds it. Argon2id then runs in the worker, never in the page.
//
// Wire (structured clone over MessagePorts):
//   tab → worker   { id, op, args }            on the control port
//   worker → tab   { id, ok } | { id, error: { message, kind } }
//                  { event: 'closed', database, reason }   (to every tab)
//   an app session is a MessageChannel of its own: the tab sends one port
//   with { op: 'session' }; IPC messages flow as Uint8Arrays both ways, and
//   { end: reason } closes it.

import { Ghid } from './ghid.js';
import { Engine } from './engine.js';
import { HypergolixError, HypergolixLink } from './link.js';

const LOCK = 'hypergolix-shared-engine-client:';

function errorOut(e) {
  return { message: String(e?.message ?? e), kind: e?.kind ?? 'js' };
}

// ------------------------------------------------------------- the worker

/**
 * Serves engines to the tabs of this origin. Call it once at the top level
 * of a SharedWorker script (or of a dedicated Worker where SharedWorker is
 * missing: then that one tab is served):
 *
 * ```js
 * // engine-worker.js
 * import { serveEngines } from 'hypergolix';
 * serveEngines();
 * ```
 *
 * One engine per IndexedDB database, opened by the first tab that unlocks
 * it and shared by every tab until one locks it (`close()`).
 */
export function serveEngines(scope = globalThis) {
  /** database → { engine, generation } */
  const engines = new Map();
  /** database → the tail of its operations (open, attach, close, delete run one at a time) */
  const queues = new Map();
  let generations = 0;
  /** control ports, for events */
  const ports = new Set();
  /** client id → sessions it opened (closed when the tab goes away) */
  const clients = new Map();

  const serial = (database, f) => {
    const run = (queues.get(database) ?? Promise.resolve()).then(f);
    queues.set(database, run.catch(() => {}));
    return run;
  };

  const info = ({ engine: e, generation }) => ({
    database: e.database,
    server: e.server,
    userId: e.userId?.toString() ?? null,
    identity: e.identity?.toString() ?? null,
    online: e.online,
    generation,
  });

  const broadcast = (msg) => {
    for (const p of ports) p.postMessage(msg);
  };

  /** The open engine on `database` (and its generation), or a `closed` error. */
  function current(database) {
    const slot = engines.get(database);
    if (!slot || slot.engine.closed) {
      if (slot) {
        engines.delete(database);
        broadcast({ event: 'closed', database, reason: slot.engine.failure ?? 'stopped' });
      }
      throw new HypergolixError(
        `no engine is open on ${database}${slot?.engine.failure ? `: ${slot.engine.failure}` : ''}`,
        { kind: 'closed' },
      );
    }
    return slot;
  }

  async function shut(database, reason) {
    const slot = engines.get(database);
    engines.delete(database);
    if (slot && !slot.engine.closed) await slot.engine.close();
    broadcast({ event: 'closed', database, reason });
  }

  const ops = {
    attach: ({ database }) => serial(database, () => {
      const slot = engines.get(database);
      return slot && !slot.engine.closed ? info(slot) : null;
    }),
    open: (options) => {
      const database = options.database ?? 'hypergolix';
      return serial(database, async () => {
        const had = engines.get(database);
        if (had && !had.engine.closed) {
          throw new HypergolixError(
            'this account is already unlocked in another tab: attach to it',
            { kind: 'in_use' },
          );
        }
        const engine = await Engine.open({ ...options, database });
        generations += 1;
        const slot = { engine, generation: generations };
        engines.set(database, slot);
        // A new account's words go to the tab that made it, and no other.
        return { ...info(slot), recoveryWords: engine.takeRecoveryWords() };
      });
    },
    async info({ database }) { return info(current(database)); },
    async status({ database }) {
      const { engine } = current(database);
      return { ...(await engine.status()), online: engine.online };
    },
    async synced({ database, timeoutMs }) {
      const { engine } = current(database);
      return { ...(await engine.synced({ timeoutMs })), online: engine.online };
    },
    async changePassword({ database, current: now, password }) {
      await current(database).engine.changePassword(now, password);
      return null;
    },
    recoveryWords: ({ database, password }) => current(database).engine.recoveryWords(password),
    exportAccount: ({ database, password }) => current(database).engine.exportAccount(password),
    close: ({ database, reason }) => serial(database, async () => {
      await shut(database, reason ?? 'locked');
      return null;
    }),
    deleteDatabase: ({ database }) => serial(database, async () => {
      await shut(database, 'deleted');
      await Engine.deleteDatabase(database);
      return null;
    }),
  };

  function openSession({ database, generation }, client, port) {
    const sessions = clients.get(client);
    let session = null;
    const end = (reason) => {
      port.postMessage({ end: String(reason ?? '') });
      port.close();
    };
    try {
      const slot = current(database);
      if (slot.generation !== generation) {
        throw new HypergolixError('the engine this link was opened on was locked', { kind: 'closed' });
      }
      session = slot.engine._openSession(
        (bytes) => port.postMessage(bytes),
        (reason) => { sessions?.delete(session); end(reason); },
      );
    } catch (e) {
      end(errorOut(e).message);
      return;
    }
    sessions?.add(session);
    port.onmessage = ({ data }) => {
      if (data instanceof Uint8Array) session.send(data);
      else if (data?.end !== undefined) {
        session.close();
        sessions?.delete(session);
        port.close();
      }
    };
    port.postMessage({ open: true });
  }

  function serve(port) {
    ports.add(port);
    let client = null;
    port.onmessage = async ({ data, ports: transferred }) => {
      const { id, op, args } = data ?? {};
      if (op === 'hello') {
        // The tab holds a Web Lock named for it while it lives: when the
        // lock is granted here, the tab is gone; its sessions (and the app
        // tokens they hold) are closed.
        client = String(args.client);
        clients.set(client, new Set());
        navigator.locks?.request(LOCK + client, async () => {
          for (const s of clients.get(client) ?? []) s.close();
          clients.delete(client);
          ports.delete(port);
        });
        port.postMessage({ id, ok: null });
        return;
      }
      if (op === 'session') {
        openSession(args, client, transferred[0]);
        return;
      }
      try {
        const f = ops[op];
        if (!f) throw new HypergolixError(`unknown operation ${op}`, { kind: 'bad_option' });
        port.postMessage({ id, ok: await f(args ?? {}) });
      } catch (e) {
        port.postMessage({ id, error: errorOut(e) });
      }
    };
    port.start?.();
  }

  if ('onconnect' in scope) {
    scope.onconnect = (e) => serve(e.ports[0]);
  } else {
    serve(scope);
  }
}

// ---------------------------------------------------------------- the tab

/**
 * The tab's side of `serveEngines`: `EngineHost.connect(worker)` with the
 * SharedWorker (or Worker) running it, then `attach()` to the engine another
 * tab unlocked, or `create`, `login`, `open` as with `Engine`.
 */
export class EngineHost {
  #port;
  #next = 1;
  #calls = new Map();
  #engines = new Set();

  constructor(port) {
    this.#port = port;
    port.onmessageerror = () => this._fail('a message from the engine worker could not be read');
    port.onmessage = ({ data }) => {
      if (data?.event === 'closed') {
        for (const e of [...this.#engines]) {
          if (e.database !== data.database) continue;
          e._closed(data.reason);
          this.#engines.delete(e);
        }
        return;
      }
      const call = this.#calls.get(data?.id);
      if (!call) return;
      this.#calls.delete(data.id);
      if (data.error) call.reject(new HypergolixError(data.error.message, { kind: data.error.kind }));
      else call.resolve(data.ok);
    };
    port.start?.();
  }

  /** Fails every pending call (the worker is gone or never started). */
  _fail(why) {
    for (const { reject } of this.#calls.values()) reject(new HypergolixError(why, { kind: 'closed' }));
    this.#calls.clear();
    for (const e of this.#engines) e._closed(why);
  }

  /**
   * Connects to a SharedWorker (or dedicated Worker) that runs
   * `serveEngines()`. Resolves once the worker knows this tab; fails if
   * its script does not load or it does not answer within `timeoutMs`.
   */
  static async connect(worker, { timeoutMs = 20000 } = {}) {
    const port = worker.port ?? worker;
    const host = new EngineHost(port);
    worker.addEventListener?.('error', (e) => {
      host._fail(`the engine worker failed: ${e?.message || 'its script did not load'}`);
    });
    const client = globalThis.crypto.randomUUID();
    if (globalThis.navigator?.locks) {
      // Held until this tab goes away; the worker waits on it (see serveEngines).
      await new Promise((held) => {
        navigator.locks.request(LOCK + client, () => {
          held();
          return new Promise(() => {});
        });
      });
    }
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new HypergolixError(
        `the engine worker did not answer within ${timeoutMs} ms`, { kind: 'timeout' },
      )), timeoutMs);
    });
    try {
      await Promise.race([host._call('hello', { client }), late]);
    } finally {
      clearTimeout(timer);
    }
    return host;
  }

  _call(op, args, transfer = []) {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve, reject });
      this.#port.postMessage({ id, op, args }, transfer);
    });
  }

  _session(database, generation, port) {
    this.#port.postMessage({ op: 'session', args: { database, generation } }, [port]);
  }

  #wrap(info) {
    const e = new SharedEngine(this, info);
    this.#engines.add(e);
    return e;
  }

  /** The engine another tab unlocked on `database`, or null. */
  async attach({ database = 'hypergolix' } = {}) {
    const info = await this._call('attach', { database });
    return info ? this.#wrap(info) : null;
  }

  /** As `Engine.open` (options must be cloneable: no `onLog`). */
  async open(options) {
    const o = { ...options };
    if (o.userId instanceof Ghid) o.userId = o.userId.toString();
    return this.#wrap(await this._call('open', o));
  }

  /** As `Engine.create`. */
  create(options) { return this.open({ ...options, create: true }); }

  /** As `Engine.import`. */
  import(options) {
    const { file, ...rest } = options ?? {};
    if (!(file instanceof Uint8Array)) {
      return Promise.reject(new HypergolixError('import needs the file as a Uint8Array', { kind: 'bad_option' }));
    }
    return this.open({ ...rest, import: file });
  }

  /** As `Engine.recover`. */
  recover(options) {
    if (options?.userId === undefined || typeof options?.recoveryWords !== 'string') {
      return Promise.reject(new HypergolixError('recover needs a userId and the recoveryWords', { kind: 'bad_option' }));
    }
    return this.open(options);
  }

  /** As `Engine.login`. */
  login(options) {
    if (options?.userId === undefined) {
      return Promise.reject(new HypergolixError('login needs a userId', { kind: 'bad_option' }));
    }
    return this.open(options);
  }

  /** Locks (closes) the engine on `database` for every tab, then deletes this browser's copy. */
  async deleteDatabase(database = 'hypergolix') {
    await this._call('deleteDatabase', { database });
  }
}

/** One app session over a MessagePort, shaped like the WebSocket the link uses. */
class PortSocket {
  #port;
  #listeners = { open: [], message: [], close: [], error: [] };
  #closed = false;
  binaryType = 'arraybuffer';

  constructor(host, database, generation) {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    port1.onmessage = ({ data }) => {
      if (data instanceof Uint8Array) this.#emit('message', { data });
      else if (data?.open) this.#emit('open', {});
      else if (data?.end !== undefined) this.#end(data.end);
    };
    host._session(database, generation, port2);
  }

  addEventListener(type, fn) { this.#listeners[type]?.push(fn); }

  #emit(type, ev) { for (const fn of this.#listeners[type]) fn(ev); }

  #end(reason) {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.close();
    this.#emit('close', { code: 1000, reason: String(reason ?? '') });
  }

  send(bytes) {
    if (!this.#closed) this.#port.postMessage(bytes);
  }

  close() {
    if (!this.#closed) this.#port.postMessage({ end: 'closed by the app' });
    this.#end('closed by the app');
  }
}

/**
 * An engine running in the shared worker, as this tab sees it: the same
 * members as `Engine` (`link()`, `status()`, `synced()`, `changePassword()`,
 * `recoveryWords()`, `takeRecoveryWords()`,
 * `close()`, `userId`, `identity`, `online`, `server`, `database`), plus
 * `onClosed(fn)`: told when any tab locks it (or deletes its copy).
 */
export class SharedEngine {
  #host;
  #info;
  #closed = null;
  #onClosed = [];
  #words = null;

  constructor(host, info) {
    this.#host = host;
    const { recoveryWords, ...rest } = info;
    this.#info = rest;
    this.#words = recoveryWords ?? null;
  }

  /** As `Engine.takeRecoveryWords` (in the tab that created the account). */
  takeRecoveryWords() {
    const w = this.#words;
    this.#words = null;
    return w;
  }

  /** As `Engine.exportAccount`. */
  exportAccount(password) { return this.#call('exportAccount', { password }); }

  /** As `Engine.recoveryWords`. */
  recoveryWords(password) { return this.#call('recoveryWords', { password }); }

  get database() { return this.#info.database; }
  get server() { return this.#info.server; }
  get userId() { return this.#info.userId ? Ghid.fromString(this.#info.userId) : null; }
  get identity() { return this.#info.identity ? Ghid.fromString(this.#info.identity) : null; }
  /** As of the last `status()`. */
  get online() { return this.#info.online; }
  get closed() { return this.#closed !== null; }
  /** Why it closed (`locked`, `deleted`, or the engine's failure), if it did. */
  get failure() { return this.#closed; }

  /** Calls `fn(reason)` once the engine is closed (in any tab); at once if it is. */
  onClosed(fn) {
    if (this.#closed !== null) queueMicrotask(() => fn(this.#closed));
    else this.#onClosed.push(fn);
  }

  _closed(reason) {
    if (this.#closed !== null) return;
    this.#closed = reason;
    for (const fn of this.#onClosed) {
      try { fn(reason); } catch (e) { console.error(e); }
    }
  }

  async #call(op, args = {}) {
    try {
      return await this.#host._call(op, { database: this.database, ...args });
    } catch (e) {
      if (e.kind === 'closed') this._closed(e.message);
      throw e;
    }
  }

  /** A new app link to the shared engine (one app session). */
  async link() {
    if (this.closed) throw new HypergolixError(`the engine is closed: ${this.#closed}`, { kind: 'closed' });
    return new HypergolixLink('the shared engine (closed?)', () => {
      // A link outlives nothing: once this engine is locked, it stops.
      if (this.closed) throw new HypergolixError(`the engine is closed: ${this.#closed}`, { kind: 'closed' });
      return new PortSocket(this.#host, this.database, this.#info.generation);
    })._start();
  }

  /** `{ online, synced, loading, pending }`, as `Engine.status()`. */
  async status() {
    const s = await this.#call('status');
    this.#info = { ...this.#info, online: s.online };
    return s;
  }

  /** Resolves once everything acknowledged has reached the server and every known object is read. */
  async synced({ timeoutMs = 30000 } = {}) {
    const s = await this.#call('synced', { timeoutMs });
    this.#info = { ...this.#info, online: s.online };
    return s;
  }

  /** Changes the account's password (and this browser's lock), given the current one. */
  async changePassword(current, password) { await this.#call('changePassword', { current, password }); }

  /** Locks the engine for every tab (resolves once its last write is stored). */
  async close() {
    await this.#host._call('close', { database: this.database, reason: 'locked' });
    this._closed('locked');
  }
}
