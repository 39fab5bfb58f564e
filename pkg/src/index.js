// hypergolix: the npm package. The link to the local Hypergolix service, and
// the engine itself for pages, workers and Node.
export { ApiId, Ghid, fromBase64Url, toBase64Url } from './ghid.js';
export { AppObj, DEFAULT_URL, HypergolixError, HypergolixLink } from './link.js';
export { Engine } from './engine.js';
export { EngineHost, SharedEngine, serveEngines } from './shared.js';
export * as ipc from './ipc.js';
