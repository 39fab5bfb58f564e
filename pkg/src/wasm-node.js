// Node.js: read the wasm from the package, and give the engine the browser
// global its server connection uses where Node 20 lacks it: `WebSocket`
// (from `ws`, the package's dependency already). A global that exists is
// left alone.
import { readFile } from 'node:fs/promises';
import { WebSocket as WsSocket } from 'ws';

/**
 * `ws`'s WebSocket with an `error` that never throws, as a browser's: the
 * engine detaches its handlers before it closes a socket, and closing one
 * still connecting makes `ws` emit an `error` then; unheard, it would end
 * the process, where a browser only reports it.
 */
class EngineWebSocket extends WsSocket {
  constructor(...args) {
    super(...args);
    this.on('error', () => {});
  }
}

export async function wasmSource() {
  globalThis.WebSocket ??= EngineWebSocket;
  return readFile(new URL('../wasm/hypergolix_web_bg.wasm', import.meta.url));
}
