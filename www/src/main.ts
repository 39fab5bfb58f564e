// The Hypergolix web app: create an account or log in, see and edit this
// agent's objects and those shared with it, share and unshare, all with the
// engine of the npm package `hypergolix` running in a SharedWorker that every
// tab of the app shares.
import './style.css';
import { EngineHost, HypergolixLink, type SharedEngine } from 'hypergolix';
import { h, put } from './dom';
import { explain } from './errors';
import { showWords } from './recovery';
import { showWelcome } from './welcome';
import { showMain } from './objects';

/** The IndexedDB database the app keeps its account in. */
export const DATABASE = 'hypergolix';

const root = document.getElementById('app') as HTMLElement;

/** What this browser remembers outside the engine (nothing secret). */
export const remembered = {
  get account(): { userId: string; server: string } | null {
    try {
      return JSON.parse(localStorage.getItem('hgx.account') ?? 'null');
    } catch {
      return null;
    }
  },
  set account(a: { userId: string; server: string } | null) {
    if (a) localStorage.setItem('hgx.account', JSON.stringify(a));
    else localStorage.removeItem('hgx.account');
  },
};

/**
 * The persistence server: `?server=` in the address, else the one this
 * browser last used, else `VITE_HGX_SERVER` at build time, else the server
 * that served the app (`hypergolix serve --www`).
 */
export function defaultServer(): string {
  const q = new URLSearchParams(location.search).get('server');
  if (q) return q;
  const env = import.meta.env.VITE_HGX_SERVER as string | undefined;
  return remembered.account?.server ?? env ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
}

function startWorker(): SharedWorker | Worker {
  if (typeof SharedWorker !== 'undefined') {
    return new SharedWorker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'hypergolix-engine' });
  }
  // No SharedWorker (Chrome on Android): an engine for this tab only; a
  // second tab is told the account is open elsewhere.
  return new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module', name: 'hypergolix-engine' });
}

/** The app's screens: welcome (no engine) or the objects of an unlocked account. */
export const app = {
  host: null as EngineHost | null,
  welcome(notice?: string) {
    if (!app.host) return;
    showWelcome(root, app.host, notice);
  },
  async enter(engine: SharedEngine) {
    remembered.account = { userId: engine.userId.toString(), server: engine.server };
    // A new account: its recovery words, once, before anything else.
    const words = engine.takeRecoveryWords();
    if (words) await showWords(root, words, false);
    await showMain(root, engine);
  },
  /** Uses the Hypergolix service of this computer (`hypergolix start`) instead. */
  async enterService(url: string) {
    const link = await HypergolixLink.connect(url);
    await showMain(root, null, link);
  },
  /** A screen for what stopped the app: never a blank page. */
  fatal(e: unknown) {
    console.error(e);
    put(
      root,
      h('main', { class: 'card narrow', 'aria-labelledby': 'fatal-h' },
        h('h1', { id: 'fatal-h' }, 'Hypergolix could not start'),
        h('p', { role: 'alert' }, explain(e)),
        h('button', { type: 'button', onclick: () => location.reload() }, 'Reload')),
    );
  },
};

async function registerServiceWorker() {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register('./sw.js', { scope: './' });
  } catch (e) {
    console.warn('offline use is not available:', e);
  }
}

async function boot() {
  void registerServiceWorker();
  app.host = await EngineHost.connect(startWorker());
  const engine = await app.host.attach({ database: DATABASE });
  if (engine) await app.enter(engine);
  else app.welcome();
}

window.addEventListener('unhandledrejection', (ev) => console.error('unhandled:', ev.reason));
boot().catch(app.fatal);
