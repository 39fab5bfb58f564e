// A fresh Vite app using the packed `hypergolix` package: the engine runs in
// this page on IndexedDB. The end-to-end test drives it through `window.hgx`.
import { ApiId, Engine, Ghid } from 'hypergolix';
import { shareWhenKnown } from './share.js';

const now = () => performance.timeOrigin + performance.now();
const text = (b) => new TextDecoder().decode(b);
const app = { engine: null, link: null, objs: new Map(), seen: new Map(), shares: [] };
const api = (n) => new ApiId(new Uint8Array(64).fill(n));

async function attach(engine, apiByte) {
  app.engine = engine;
  app.link = await engine.link();
  await app.link.newToken();
  await app.link.registerApi(api(apiByte), (s) => {
    app.shares.push({ address: s.address.toString(), origin: s.origin.toString(), t: now() });
  });
  document.querySelector('#status').textContent = `ready: ${engine.userId}`;
  return { userId: engine.userId.toString(), identity: engine.identity.toString() };
}

function track(obj) {
  const key = obj.address.toString();
  app.objs.set(key, obj);
  if (!app.seen.has(key)) {
    app.seen.set(key, []);
    obj.appendCallback((o) => app.seen.get(key).push({ state: text(o.state), t: now() }));
  }
  return key;
}

// The same package in a module worker (bundled by Vite as a worker chunk).
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
function ask(msg) {
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.error ? reject(new Error(data.error)) : resolve(data.ok));
    // A worker script that fails to load or throws says so here.
    worker.onerror = (e) => reject(new Error(`the worker failed: ${e.message ?? 'script error'}`));
    worker.postMessage(msg);
  });
}

window.hgx = {
  worker: ask,
  async create(server, password, apiByte) {
    return attach(await Engine.create({ server, password }), apiByte);
  },
  async login(server, userId, password, apiByte) {
    return attach(await Engine.login({ server, userId, password }), apiByte);
  },
  async newObj(state, apiByte) {
    return track(await app.link.newObj(state, { apiId: api(apiByte) }));
  },
  async get(address) {
    return track(await app.link.get(Ghid.fromString(address)));
  },
  state(address) {
    return text(app.objs.get(address).state);
  },
  async setState(address, state) {
    const t = now();
    await app.objs.get(address).setState(state);
    return t;
  },
  // Sets `n` states `${prefix}${i}`, one every `paceMs`; returns when each
  // was set (the bench's paced run: nothing polls the page meanwhile).
  async setStates(address, prefix, n, paceMs) {
    const obj = app.objs.get(address);
    const sent = [];
    for (let i = 0; i < n; i++) {
      const state = `${prefix}${i}`;
      const t = now();
      await obj.setState(state);
      sent.push({ state, t });
      await new Promise((r) => setTimeout(r, paceMs));
    }
    return sent;
  },
  // Retries while the recipient's identity is not at the server yet.
  async share(address, recipient) {
    await shareWhenKnown(app.objs.get(address), Ghid.fromString(recipient));
  },
  async unshare(address, recipient) {
    await app.objs.get(address).unshare(Ghid.fromString(recipient));
  },
  async sharedWith(address) {
    return (await app.objs.get(address).sharedWith()).map((g) => g.toString()).sort();
  },
  seen(address) {
    return app.seen.get(address) ?? [];
  },
  shares() {
    return app.shares;
  },
  async synced() {
    return app.engine.synced();
  },
  // Creates `n` objects one after another; returns objects per second.
  async createRate(n) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await app.link.newObj(`object ${i}`, { dynamic: true });
    return (n * 1000) / (performance.now() - t0);
  },
  async close() {
    app.link?.close();
    await app.engine?.close();
  },
};
document.querySelector('#status').textContent = 'loaded';
