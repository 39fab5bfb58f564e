// Node.js: read the wasm from the package, and give the engine the browser
// globals its server connection (gloo-net) uses, where Node 20 lacks them:
// `WebSocket` (from `ws`, the package's dependency already) and
// `CloseEvent`. Globals that exist are left alone.
import { readFile } from 'node:fs/promises';
import { WebSocket as WsSocket } from 'ws';

/**
 * `ws`'s WebSocket as a browser's behaves where gloo-net relies on it:
 * `dispatchEvent` for `close` (dropping a socket, gloo-net dispatches a
 * synthetic close event to retire its one-shot close listener, which would
 * otherwise fire into a freed closure later), and an `error` that never
 * throws (closing a socket still connecting makes `ws` emit one after
 * gloo-net removed its listeners; an unheard `error` event would end the
 * process, where a browser only reports it).
 */
class EngineWebSocket extends WsSocket {
  constructor(...args) {
    super(...args);
    this.on('error', () => {});
  }

  dispatchEvent(event) {
    if (event?.type === 'close') this.emit('close', event.code ?? 1000, Buffer.from(event.reason ?? ''));
    return true;
  }
}

class CloseEvent extends Event {
  constructor(type, init = {}) {
    super(type);
    this.code = init.code ?? 0;
    this.reason = init.reason ?? '';
    this.wasClean = init.wasClean ?? false;
  }
}

export async function wasmSource() {
  globalThis.WebSocket ??= EngineWebSocket;
  globalThis.CloseEvent ??= CloseEvent;
  return readFile(new URL('../wasm/hypergolix_web_bg.wasm', import.meta.url));
}
