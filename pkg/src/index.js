// hypergolix: the npm package. The link to the local Hypergolix service.
export { ApiId, Ghid, fromBase64Url, toBase64Url } from './ghid.js';
export { AppObj, DEFAULT_URL, HypergolixError, HypergolixLink } from './link.js';
export * as ipc from './ipc.js';
