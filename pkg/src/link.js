// HypergolixLink and AppObj: an app's link to the local Hypergolix service
// over ws://127.0.0.1:7772/ (the 0.1.0 IPC protocol), in JavaScript idiom:
// promises, callbacks, and the original snake_case names as aliases.

import { WebSocket as PlatformWebSocket } from '#websocket';
import { ApiId, Ghid } from './ghid.js';
import {
  concat,
  decode,
  encode,
  ghids,
  NATIVE_GHIDS_SUBPROTOCOL,
  packObjDef,
  parseNak,
  parseObjDef,
} from './ipc.js';

/** Where the local service listens by default. */
export const DEFAULT_URL = 'ws://127.0.0.1:7772/';
const TIMEOUT_MS = 60_000;

/** The NK code of a share whose recipient the server does not know yet. */
const UNKNOWN_RECIPIENT = 0x0100;

/** What the link or the service refused; `code` is the IPC error code, if any. */
export class HypergolixError extends Error {
  constructor(message, { code = null, kind = 'refused' } = {}) {
    super(message);
    this.name = 'HypergolixError';
    this.code = code;
    this.kind = kind;
  }
}

function webSocketClass(given) {
  if (given) return given;
  if (typeof globalThis.WebSocket === 'function') return globalThis.WebSocket;
  if (typeof PlatformWebSocket === 'function') return PlatformWebSocket;
  throw new HypergolixError('no WebSocket here: pass one as options.WebSocket', { kind: 'connect' });
}

function bytesOf(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new HypergolixError('a text frame from the service', { kind: 'protocol' });
}

/** Reports a callback that threw or rejected: later callbacks still run. */
function callbackFailed(e) {
  console.error('hypergolix: an update callback failed:', e);
}

/** `newObj` options in either spelling: ours (`apiId`, `legroom`) or the seed's (`api_id`, `_legroom`). */
function objOptions(o = {}) {
  const legroom = o.legroom ?? o._legroom ?? 0;
  if (!Number.isInteger(legroom) || legroom < 0 || legroom > 255) {
    throw new RangeError('legroom is a whole number from 0 to 255');
  }
  return {
    apiId: o.apiId ?? o.api_id ?? ApiId.default(),
    dynamic: o.dynamic ?? true,
    priv: o.private ?? false,
    legroom,
  };
}

/** A password as the service takes it: UTF-8 for text. */
function utf8(password) {
  if (password instanceof Uint8Array) return password;
  if (typeof password === 'string') return new TextEncoder().encode(password);
  throw new TypeError('a password is a string or a Uint8Array');
}

function toBytes(state) {
  if (state instanceof Uint8Array) return state;
  if (typeof state === 'string') return new TextEncoder().encode(state);
  throw new TypeError('a state is a Uint8Array or a string');
}

/**
 * An app's link to the local service. Create it with
 * `await HypergolixLink.connect()`; it reconnects on its own (re-sending its
 * token) and keeps every object it handed out up to date.
 */
export class HypergolixLink {
  #url;
  #openSocket;
  #ws = null;
  #pending = new Map();
  #next = 0;
  #whoami = null;
  #token = null;
  #objs = new Map();
  #shareHandlers = new Map();
  #shareResult = null;
  #closed = false;
  #up = null;
  #backoff = 50;
  // Every message from the service gets the next arrival number; an answer
  // is as new as the number of the message that carried it.
  #rx = 0;
  // Addresses being fetched (`>O`): how many fetches, and the latest push
  // or delete that came for it meanwhile, `{ seq, def }` or `{ seq, deleted }`.
  #fetching = new Map();

  /**
   * Use `HypergolixLink.connect()` (the local service) or `engine.link()`
   * (an engine in this page): `openSocket()` makes a WebSocket-like object
   * (`send`, `close`, `addEventListener` of open/message/close) that carries
   * IPC messages; `where` names it in errors.
   */
  constructor(where, openSocket) {
    this.#url = where;
    this.#openSocket = openSocket;
  }

  /**
   * Connects to the local service.
   * @param {string} [url] default ws://127.0.0.1:7772/; in Node.js also
   *   `unix:PATH`, a service listening on a Unix-domain socket
   *   (`hypergolix start --ipc unix:PATH`)
   * @param {{WebSocket?: any}} [options] a WebSocket class (Node: `ws` by default)
   */
  static async connect(url = DEFAULT_URL, options = {}) {
    let Ws;
    let target = url;
    if (url.startsWith('unix:')) {
      // Only the `ws` package (Node.js) reaches a Unix-domain socket.
      Ws = options.WebSocket ?? PlatformWebSocket;
      if (typeof Ws !== 'function' || Ws === globalThis.WebSocket) {
        throw new HypergolixError(`${url}: unix: addresses need Node.js (the ws package)`, { kind: 'connect' });
      }
      target = `ws+unix:${url.slice('unix:'.length)}:/`;
    } else {
      Ws = webSocketClass(options.WebSocket);
    }
    const where = `the Hypergolix service at ${url} (is \`hypergolix start\` running?)`;
    const link = new HypergolixLink(where, () => new Ws(target, [NATIVE_GHIDS_SUBPROTOCOL]));
    await link.#open();
    return link;
  }

  /** Starts the link on its first socket (used by `Engine.link()`). */
  async _start() {
    await this.#open();
    return this;
  }

  #open() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = this.#openSocket();
      } catch (e) {
        reject(new HypergolixError(`cannot reach ${this.#url}: ${e.message}`, { kind: 'connect' }));
        return;
      }
      ws.binaryType = 'arraybuffer';
      let opened = false;
      ws.addEventListener('open', async () => {
        opened = true;
        this.#ws = ws;
        try {
          const me = await this.#send('?I', new Uint8Array(0), true);
          this.#whoami = ghids(me, 1)[0];
          if (this.#token) await this.#send('+T', this.#token, true);
          // A new connection starts with no api_ids and no tracked objects at
          // the service: register them again and fetch every live object.
          for (const { apiId } of this.#shareHandlers.values()) await this.#send('+A', apiId.bytes, true);
          for (const [key, ref] of this.#objs) {
            const obj = ref.deref();
            if (!obj) {
              this.#objs.delete(key);
              continue;
            }
            try {
              const { def, seq } = await this.#fetch(obj.address, true);
              obj._refreshed(def, seq);
            } catch {
              // gone meanwhile: it stays as it was (a delete pushed
              // meanwhile has reached it already)
            }
          }
          this.#backoff = 50;
          this.#up = true;
          resolve();
        } catch (e) {
          reject(e);
          ws.close();
        }
      });
      ws.addEventListener('message', (ev) => this.#incoming(bytesOf(ev.data)));
      ws.addEventListener('close', () => {
        if (this.#ws === ws) this.#ws = null;
        this.#up = false;
        for (const [, p] of this.#pending) p.reject(new HypergolixError('the connection to the service dropped', { kind: 'disconnected' }));
        this.#pending.clear();
        if (!opened) {
          reject(new HypergolixError(`cannot reach ${this.#url}`, { kind: 'connect' }));
        } else if (!this.#closed) {
          this.#reconnect();
        }
      });
      ws.addEventListener('error', () => {});
    });
  }

  #reconnect() {
    const wait = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, 5000);
    setTimeout(() => {
      if (!this.#closed) this.#open().catch(() => {});
    }, wait);
  }

  #send(code, body, duringHandshake = false) {
    return this.#sendSeq(code, body, duringHandshake).then(({ body: b }) => b);
  }

  /** Sends a request; resolves to `{ body, seq }`: the answer and its arrival number. */
  #sendSeq(code, body, duringHandshake = false) {
    if (this.#closed) return Promise.reject(new HypergolixError('the link was closed', { kind: 'stopped' }));
    if (!this.#ws || (!this.#up && !duringHandshake)) {
      return Promise.reject(new HypergolixError('not connected to the service (reconnecting)', { kind: 'disconnected' }));
    }
    let token = this.#next;
    while (this.#pending.has(token)) token = (token + 1) & 0xffff;
    this.#next = (token + 1) & 0xffff;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(token);
        reject(new HypergolixError('the service did not answer in time', { kind: 'timeout' }));
      }, TIMEOUT_MS);
      this.#pending.set(token, {
        resolve: (b, seq) => { clearTimeout(timer); resolve({ body: b, seq }); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.#ws.send(encode(code, token, body));
    });
  }

  #reply(token, body) {
    this.#ws?.send(encode('AK', token, body));
  }

  /**
   * Fetches `address` (`>O`); resolves to `{ def, seq }`. A push that
   * arrived after the answer (a socket may hand both over before the answer
   * is applied) replaces the answer's state; a delete rejects with `dead`.
   */
  async #fetch(address, duringHandshake = false) {
    const key = address.toString();
    const f = this.#fetching.get(key) ?? { count: 0, late: null };
    f.count++;
    this.#fetching.set(key, f);
    try {
      const answer = await this.#sendSeq('>O', address.bytes, duringHandshake);
      let def = parseObjDef(answer.body);
      let { seq } = answer;
      const late = f.late;
      if (late && late.seq > seq) {
        if (late.deleted) throw new HypergolixError('the object was deleted', { kind: 'dead' });
        def = { ...def, state: late.def.state, isLink: late.def.isLink };
        seq = late.seq;
      }
      return { def, seq };
    } finally {
      if (--f.count === 0) this.#fetching.delete(key);
    }
  }

  /** Remembers a push or delete for an address being fetched. */
  #late(address, late) {
    const f = this.#fetching.get(address.toString());
    if (f) f.late = late;
  }

  #incoming(bytes) {
    let m;
    try {
      m = decode(bytes);
    } catch {
      return; // not ours to answer: the service never sends those
    }
    const seq = ++this.#rx;
    if (m.code === 'AK' || m.code === 'NK') {
      const p = this.#pending.get(m.token);
      if (!p) return;
      this.#pending.delete(m.token);
      if (m.code === 'AK') p.resolve(Uint8Array.from(m.body), seq);
      else {
        const { code, message } = parseNak(m.body);
        // 0100: a share's recipient is not at the server yet (worth a retry).
        const kind = code === UNKNOWN_RECIPIENT ? 'unknown_recipient' : 'refused';
        p.reject(new HypergolixError(message || 'refused', { code, kind }));
      }
      return;
    }
    try {
      this.#push(m, seq);
    } catch (e) {
      console.warn(`hypergolix: ignored a malformed push: ${e.message}`);
    }
  }

  #push({ code, token, body }, seq) {
    switch (code) {
      case '!O': {
        this.#reply(token, Uint8Array.of(1));
        const def = parseObjDef(body);
        if (!def.address) throw new Error('a pushed update names its object');
        this.#late(def.address, { seq, def });
        this.#lookup(def.address)?._pushed(def, seq);
        break;
      }
      case 'XO': {
        this.#reply(token, Uint8Array.of(1));
        const [address] = ghids(body, 1);
        this.#late(address, { seq, deleted: true });
        this.#lookup(address)?._deleted();
        break;
      }
      case '@O': {
        this.#reply(token, Uint8Array.of(1));
        if (body.length !== 195) throw new Error('a share push is 195 bytes');
        const [address, origin] = ghids(body.subarray(0, 130), 2);
        const apiId = new ApiId(Uint8Array.from(body.subarray(130)));
        const h = this.#shareHandlers.get(apiId.key())?.handler;
        if (h) queueMicrotask(() => h({ address, origin, apiId }));
        break;
      }
      case '^S':
      case '^F': {
        this.#reply(token, new Uint8Array(0));
        const [address, recipient] = ghids(body, 2);
        const h = this.#shareResult;
        if (h) queueMicrotask(() => h({ address, recipient, delivered: code === '^S' }));
        break;
      }
      default:
        this.#ws?.send(encode('NK', token, concat(Uint8Array.of(0, 0), new TextEncoder().encode(`b'${code}'`))));
    }
  }

  #lookup(address) {
    if (!address) return undefined;
    const key = address.toString();
    const obj = this.#objs.get(key)?.deref();
    if (!obj) this.#objs.delete(key);
    return obj;
  }

  /** The AppObj of `def` (answered as message `seq`): the one already handed out, or a new one. */
  _track(def, seq) {
    const key = def.address.toString();
    const existing = this.#objs.get(key)?.deref();
    if (existing) {
      existing._refresh(def, seq);
      return existing;
    }
    const obj = new AppObj(this, def, seq);
    this.#objs.set(key, new WeakRef(obj));
    return obj;
  }

  _request(code, body) {
    return this.#send(code, body);
  }

  /** A request; resolves to `{ body, seq }`. */
  _requestSeq(code, body) {
    return this.#sendSeq(code, body);
  }

  /** The agent's identity (a Ghid): what others share with. */
  get whoami() {
    return this.#whoami;
  }

  /** This app's token (16 bytes), once set. */
  get token() {
    return this.#token;
  }

  /** Gets a new app token; keep it to find private objects and the startup object again. */
  async newToken() {
    const t = await this.#send('+T', new Uint8Array(16));
    if (t.length !== 16) throw new HypergolixError('a token is 16 bytes', { kind: 'protocol' });
    this.#token = t;
    return t;
  }

  /** Uses an existing token; resolves to the startup object's address, or null. */
  async setToken(token) {
    if (!(token instanceof Uint8Array) || token.length !== 16) throw new TypeError('a token is 16 bytes');
    await this.#send('+T', token);
    this.#token = Uint8Array.from(token);
    return this.startup();
  }

  /** The startup object's address, or null. */
  async startup() {
    const b = await this.#send('>$', new Uint8Array(0));
    return b.length === 0 ? null : ghids(b, 1)[0];
  }

  /** Makes `obj` the startup object of this app token. */
  async registerStartup(obj) {
    await this.#send('+$', obj.address.bytes);
  }

  /** Forgets the startup object. */
  async deregisterStartup() {
    await this.#send('-$', new Uint8Array(0));
  }

  /** Calls `handler({address, origin, apiId})` for each object shared with this agent under `apiId`. */
  async registerApi(apiId, handler) {
    if (typeof handler !== 'function') throw new TypeError('a share handler is a function');
    this.#shareHandlers.set(apiId.key(), { apiId, handler });
    try {
      await this.#send('+A', apiId.bytes);
    } catch (e) {
      this.#shareHandlers.delete(apiId.key());
      throw e;
    }
  }

  /** Stops receiving shares for `apiId`. */
  async deregisterApi(apiId) {
    await this.#send('-A', apiId.bytes);
    this.#shareHandlers.delete(apiId.key());
  }

  /** Calls `handler({address, recipient, delivered})` after each share this app made. */
  onShareResult(handler) {
    this.#shareResult = handler;
  }

  /**
   * The objects this app may see, without reading them: every object of the
   * agent (its own and those shared with it) that is not private, and this
   * app token's private ones. Each is `{ address, author, apiId, dynamic,
   * owned, private, isLink, loaded, size, changed }` (`changed`: a Date, when
   * this device took the current state; null when unknown). The engine in
   * the page and the local service of this project answer it; 0.1.0 did not.
   */
  async listObjects() {
    const b = await this._request('?L', new Uint8Array(0));
    const n = 65 + 65 + 65 + 1 + 8 + 8;
    if (b.length % n !== 0) throw new HypergolixError(`a listing of ${b.length} bytes`, { kind: 'protocol' });
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out = [];
    for (let at = 0; at < b.length; at += n) {
      const [address, author] = ghids(b.subarray(at, at + 130), 2);
      const flags = b[at + 195];
      const changed = Number(view.getBigUint64(at + 204));
      out.push({
        address,
        author,
        apiId: new ApiId(b.slice(at + 130, at + 195)),
        dynamic: (flags & 0x01) !== 0,
        owned: (flags & 0x02) !== 0,
        private: (flags & 0x04) !== 0,
        isLink: (flags & 0x08) !== 0,
        loaded: (flags & 0x10) !== 0,
        size: Number(view.getBigUint64(at + 196)),
        changed: changed === 0 ? null : new Date(changed),
      });
    }
    return out;
  }

  /** `listObjects` by a Python-style name. */
  async list_objects() { return this.listObjects(); }

  /**
   * Changes the account password (`!P`; the local service of this project
   * and the engine in the page answer it). The current password is checked
   * against the account as the server holds it: a wrong one is refused and
   * changes nothing. Resolves once the new password opens the account.
   */
  async changePassword(current, password) {
    const cur = utf8(current);
    const next = utf8(password);
    if (next.length === 0) throw new HypergolixError('the new password is empty', { kind: 'input' });
    if (cur.length > 0xffff) throw new HypergolixError('the current password is too long', { kind: 'input' });
    const len = new Uint8Array([cur.length >> 8, cur.length & 0xff]);
    await this._request('!P', concat(len, cur, next));
  }

  /** `changePassword` by a Python-style name. */
  async change_password(current, password) { return this.changePassword(current, password); }

  /**
   * New recovery words for the account (`?W`), given its current password:
   * twelve words to show the user once; words made before stop working.
   */
  async recoveryWords(password) {
    return new TextDecoder().decode(await this._request('?W', utf8(password)));
  }

  /** `recoveryWords` by a Python-style name. */
  async recovery_words(password) { return this.recoveryWords(password); }

  /** Fetches an object by address. */
  async get(address) {
    const { def, seq } = await this.#fetch(address);
    return this._track(def, seq);
  }

  async #create(state, options, isLink = false) {
    const { apiId, dynamic, priv, legroom } = objOptions(options);
    const def = { address: null, author: null, private: priv, dynamic, legroom: dynamic ? legroom : 0, apiId, isLink, state: toBytes(state) };
    const { body, seq } = await this.#sendSeq('+O', packObjDef(def));
    return this._track({ ...def, address: ghids(body, 1)[0], author: this.#whoami }, seq);
  }

  /**
   * Creates an object: `newObj(state, { apiId, dynamic = true, private = false, legroom = 0 })`
   * (legroom: how many earlier targets each frame carries; 0 is the service's default, 7).
   */
  newObj(state, options) {
    return this.#create(state, options, false);
  }

  /** Creates a link object whose state is the address `target`. */
  newLink(target, options) {
    return this.#create(target.bytes, options, true);
  }

  /** The seed's `app_token`: this app's token, once set. */
  get app_token() {
    return this.#token;
  }

  #own(obj) {
    if (!(obj instanceof AppObj) || !obj._of(this)) {
      throw new HypergolixError('the object belongs to another link', { kind: 'foreign' });
    }
    return obj;
  }

  /** The seed's `update_obj`: `obj.setState(state)` for an object of this link. */
  async update_obj(obj, state) { return this.#own(obj).setState(state); }
  /** The seed's `share_obj`. */
  async share_obj(obj, recipient) { return this.#own(obj).share(recipient); }
  /** The seed's `freeze_obj`. */
  async freeze_obj(obj) { return this.#own(obj).freeze(); }
  /** The seed's `hold_obj`. */
  async hold_obj(obj) { return this.#own(obj).hold(); }
  /** The seed's `discard_obj`. */
  async discard_obj(obj) { return this.#own(obj).discard(); }
  /** The seed's `delete_obj`. */
  async delete_obj(obj) { return this.#own(obj).delete(); }

  /** Closes the connection for good. */
  close() {
    this.#closed = true;
    this.#ws?.close();
  }
}

/** One object as an app sees it; updated live while the link runs. */
export class AppObj {
  #link;
  #def;
  #alive = true;
  #callbacks = [];
  #asyncCallbacks = [];
  #asyncRunning = Promise.resolve();
  // The arrival number of the message that brought the state held: an
  // answer older than it never replaces it.
  #seq;

  constructor(link, def, seq = 0) {
    this.#link = link;
    this.#def = def;
    this.#seq = seq;
  }

  /**
   * The seed's `AppObj.from_async(embed, state, api_id, private, dynamic,
   * threadsafe_callbacks, async_callbacks, _legroom)`: a new object of `link`'s
   * agent with its callbacks in place. Options as `newObj`'s, plus
   * `callbacks` (or `threadsafe_callbacks`) and `asyncCallbacks` (or `async_callbacks`).
   */
  static async from(link, state, options = {}) {
    const obj = await link.newObj(state, options);
    for (const fn of options.callbacks ?? options.threadsafe_callbacks ?? []) obj.appendCallback(fn);
    for (const fn of options.asyncCallbacks ?? options.async_callbacks ?? []) obj.appendAsyncCallback(fn);
    return obj;
  }

  /** Whether this object came from `link`. */
  _of(link) {
    return this.#link === link;
  }

  _refresh(def, seq) {
    if (seq < this.#seq) return; // a push newer than this answer is held
    this.#seq = seq;
    // The service answers legroom 0 (as 0.1.0 does): keep the one this link made it with.
    this.#def = def.legroom === 0 ? { ...def, legroom: this.#def.legroom } : def;
    this.#alive = true;
  }

  _pushed(def, seq) {
    this.#seq = seq;
    this.#def = { ...this.#def, state: def.state, isLink: def.isLink };
    this.#notify();
  }

  _refreshed(def, seq) {
    if (seq < this.#seq) return;
    this.#seq = seq;
    const same = this.#alive && def.state.length === this.#def.state.length
      && def.state.every((b, i) => b === this.#def.state[i]);
    this.#def = { ...this.#def, state: def.state, isLink: def.isLink };
    this.#alive = true;
    if (!same) this.#notify();
  }

  _deleted() {
    this.#alive = false;
    this.#notify();
  }

  #notify() {
    for (const cb of [...this.#callbacks]) {
      queueMicrotask(() => {
        try {
          Promise.resolve(cb(this)).catch(callbackFailed);
        } catch (e) {
          callbackFailed(e);
        }
      });
    }
    const asyncCbs = [...this.#asyncCallbacks];
    if (asyncCbs.length === 0) return;
    // Awaited one after another, and after the previous update's.
    this.#asyncRunning = this.#asyncRunning.then(async () => {
      for (const cb of asyncCbs) {
        try {
          await cb(this);
        } catch (e) {
          callbackFailed(e);
        }
      }
    });
  }

  #live() {
    if (!this.#alive) throw new HypergolixError('the object was discarded or deleted', { kind: 'dead' });
    return this.#def.address;
  }

  /** The address (Ghid). */
  get address() { return this.#def.address; }
  /** The identity that made it. */
  get author() { return this.#def.author; }
  /** Its ApiId. */
  get apiId() { return this.#def.apiId ?? ApiId.default(); }
  /** Visible only to the app token that made it. */
  get private() { return this.#def.private; }
  /** Dynamic (updatable). */
  get dynamic() { return this.#def.dynamic; }
  /** Made by this agent. */
  get owned() { return this.#def.author.equals(this.#link.whoami); }
  /** This app can update it. */
  get mutable() { return this.dynamic && this.owned && this.#alive; }
  /** Its state is another object's address. */
  get isLink() { return this.#def.isLink; }
  /** The address a link object points to, or null. */
  get linkAddress() { return this.#def.isLink && this.#def.state.length === 65 ? new Ghid(this.#def.state) : null; }
  /** False once discarded or deleted. */
  get alive() { return this.#alive; }
  /** The current state (Uint8Array); change it with `await setState(…)` (an assignment cannot wait, so it throws). */
  get state() { return this.#def.state; }
  /** How many earlier targets each frame carries, as this link made the object (0: static, or fetched with `get`). */
  get legroom() { return this.#def.legroom ?? 0; }

  /** Replaces the state (encrypted, signed, delivered to everyone it is shared with). */
  async setState(state) {
    const address = this.#live();
    if (!this.dynamic) throw new HypergolixError("a static object's state is set once, when it is made", { kind: 'immutable' });
    if (!this.owned) throw new HypergolixError('only the author can update', { kind: 'immutable' });
    const bytes = toBytes(state);
    const before = this.#seq;
    const { seq } = await this.#link._requestSeq('!O', packObjDef({ ...this.#def, address, author: null, legroom: 0, state: bytes }));
    // A push that arrived meanwhile is newer than this answer: keep it.
    if (this.#seq === before) {
      this.#def = { ...this.#def, state: bytes };
      this.#seq = seq;
    }
  }

  /** Fetches the newest state from the server now. */
  async sync() { await this.#link._request('~O', this.#live().bytes); }

  /** Shares with another identity (a Ghid). */
  async share(recipient) {
    const a = this.#live();
    if (this.private) throw new HypergolixError('private objects cannot be shared', { kind: 'immutable' });
    await this.#link._request('@O', concat(a.bytes, recipient.bytes));
  }

  /**
   * Takes a share back (the owner only, dynamic objects only): the next frame, published at
   * once, is encrypted under a new key the other recipients and the owner's other devices get
   * and `recipient` never does. It keeps what it already read and reads nothing published
   * from then on.
   */
  async unshare(recipient) {
    const a = this.#live();
    if (!this.owned) throw new HypergolixError('only the owner can take a share back', { kind: 'immutable' });
    if (!this.dynamic) throw new HypergolixError('a static object cannot be unshared (delete it instead)', { kind: 'immutable' });
    await this.#link._request('%O', concat(a.bytes, recipient.bytes));
  }

  /** The identities (Ghids) this agent shared the object with and has not taken it back from. */
  async sharedWith() {
    const b = await this.#link._request('?S', this.#live().bytes);
    if (b.length % 65 !== 0) throw new HypergolixError(`a shared-with answer of ${b.length} bytes`, { kind: 'protocol' });
    return ghids(b, b.length / 65);
  }

  /** `sharedWith` by its Python name. */
  async shared_with() { return this.sharedWith(); }

  /** A static snapshot of the current state (a new AppObj). */
  async freeze() {
    const b = await this.#link._request('*O', this.#live().bytes);
    return this.#link.get(ghids(b, 1)[0]);
  }

  /** Keeps the object at the server even if its author lets it go. */
  async hold() { await this.#link._request('#O', this.#live().bytes); }

  /** Stops following it; this object dies. */
  async discard() {
    await this.#link._request('-O', this.#live().bytes);
    this.#alive = false;
  }

  /** Deletes it everywhere (its author only). */
  async delete() {
    await this.#link._request('XO', this.#live().bytes);
    this.#alive = false;
  }

  /**
   * Adds a callback `(obj) => …` after the others: called on every pushed update, and once on
   * delete, each in a microtask of its own (a returned promise is not waited for).
   */
  appendCallback(fn) { this.#callbacks.push(checkFn(fn)); return fn; }
  /** Adds a callback before the others. */
  prependCallback(fn) { this.#callbacks.unshift(checkFn(fn)); return fn; }
  /** Removes a callback; false if it was not there. */
  removeCallback(fn) { return removeFrom(this.#callbacks, fn); }
  /** Removes every callback. */
  clearCallbacks() { this.#callbacks = []; }
  /** The callbacks, in the order they run (a copy). */
  get callbacks() { return [...this.#callbacks]; }

  /**
   * Adds an async callback `async (obj) => …` after the other async ones: on every pushed update
   * (and once on delete) they are awaited one after another, after the previous update's.
   */
  appendAsyncCallback(fn) { this.#asyncCallbacks.push(checkFn(fn)); return fn; }
  /** Adds an async callback before the other async ones. */
  prependAsyncCallback(fn) { this.#asyncCallbacks.unshift(checkFn(fn)); return fn; }
  /** Removes an async callback; false if it was not there. */
  removeAsyncCallback(fn) { return removeFrom(this.#asyncCallbacks, fn); }
  /** Removes every async callback. */
  clearAsyncCallbacks() { this.#asyncCallbacks = []; }
  /** The async callbacks, in the order they run (a copy). */
  get asyncCallbacks() { return [...this.#asyncCallbacks]; }

  /** The seed's `remove_threadsafe_callback`: throws if `fn` is not registered. */
  remove_threadsafe_callback(fn) { mustRemove(this.removeCallback(fn)); }
  /** The seed's `remove_async_callback`: throws if `fn` is not registered. */
  remove_async_callback(fn) { mustRemove(this.removeAsyncCallback(fn)); }
}

function checkFn(fn) {
  if (typeof fn !== 'function') throw new TypeError('a callback is a function');
  return fn;
}

function removeFrom(list, fn) {
  const i = list.indexOf(fn);
  if (i < 0) return false;
  list.splice(i, 1);
  return true;
}

function mustRemove(removed) {
  if (!removed) throw new HypergolixError('that callback is not registered', { kind: 'not_registered' });
}

// The original (0.1.0 README) names.
const alias = (cls, names) => {
  for (const [orig, ours] of Object.entries(names)) {
    Object.defineProperty(cls.prototype, orig, Object.getOwnPropertyDescriptor(cls.prototype, ours));
  }
};
alias(HypergolixLink, {
  new_token: 'newToken', set_token: 'setToken', register_startup: 'registerStartup',
  deregister_startup: 'deregisterStartup', register_api: 'registerApi', deregister_api: 'deregisterApi',
  new: 'newObj', new_obj: 'newObj', get_obj: 'get', new_link: 'newLink',
});
alias(AppObj, {
  api_id: 'apiId', is_dynamic: 'dynamic', is_owned: 'owned', is_link: 'isLink',
  link_address: 'linkAddress', is_alive: 'alive', update: 'setState', _legroom: 'legroom',
  append_callback: 'appendCallback', prepend_callback: 'prependCallback',
  remove_callback: 'removeCallback', clear_callbacks: 'clearCallbacks',
  append_threadsafe_callback: 'appendCallback', prepend_threadsafe_callback: 'prependCallback',
  clear_threadsafe_callbacks: 'clearCallbacks', threadsafe_callbacks: 'callbacks',
  append_async_callback: 'appendAsyncCallback', prepend_async_callback: 'prependAsyncCallback',
  clear_async_callbacks: 'clearAsyncCallbacks', async_callbacks: 'asyncCallbacks',
});
AppObj.from_async = AppObj.from;
