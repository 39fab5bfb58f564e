// Types of the `hypergolix` package: the engine in the page (Engine) and the
// link to it or to the local Hypergolix service (HypergolixLink, AppObj).

/** A Golix address: 65 bytes (algorithm byte + 64-byte digest). */
export class Ghid {
  constructor(bytes: Uint8Array);
  readonly bytes: Uint8Array;
  /** Parses the 88-character text form (URL-safe base64 with padding). */
  static fromString(text: string): Ghid;
  toString(): string;
  toJSON(): string;
  equals(other: unknown): boolean;
}

/** An app schema id: `00` followed by 64 app bytes. */
export class ApiId {
  /** 65 bytes, or the 64 app bytes. */
  constructor(bytes: Uint8Array);
  readonly bytes: Uint8Array;
  /** The 0.1.0 default for plain byte objects. */
  static default(): ApiId;
  key(): string;
  equals(other: unknown): boolean;
}

export function toBase64Url(bytes: Uint8Array): string;
export function fromBase64Url(text: string): Uint8Array;

/** Where the local service listens by default: ws://127.0.0.1:7772/ */
export const DEFAULT_URL: string;

/** What the link or the service refused. */
export class HypergolixError extends Error {
  constructor(message: string, options?: { code?: number | null; kind?: string });
  /** The IPC error code the service sent, if any. */
  readonly code: number | null;
  /**
   * Link: connect | disconnected | timeout | refused | unknown_recipient (a share's recipient
   * is not at the server yet: retry; NK code 0x0100) | protocol | dead | immutable | stopped.
   * Engine: the engine's error code: wrong_password | in_use | no_account | has_account |
   * other_account | unreachable | bad_option | storage | closed | timeout (`synced`) |
   * js (a JavaScript failure) | login codes | …
   */
  readonly kind: string;
}

/** An object shared with this agent. */
export interface Share {
  address: Ghid;
  origin: Ghid;
  apiId: ApiId;
}

/** One object of `HypergolixLink.listObjects()`. */
export interface Listed {
  address: Ghid;
  author: Ghid;
  apiId: ApiId;
  dynamic: boolean;
  /** This agent made it. */
  owned: boolean;
  /** Private to this app token. */
  private: boolean;
  isLink: boolean;
  /** False while the object is still being fetched (size 0, changed null). */
  loaded: boolean;
  /** The state's length in bytes. */
  size: number;
  /** When this device took the current state (null: unknown). */
  changed: Date | null;
}

/** Whether a share reached its recipient. */
export interface ShareResult {
  address: Ghid;
  recipient: Ghid;
  delivered: boolean;
}

export interface NewObjOptions {
  apiId?: ApiId;
  /** The seed's spelling of `apiId`. */
  api_id?: ApiId;
  /** Updatable (default true). */
  dynamic?: boolean;
  /** Visible only to this app token (default false). */
  private?: boolean;
  /** How many earlier targets each frame carries, 0–255 (0: the service's default, 7). */
  legroom?: number;
  /** The seed's spelling of `legroom`. */
  _legroom?: number;
}

/** `AppObj.from` options: `newObj`'s, and the callbacks the object starts with. */
export interface FromOptions extends NewObjOptions {
  callbacks?: Callback[];
  /** The seed's spelling of `callbacks`. */
  threadsafe_callbacks?: Callback[];
  asyncCallbacks?: AsyncCallback[];
  /** The seed's spelling of `asyncCallbacks`. */
  async_callbacks?: AsyncCallback[];
}

export type Callback = (obj: AppObj) => void;
/** Awaited one after another on each update. */
export type AsyncCallback = (obj: AppObj) => Promise<unknown>;

/** Options of `Engine.open` (and `create`, `login`). */
export interface EngineOptions {
  /** The persistence server: ws://… or wss://… */
  server: string;
  password: string;
  /** An existing account (a new device, or this browser's copy). */
  userId?: Ghid | string;
  /** A new account (the database must hold none). */
  create?: boolean;
  /**
   * With `userId`: recover the account with its 12 recovery words, `password`
   * becoming its new password (see `Engine.recover`).
   */
  recoveryWords?: string;
  /** Restore the account of this export file (see `Engine.import`). */
  import?: Uint8Array;
  /** The IndexedDB database (default "hypergolix"). */
  database?: string;
  /** "indexeddb" (default where there is IndexedDB) or "memory" (nothing kept). */
  storage?: 'indexeddb' | 'memory';
  /** Where log lines go (default: console.info). */
  onLog?: (line: string) => void;
  /** How long a login from the server may take (default 30000 ms). */
  timeoutMs?: number;
}

/** Progress of an engine. */
export interface EngineStatus {
  online: boolean;
  /** Everything acknowledged has reached the server. */
  synced: boolean;
  /** Objects known but not read yet (just after a login on a new device). */
  loading: number;
  /** A line per kind of pending work. */
  pending: string[];
}

/** The Hypergolix engine in this page, worker or Node process. */
export class Engine {
  /** Made by `open`, `create` or `login`. */
  private constructor();
  /** Opens with the raw options: create, userId, or this browser's account. */
  static open(options: EngineOptions): Promise<Engine>;
  /** A new account. */
  static create(options: Omit<EngineOptions, 'create' | 'userId'>): Promise<Engine>;
  /** An existing account: this browser's copy, or fetched from the server. */
  static login(options: Omit<EngineOptions, 'create' | 'userId'> & { userId: Ghid | string }): Promise<Engine>;
  /**
   * The password is lost: the account back from its recovery words, under a
   * new `password`. Rejects with `wrong_recovery_words` or
   * `bad_recovery_words`, changing nothing.
   */
  static recover(options: Omit<EngineOptions, 'create' | 'userId' | 'recoveryWords'> & { userId: Ghid | string; recoveryWords: string }): Promise<Engine>;
  /**
   * Restores an account from an export file into a database that holds
   * none; `password` opens the file. Rejects with `corrupt_export` for a
   * damaged or foreign file, `wrong_password`, `has_account`.
   */
  static import(options: Omit<EngineOptions, 'create' | 'userId' | 'import'> & { file: Uint8Array }): Promise<Engine>;
  /** Deletes this browser's copy of an account (default database "hypergolix"). */
  static deleteDatabase(name?: string): Promise<void>;
  /** Set before `open`, `create` or `login` resolves. */
  readonly userId: Ghid;
  readonly identity: Ghid;
  readonly online: boolean;
  readonly closed: boolean;
  readonly failure: string | null;
  readonly database: string;
  readonly server: string;
  /** A new app link (one app session) to this engine. */
  link(): Promise<HypergolixLink>;
  status(): Promise<EngineStatus>;
  /**
   * Resolves once everything acknowledged has reached the server and every
   * known object is read: right after the engine step that gets there (no
   * polling). Rejects with `timeout` (naming what is pending) after
   * `timeoutMs` (default 30 s), or `closed` if the engine stops first.
   */
  synced(options?: { timeoutMs?: number }): Promise<EngineStatus>;
  /** Needs the current password; the server must be connected. */
  changePassword(current: string, password: string): Promise<void>;
  /** The words made with a new account (`create`), once; then null. */
  takeRecoveryWords(): string | null;
  /** New recovery words (the old ones stop working); needs the current password. */
  recoveryWords(password: string): Promise<string>;
  /** The account in one encrypted file, locked with the account password. */
  exportAccount(password: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * Serves one engine per database to every tab of this origin: call it at the
 * top level of a SharedWorker script (or a dedicated Worker where there is
 * no SharedWorker).
 */
export function serveEngines(scope?: unknown): void;

/** A tab's connection to the worker running `serveEngines`. */
export class EngineHost {
  private constructor();
  /** Connects to a SharedWorker (or Worker) running `serveEngines()`. */
  static connect(worker: SharedWorker | Worker): Promise<EngineHost>;
  /** The engine another tab unlocked on this database, or null. */
  attach(options?: { database?: string }): Promise<SharedEngine | null>;
  open(options: Omit<EngineOptions, 'onLog'>): Promise<SharedEngine>;
  create(options: Omit<EngineOptions, 'create' | 'userId' | 'onLog'>): Promise<SharedEngine>;
  login(options: Omit<EngineOptions, 'create' | 'userId' | 'onLog'> & { userId: Ghid | string }): Promise<SharedEngine>;
  recover(options: Omit<EngineOptions, 'create' | 'userId' | 'recoveryWords' | 'onLog'> & { userId: Ghid | string; recoveryWords: string }): Promise<SharedEngine>;
  import(options: Omit<EngineOptions, 'create' | 'userId' | 'import' | 'onLog'> & { file: Uint8Array }): Promise<SharedEngine>;
  /** Locks the engine for every tab, then deletes this browser's copy. */
  deleteDatabase(database?: string): Promise<void>;
}

/** An engine in the shared worker, as one tab sees it (the members of Engine). */
export class SharedEngine {
  private constructor();
  readonly userId: Ghid;
  readonly identity: Ghid;
  /** As of the last `status()`. */
  readonly online: boolean;
  readonly closed: boolean;
  readonly failure: string | null;
  readonly database: string;
  readonly server: string;
  /** Told when any tab locks the engine or deletes its copy. */
  onClosed(fn: (reason: string) => void): void;
  link(): Promise<HypergolixLink>;
  status(): Promise<EngineStatus>;
  synced(options?: { timeoutMs?: number }): Promise<EngineStatus>;
  /** Needs the current password; the server must be connected. */
  changePassword(current: string, password: string): Promise<void>;
  /** The words made with a new account, in the tab that created it, once; then null. */
  takeRecoveryWords(): string | null;
  recoveryWords(password: string): Promise<string>;
  exportAccount(password: string): Promise<Uint8Array>;
  /** Locks it for every tab. */
  close(): Promise<void>;
}

/** An app's link to the local service or to an in-page Engine; reconnects on its own. */
export class HypergolixLink {
  /** Made by `connect` or `Engine.link`. */
  private constructor();
  /**
   * Connects (the global WebSocket; in Node without one, the `ws` package; or the class given).
   * `url`: default `ws://127.0.0.1:7772/`; in Node also `unix:PATH` (`hypergolix start --ipc unix:PATH`).
   */
  static connect(url?: string, options?: { WebSocket?: unknown }): Promise<HypergolixLink>;
  /** The agent's identity: what others share with. */
  readonly whoami: Ghid;
  /** This app's token (16 bytes), once set. */
  readonly token: Uint8Array | null;
  newToken(): Promise<Uint8Array>;
  /** Resolves to the startup object's address, or null. */
  setToken(token: Uint8Array): Promise<Ghid | null>;
  startup(): Promise<Ghid | null>;
  registerStartup(obj: AppObj): Promise<void>;
  deregisterStartup(): Promise<void>;
  registerApi(apiId: ApiId, handler: (share: Share) => void): Promise<void>;
  deregisterApi(apiId: ApiId): Promise<void>;
  onShareResult(handler: (result: ShareResult) => void): void;
  /** The objects this app may see (not private, or private to its token), without reading them. */
  listObjects(): Promise<Listed[]>;
  list_objects(): Promise<Listed[]>;
  /** The account password (`!P`): the current one is checked against the account on the server. */
  changePassword(current: string | Uint8Array, password: string | Uint8Array): Promise<void>;
  change_password(current: string | Uint8Array, password: string | Uint8Array): Promise<void>;
  /** New recovery words (`?W`), given the current password; the old ones stop working. */
  recoveryWords(password: string | Uint8Array): Promise<string>;
  recovery_words(password: string | Uint8Array): Promise<string>;
  get(address: Ghid): Promise<AppObj>;
  newObj(state: Uint8Array | string, options?: NewObjOptions): Promise<AppObj>;
  newLink(target: Ghid, options?: NewObjOptions): Promise<AppObj>;
  close(): void;
  // The original (0.1.0 README) names.
  new_token(): Promise<Uint8Array>;
  set_token(token: Uint8Array): Promise<Ghid | null>;
  register_startup(obj: AppObj): Promise<void>;
  deregister_startup(): Promise<void>;
  register_api(apiId: ApiId, handler: (share: Share) => void): Promise<void>;
  deregister_api(apiId: ApiId): Promise<void>;
  new(state: Uint8Array | string, options?: NewObjOptions): Promise<AppObj>;
  new_link(target: Ghid, options?: NewObjOptions): Promise<AppObj>;
  // The original README's names (its `*_async` and `*_threadsafe` are both these promises).
  readonly app_token: Uint8Array | null;
  new_obj(state: Uint8Array | string, options?: NewObjOptions): Promise<AppObj>;
  get_obj(address: Ghid): Promise<AppObj>;
  /** The object's own method, for an object of this link (`kind` 'foreign' otherwise). */
  update_obj(obj: AppObj, state: Uint8Array | string): Promise<void>;
  share_obj(obj: AppObj, recipient: Ghid): Promise<void>;
  freeze_obj(obj: AppObj): Promise<AppObj>;
  hold_obj(obj: AppObj): Promise<void>;
  discard_obj(obj: AppObj): Promise<void>;
  delete_obj(obj: AppObj): Promise<void>;
}

/** One object; updated live while its link runs. */
export class AppObj {
  /** Made by the link (`get`, `newObj`, `newLink`) or `AppObj.from`. */
  private constructor();
  /** A new object of `link`'s agent with its callbacks in place (the seed's `from_async`). */
  static from(link: HypergolixLink, state: Uint8Array | string, options?: FromOptions): Promise<AppObj>;
  static from_async(link: HypergolixLink, state: Uint8Array | string, options?: FromOptions): Promise<AppObj>;
  readonly address: Ghid;
  readonly author: Ghid;
  readonly apiId: ApiId;
  readonly private: boolean;
  readonly dynamic: boolean;
  readonly owned: boolean;
  readonly mutable: boolean;
  readonly isLink: boolean;
  readonly linkAddress: Ghid | null;
  readonly alive: boolean;
  readonly state: Uint8Array;
  /** As this link made it; 0 for static objects and for objects fetched with `get`. */
  readonly legroom: number;
  setState(state: Uint8Array | string): Promise<void>;
  sync(): Promise<void>;
  share(recipient: Ghid): Promise<void>;
  /** Takes a share back (owner only, dynamic objects only): `recipient` reads nothing published from now on. */
  unshare(recipient: Ghid): Promise<void>;
  /** The identities this agent shared the object with and has not taken it back from. */
  sharedWith(): Promise<Ghid[]>;
  shared_with(): Promise<Ghid[]>;
  freeze(): Promise<AppObj>;
  hold(): Promise<void>;
  discard(): Promise<void>;
  delete(): Promise<void>;
  appendCallback(fn: Callback): Callback;
  prependCallback(fn: Callback): Callback;
  removeCallback(fn: Callback): boolean;
  clearCallbacks(): void;
  readonly callbacks: Callback[];
  appendAsyncCallback(fn: AsyncCallback): AsyncCallback;
  prependAsyncCallback(fn: AsyncCallback): AsyncCallback;
  removeAsyncCallback(fn: AsyncCallback): boolean;
  clearAsyncCallbacks(): void;
  readonly asyncCallbacks: AsyncCallback[];
  // The original (0.1.0 README) names.
  readonly api_id: ApiId;
  readonly is_dynamic: boolean;
  readonly is_owned: boolean;
  readonly is_link: boolean;
  readonly link_address: Ghid | null;
  readonly is_alive: boolean;
  update(state: Uint8Array | string): Promise<void>;
  append_callback(fn: Callback): Callback;
  prepend_callback(fn: Callback): Callback;
  remove_callback(fn: Callback): boolean;
  clear_callbacks(): void;
  readonly _legroom: number;
  append_threadsafe_callback(fn: Callback): Callback;
  prepend_threadsafe_callback(fn: Callback): Callback;
  /** Throws (`kind` 'not_registered') if `fn` is not registered. */
  remove_threadsafe_callback(fn: Callback): void;
  clear_threadsafe_callbacks(): void;
  readonly threadsafe_callbacks: Callback[];
  append_async_callback(fn: AsyncCallback): AsyncCallback;
  prepend_async_callback(fn: AsyncCallback): AsyncCallback;
  /** Throws (`kind` 'not_registered') if `fn` is not registered. */
  remove_async_callback(fn: AsyncCallback): void;
  clear_async_callbacks(): void;
  readonly async_callbacks: AsyncCallback[];
}

/** The 0.1.0 IPC codec. */
export namespace ipc {
  const HEADER_LEN: number;
  const OBJDEF_HEADER_LEN: number;
  const NATIVE_GHIDS_SUBPROTOCOL: string;
  class IpcFormatError extends Error {}
  function encode(code: string, token: number, body?: Uint8Array): Uint8Array;
  function decode(bytes: Uint8Array | ArrayBuffer): { code: string; token: number; body: Uint8Array };
  interface ObjDef {
    address: Ghid | null;
    author: Ghid | null;
    private: boolean;
    dynamic: boolean;
    legroom: number;
    apiId: ApiId | null;
    isLink: boolean;
    state: Uint8Array;
  }
  function parseObjDef(body: Uint8Array): ObjDef;
  /** `legroom` defaults to 0. */
  function packObjDef(def: Omit<ObjDef, 'legroom'> & { legroom?: number }): Uint8Array;
  /** A GHID from exactly 65 bytes (65 zero bytes: null). */
  function ghidOrNull(b: Uint8Array): Ghid | null;
  /** `n` GHIDs packed one after another in `body` (n × 65 bytes, none null). */
  function ghids(body: Uint8Array, n: number): Ghid[];
  function parseNak(body: Uint8Array): { code: number | null; message: string };
  function concat(...parts: Uint8Array[]): Uint8Array;
}
