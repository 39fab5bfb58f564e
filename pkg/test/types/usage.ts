// Compiled (not run) by `npm test`: the README's uses of the package must
// type-check against index.d.ts under `strict`.
import {
  ApiId, AppObj, Engine, EngineHost, EngineStatus, Ghid, HypergolixError, HypergolixLink, Listed, SharedEngine, serveEngines,
} from 'hypergolix';

export async function inPage(server: string, password: string, friend: Ghid): Promise<void> {
  const engine: Engine = await Engine.create({ server, password });
  console.log('user id:', engine.userId.toString());
  const again: Engine = await Engine.login({ server, userId: engine.userId, password, storage: 'memory' });
  const user: Ghid = engine.userId;
  const link: HypergolixLink = await engine.link();
  const token: Uint8Array = await link.newToken();
  const api = new ApiId(new Uint8Array(64).fill(7));
  await link.registerApi(api, async ({ address, origin }) => {
    const obj: AppObj = await link.get(address);
    obj.appendCallback((o) => console.log(origin.toString(), new TextDecoder().decode(o.state)));
  });
  const note = await link.newObj('buy milk', { apiId: api, dynamic: true, private: false });
  await note.share(friend);
  await note.setState('buy oat milk');
  await note.update(new Uint8Array([1, 2, 3]));
  const s: EngineStatus = await engine.status();
  const n: number = s.loading + s.pending.length;
  await engine.synced({ timeoutMs: 1000 });
  await engine.changePassword('old', 'new');
  const words: string = await engine.recoveryWords('new');
  const once: string | null = engine.takeRecoveryWords();
  const back: Engine = await Engine.recover({ server, userId: user, recoveryWords: words, password: 'newer', storage: 'memory' });
  await back.close();
  const file: Uint8Array = await engine.exportAccount('new');
  const restored: Engine = await Engine.import({ server, file, password: 'new', storage: 'memory' });
  await restored.close();
  void once;
  await Engine.deleteDatabase('hypergolix');
  await again.close();
  await engine.close();
  console.log(user, token, n);
}

export async function viaService(): Promise<void> {
  const link = await HypergolixLink.connect('ws://127.0.0.1:7772/');
  try {
    const o = await link.new('x');
    console.log(o.is_owned, o.api_id.key(), link.whoami.toString());
    // The original README's names.
    const seed: AppObj = await AppObj.from_async(link, 'y', {
      api_id: ApiId.default(), _legroom: 3, threadsafe_callbacks: [(x) => console.log(x.state)],
      async_callbacks: [async (x) => { await x.sync(); }],
    });
    await link.update_obj(seed, 'z');
    const again: AppObj = await link.get_obj(seed.address);
    again.remove_threadsafe_callback(again.threadsafe_callbacks[0]);
    console.log(link.app_token, seed._legroom, (await link.freeze_obj(seed)).is_dynamic);
  } catch (e) {
    if (e instanceof HypergolixError) console.log(e.kind, e.code);
  }
  link.close();
}

export async function sharedAcrossTabs(server: string, password: string): Promise<void> {
  // The worker script: `serveEngines()`; the tab:
  serveEngines;
  const host: EngineHost = await EngineHost.connect(
    new SharedWorker(new URL('./engine-worker.js', import.meta.url), { type: 'module' }),
  );
  const engine: SharedEngine = (await host.attach()) ?? await host.open({ server, password });
  engine.onClosed((reason: string) => console.log('closed:', reason));
  const link = await engine.link();
  const listed: Listed[] = await link.listObjects();
  for (const o of listed) console.log(o.address.toString(), o.author, o.apiId, o.size, o.changed?.toISOString(), o.loaded);
  await engine.synced({ timeoutMs: 1000 });
  await engine.close();
  await host.deleteDatabase();
}
