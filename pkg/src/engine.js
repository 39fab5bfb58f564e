// Engine: the Hypergolix engine running in this page, worker or Node
// process (the wasm build of the Rust engine; IndexedDB storage), with the
// same HypergolixLink/AppObj API as the link to the local service.

import { Ghid } from './ghid.js';
import { HypergolixError, HypergolixLink } from './link.js';
import { wasmSource } from '#wasm-source';
// A static import: bundlers then need no code splitting for the package
// (Vite's default worker format cannot split). The glue is small; the wasm
// itself is fetched and compiled on first use only.
import initWasm, { WebEngine } from '../wasm/hypergolix_web.js';

let loading = null;

/**
 * Loads and compiles the engine's wasm once (on first use: apps that only
 * link to the local service never fetch it).
 */
function loadWasm() {
  loading ??= (async () => {
    await initWasm({ module_or_path: await wasmSource() });
    return WebEngine;
  })();
  return loading;
}

function fromWasm(e) {
  if (e && e.name === 'HypergolixError' && typeof e.code === 'string') {
    return new HypergolixError(e.message, { kind: e.code });
  }
  return e instanceof Error ? e : new HypergolixError(String(e), { kind: 'js' });
}

async function call(f) {
  try {
    return await f();
  } catch (e) {
    throw fromWasm(e);
  }
}

/**
 * One IPC session on an in-page engine, shaped like the WebSocket the link
 * uses for the local service (open, message, close events; send; close).
 */
class EngineSocket {
  #engine;
  #id = null;
  #listeners = { open: [], message: [], close: [], error: [] };
  #closed = false;
  binaryType = 'arraybuffer';

  constructor(engine) {
    this.#engine = engine;
    queueMicrotask(() => {
      try {
        this.#id = engine.openSession(
          (bytes) => this.#emit('message', { data: bytes }),
          (reason) => this.#end(reason),
        );
      } catch (e) {
        this.#end(fromWasm(e).message);
        return;
      }
      this.#emit('open', {});
    });
  }

  addEventListener(type, fn) {
    this.#listeners[type]?.push(fn);
  }

  #emit(type, ev) {
    for (const fn of this.#listeners[type]) fn(ev);
  }

  #end(reason) {
    if (this.#closed) return;
    this.#closed = true;
    this.#emit('close', { code: 1000, reason: String(reason ?? '') });
  }

  send(bytes) {
    if (this.#closed) return;
    try {
      this.#engine.send(this.#id, bytes);
    } catch (e) {
      this.#end(fromWasm(e).message);
    }
  }

  close() {
    if (this.#id !== null && !this.#closed) this.#engine.closeSession(this.#id);
    this.#end('closed by the app');
  }
}

function withStorage(options) {
  const o = { ...options };
  if (o.storage === undefined && typeof globalThis.indexedDB === 'undefined') {
    throw new HypergolixError(
      "IndexedDB is not available here (Node.js?): pass storage: 'memory' (nothing is kept after close()), "
      + 'or use the local service with HypergolixLink.connect()',
      { kind: 'bad_option' },
    );
  }
  if (o.userId instanceof Ghid) o.userId = o.userId.toString();
  return o;
}

const LATE = Symbol('late');

/**
 * Resolves to `waiting` (the engine's status once synced) or, if that takes
 * over `timeoutMs`, to a fresh `status()` if it is synced by then; else a
 * `timeout` error that names what is still pending.
 */
async function syncedWithin(waiting, status, timeoutMs) {
  let timer;
  const late = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs, LATE); });
  try {
    const r = await Promise.race([call(() => waiting), late]);
    if (r !== LATE) return r;
  } finally {
    clearTimeout(timer);
  }
  const s = await status();
  if (s.synced && s.loading === 0) return s;
  throw new HypergolixError(`not synced after ${timeoutMs} ms: ${s.pending.join('; ')}`, { kind: 'timeout' });
}

/**
 * The Hypergolix engine in this page (or worker, or Node process): it keeps
 * the account's encrypted records in IndexedDB and syncs with a persistence
 * server. Open it with `Engine.create`, `Engine.login` or `Engine.open`, then
 * get links from it: `await engine.link()`.
 */
export class Engine {
  #wasm;

  constructor(wasm) {
    this.#wasm = wasm;
  }

  /**
   * Opens the engine with the raw options (see the README): `server`,
   * `password`, and `create: true`, or `userId`, or neither (the account this
   * browser holds); `database`, `storage`, `onLog`, `timeoutMs`.
   */
  static async open(options) {
    const Wasm = await loadWasm();
    return new Engine(await call(() => Wasm.open(withStorage(options))));
  }

  /** Creates a new account: `{ server, password, database?, storage? }`. */
  static create(options) {
    return Engine.open({ ...options, create: true });
  }

  /**
   * Logs in to an existing account: `{ server, userId, password, ... }`.
   * This browser's copy is unlocked if it has one; otherwise the account is
   * fetched from the server (a new device).
   */
  static async login(options) {
    if (options?.userId === undefined) {
      throw new HypergolixError('login needs a userId', { kind: 'bad_option' });
    }
    return Engine.open(options);
  }

  /**
   * Recovers an account whose password is lost, with its recovery words:
   * `{ server, userId, recoveryWords, password, ... }`, `password` being the
   * new one. A copy of the account this browser holds (locked under the lost
   * password) is replaced once the words opened it; words that do not open
   * it (`wrong_recovery_words`) or are mistyped (`bad_recovery_words`)
   * change nothing.
   */
  static async recover(options) {
    if (options?.userId === undefined || typeof options?.recoveryWords !== 'string') {
      throw new HypergolixError('recover needs a userId and the recoveryWords', { kind: 'bad_option' });
    }
    return Engine.open(options);
  }

  /**
   * Restores an account from an export file (`engine.exportAccount`, or
   * `hypergolix export`) into a database that holds none:
   * `{ server, file, password, database?, storage? }`; `password` opens the
   * file and locks this browser's copy (`recoveryWords` too for a file
   * locked with them). A damaged or foreign file is `corrupt_export`.
   */
  static async import(options) {
    const { file, ...rest } = options ?? {};
    if (!(file instanceof Uint8Array)) {
      throw new HypergolixError('import needs the file as a Uint8Array', { kind: 'bad_option' });
    }
    return Engine.open({ ...rest, import: file });
  }

  /** Deletes this browser's copy of an account (default database `hypergolix`). */
  static async deleteDatabase(name = 'hypergolix') {
    const Wasm = await loadWasm();
    await call(() => Wasm.deleteDatabase(name));
  }

  /** The user id (what logs in on another device). */
  get userId() {
    const t = this.#wasm.userId;
    return t ? Ghid.fromString(t) : null;
  }

  /** The identity (what others share with). */
  get identity() {
    const t = this.#wasm.identity;
    return t ? Ghid.fromString(t) : null;
  }

  /** Whether the persistence server is connected. */
  get online() { return this.#wasm.online; }
  /** Whether the engine was closed (or stopped: see `failure`). */
  get closed() { return this.#wasm.closed; }
  /** Why the engine stopped on its own, if it did. */
  get failure() { return this.#wasm.failure ?? null; }
  /** The IndexedDB database name. */
  get database() { return this.#wasm.database; }
  /** The persistence server URL. */
  get server() { return this.#wasm.server; }

  /** A new app link to this engine (HypergolixLink; each is one app session). */
  async link() {
    const wasm = this.#wasm;
    if (wasm.closed) {
      throw new HypergolixError(`the engine is closed${wasm.failure ? `: ${wasm.failure}` : ''}`, { kind: 'closed' });
    }
    return new HypergolixLink('the engine in this page (closed?)', () => new EngineSocket(wasm))._start();
  }

  /**
   * One raw IPC session (for `serveEngines`): `onMessage(bytes)` gets what
   * the engine sends, `onClose(reason)` its end; returns `{ send, close }`.
   */
  _openSession(onMessage, onClose) {
    const wasm = this.#wasm;
    if (wasm.closed) throw new HypergolixError('the engine is closed', { kind: 'closed' });
    let open = true;
    const id = wasm.openSession(onMessage, (reason) => { open = false; onClose(reason); });
    return {
      send(bytes) {
        if (!open) return;
        try {
          wasm.send(id, bytes);
        } catch (e) {
          open = false;
          onClose(fromWasm(e).message);
        }
      },
      close() {
        if (open && !wasm.closed) wasm.closeSession(id);
        open = false;
      },
    };
  }

  /** `{ online, synced, loading, pending }`: is everything acknowledged at the server, and everything known read? */
  status() {
    return call(() => this.#wasm.status());
  }

  /**
   * Resolves (to the status) once everything acknowledged has reached the
   * server and every known object is read: right after the engine step that
   * gets there, not on a timer.
   */
  synced({ timeoutMs = 30000 } = {}) {
    return syncedWithin(this.#wasm.whenSynced(), () => this.status(), timeoutMs);
  }

  /**
   * Changes the account's password (and this browser's lock), given the
   * current one: it is checked against the account on the server (so the
   * server must be connected: `not_ready` if not). Resolves once the new
   * password opens the account everywhere; `wrong_password` changes nothing.
   */
  changePassword(current, password) {
    return call(() => this.#wasm.changePassword(current, password));
  }

  /**
   * The recovery words made with a new account (`Engine.create`), once; then
   * null. Show them to the user with a warning, and keep them nowhere.
   */
  takeRecoveryWords() {
    return this.#wasm.takeRecoveryWords() ?? null;
  }

  /**
   * New recovery words (words made before stop opening the account), given
   * the current password: checked against the account on the server, which
   * must be connected. Resolves to the 12 words, to show once.
   */
  recoveryWords(password) {
    return call(() => this.#wasm.recoveryWords(password));
  }

  /**
   * The account in one encrypted file (a Uint8Array): its keys and every
   * object's state, locked with the account password (the one that opens
   * this browser's copy now). `Engine.import` and
   * `hypergolix import` restore it.
   */
  exportAccount(password) {
    return call(() => this.#wasm.exportAccount(password));
  }

  /** Stops the engine; resolves when its last write is stored. */
  async close() {
    await call(() => this.#wasm.close());
  }
}
