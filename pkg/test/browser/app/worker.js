// The package inside a module Web Worker: an engine of its own (IndexedDB
// database "worker"), driven by messages from the page.
import { ApiId, Engine, Ghid } from 'hypergolix';
import { shareWhenKnown } from './share.js';

let engine = null;
let link = null;

self.onmessage = async ({ data }) => {
  try {
    if (data.op === 'create') {
      engine = await Engine.create({ server: data.server, password: data.password, database: 'worker' });
      link = await engine.link();
      await link.newToken();
      self.postMessage({ ok: { identity: engine.identity.toString() } });
    } else if (data.op === 'share') {
      const obj = await link.newObj(data.state, { apiId: new ApiId(new Uint8Array(64).fill(data.api)) });
      await shareWhenKnown(obj, Ghid.fromString(data.to));
      self.postMessage({ ok: { address: obj.address.toString() } });
    }
  } catch (e) {
    self.postMessage({ error: `${e.kind ?? ''}: ${e.message}` });
  }
};
