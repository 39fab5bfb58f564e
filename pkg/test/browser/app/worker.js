// The package inside a module Web Worker: an engine of its own (IndexedDB
// database "worker"), driven by messages from the page.
import { ApiId, Engine, Ghid } from 'hypergolix';

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
      for (let i = 0; ; i++) {
        try {
          await obj.share(Ghid.fromString(data.to));
          break;
        } catch (e) {
          if (i > 200 || !/not known/.test(e.message)) throw e;
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      self.postMessage({ ok: { address: obj.address.toString() } });
    }
  } catch (e) {
    self.postMessage({ error: `${e.kind ?? ''}: ${e.message}` });
  }
};
