// The main screen of an unlocked account: status, the account's ids, the
// objects (live), one object opened (view, edit, share, freeze, delete) and
// the settings.
import { ApiId, Ghid, type AppObj, type HypergolixLink, type Listed, type SharedEngine } from 'hypergolix';
import { renderSVG } from 'uqr';
import { copy, field, h, put } from './dom';
import { explain } from './errors';
import { app, remembered } from './main';
import { scanButton } from './scan';
import { showSettings } from './settings';

/** The api_id of the objects this app makes (64 bytes: the name, zero-padded). */
export const TEXT_API = (() => {
  const b = new Uint8Array(64);
  b.set(new TextEncoder().encode('hypergolix.www/document'));
  return new ApiId(b);
})();

const POLL_MS = 1000;

function short(g: Ghid | string): string {
  const t = g.toString();
  return `${t.slice(0, 8)}…${t.slice(-4)}`;
}

function when(d: Date | null): string {
  if (!d) return '—';
  const s = (Date.now() - d.getTime()) / 1000;
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return d.toLocaleDateString();
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const decoder = new TextDecoder('utf-8', { fatal: true });
function asText(b: Uint8Array): string | null {
  try {
    return decoder.decode(b);
  } catch {
    return null;
  }
}

function hexdump(b: Uint8Array): string {
  const lines: string[] = [];
  for (let at = 0; at < b.length; at += 16) {
    const row = b.subarray(at, at + 16);
    const hex = Array.from(row, (x) => x.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${at.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n') || '(empty)';
}

type View = 'text' | 'json' | 'hex';

/** A small QR code (SVG) of `text`, with its label. */
function qr(label: string, text: string): HTMLElement {
  const fig = h('figure', { class: 'qr' });
  fig.innerHTML = renderSVG(text, { border: 2 });
  const svg = fig.querySelector('svg');
  svg?.setAttribute('role', 'img');
  svg?.setAttribute('aria-label', `QR code of your ${label}`);
  fig.append(h('figcaption', {}, `Scan to copy your ${label}`));
  return fig;
}

function idRow(label: string, value: string, hint: string): HTMLElement {
  const copied = h('span', { class: 'copied', role: 'status' });
  const qrSlot = h('div', {});
  return h('div', { class: 'id-row' },
    h('dt', {}, label),
    h('dd', {},
      h('code', { class: 'ghid', 'data-testid': label.toLowerCase().replace(' ', '-') }, value),
      h('button', {
        type: 'button', 'aria-label': `Copy your ${label.toLowerCase()}`,
        onclick: async () => { copied.textContent = (await copy(value)) ? 'Copied.' : 'Copy failed: select the text instead.'; },
      }, 'Copy'),
      h('button', {
        type: 'button', 'aria-label': `Show a QR code of your ${label.toLowerCase()}`, 'aria-expanded': 'false',
        onclick: (ev: Event) => {
          const b = ev.currentTarget as HTMLButtonElement;
          const open = b.getAttribute('aria-expanded') !== 'true';
          b.setAttribute('aria-expanded', String(open));
          put(qrSlot, open ? qr(label.toLowerCase(), value) : null);
        },
      }, 'QR code'),
      copied,
      h('small', { class: 'hint' }, hint),
      qrSlot));
}

/**
 * The account's screen, on the engine in this browser (`engine`), or on the
 * Hypergolix service of this computer (`engine` null, `link` to it: its
 * account, its server; the service syncs on its own).
 */
export async function showMain(root: HTMLElement, engine: SharedEngine | null, serviceLink?: HypergolixLink): Promise<void> {
  const link: HypergolixLink = engine ? await engine.link() : (serviceLink as HypergolixLink);
  const me = link.whoami;
  const opened = new Map<string, AppObj>();
  let selected: string | null = null;
  let listing: Listed[] = [];
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' }, 'Connecting…');
  const banner = h('div', { class: 'banners' });
  const listBody = h('tbody', {});
  const listEmpty = h('p', { class: 'empty' }, 'No objects yet: make one with “New object”.');
  const detail = h('section', { class: 'detail', 'aria-labelledby': 'detail-h', hidden: true });
  const errors = h('p', { class: 'error', role: 'alert' });
  const settingsSlot = h('div', {});

  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    link.close();
  };
  engine?.onClosed((reason) => {
    stop();
    if (reason === 'deleted') remembered.account = null;
    app.welcome(reason === 'deleted' ? 'This browser’s copy was deleted.' : 'Locked. Unlock to go on.');
  });
  const disconnect = () => {
    stop();
    app.welcome('Disconnected from the service on this computer.');
  };

  // ---- status, every second: online, synced or N pending
  async function refresh() {
    if (stopped) return;
    try {
      // The local service reports no sync state over IPC: it syncs on its own.
      const s = engine ? await engine.status() : { online: true, synced: true, loading: 0, pending: [] };
      const pending = s.pending.length;
      status.className = `status ${s.online ? 'online' : 'offline'}`;
      const sync = s.synced ? (s.online ? 'everything synced' : 'nothing waiting to be sent') : `${pending} pending`;
      status.textContent = `${s.online ? 'Online' : 'Offline'} · ${sync}`
        + `${s.loading ? ` · fetching ${s.loading}` : ''}`
        + `${!s.online && !s.synced ? ' (kept here, sent when the server is back)' : ''}`;
      const next = await link.listObjects();
      // Rows whose content (or relative time) did not change are kept as they are.
      listing = next;
      renderList();
    } catch (e) {
      if ((e as { kind?: string }).kind === 'closed') return;
      status.className = 'status offline';
      status.textContent = explain(e);
    }
    if (!stopped) timer = setTimeout(refresh, POLL_MS);
  }

  // ---- the list
  // Rows are kept per address and updated in place, and keep their places:
  // objects new to this page go on top (latest change first), and nothing
  // moves under the pointer while the list updates.
  const rows = new Map<string, { tr: HTMLTableRowElement; key: string }>();
  let order: string[] = [];
  function renderList() {
    const byAddr = new Map(listing.map((o) => [o.address.toString(), o]));
    const fresh = listing.filter((o) => !rows.has(o.address.toString()))
      .sort((a, b) => (b.changed?.getTime() ?? Infinity) - (a.changed?.getTime() ?? Infinity)
        || a.address.toString().localeCompare(b.address.toString()))
      .map((o) => o.address.toString());
    order = [...fresh, ...order.filter((a) => byAddr.has(a) && !fresh.includes(a))];
    const sorted = order.map((a) => byAddr.get(a) as Listed);
    listEmpty.hidden = sorted.length > 0;
    const live = new Set<string>();
    const trs = sorted.map((o) => {
      const addr = o.address.toString();
      live.add(addr);
      const key = JSON.stringify([o, addr === selected, when(o.changed)]);
      let row = rows.get(addr);
      if (!row) {
        row = { tr: h('tr', { 'data-address': addr }), key: '' };
        rows.set(addr, row);
      }
      if (row.key !== key) {
        row.key = key;
        row.tr.className = addr === selected ? 'selected' : '';
        put(row.tr,
          h('td', {}, h('button', {
            type: 'button', class: 'link', 'aria-label': `Open object ${short(addr)}`,
            onclick: () => open(addr),
          }, short(addr))),
          h('td', {}, o.author.equals(me) ? 'you' : h('code', { title: o.author.toString() }, short(o.author))),
          h('td', {}, o.apiId.equals(TEXT_API) ? 'document' : h('code', { title: o.apiId.toString() }, short(o.apiId.toString()))),
          h('td', {}, o.isLink ? 'link' : o.dynamic ? 'dynamic' : 'static'),
          h('td', {}, o.loaded ? when(o.changed) : 'fetching…'),
          h('td', { class: 'num' }, o.loaded ? bytes(o.size) : '—'));
      }
      return row.tr;
    });
    for (const addr of rows.keys()) if (!live.has(addr)) rows.delete(addr);
    if (trs.some((tr, i) => listBody.children[i] !== tr) || listBody.children.length !== trs.length) {
      listBody.replaceChildren(...trs);
    }
  }

  // ---- one object
  let view: View = 'text';
  let editing = false;
  let changedMeanwhile = false;

  /** Keeps `obj` (its updates re-render it while it is open). */
  function track(obj: AppObj): AppObj {
    const addr = obj.address.toString();
    opened.set(addr, obj);
    obj.appendCallback((o) => {
      if (selected !== addr) return;
      if (editing && o.alive) {
        changedMeanwhile = true;
        renderNotice();
      } else void renderDetail();
    });
    return obj;
  }

  async function open(addr: string) {
    errors.textContent = '';
    try {
      let obj = opened.get(addr);
      if (!obj || !obj.alive) obj = track(await link.get(Ghid.fromString(addr)));
      selected = addr;
      editing = false;
      view = asText(obj.state) === null ? 'hex' : 'text';
      renderList();
      await renderDetail();
      (detail.querySelector('h2') as HTMLElement | null)?.focus();
    } catch (e) {
      errors.textContent = explain(e);
    }
  }

  const notice = h('p', { class: 'notice', role: 'status' });
  function renderNotice() {
    notice.hidden = !changedMeanwhile;
    put(notice, changedMeanwhile
      ? ['Someone changed this object while you were editing. ',
        h('button', {
          type: 'button', onclick: () => { editing = false; changedMeanwhile = false; renderDetail(); },
        }, 'Show their version (drops your edit)')]
      : null);
  }

  let renders = 0;
  async function renderDetail() {
    renders += 1;
    const mine = renders;
    const obj = selected ? opened.get(selected) : undefined;
    if (!obj) {
      detail.hidden = true;
      return;
    }
    detail.hidden = false;
    if (!obj.alive) {
      put(detail, h('h2', { id: 'detail-h', tabindex: -1 }, `Object ${short(obj.address)}`),
        h('p', { role: 'status' }, 'This object was deleted.'));
      return;
    }
    const state = obj.state;
    const text = asText(state);
    const canEdit = obj.owned && obj.dynamic && !obj.isLink && text !== null;
    const viewer = h('div', { class: 'viewer' });
    const showView = () => {
      if (view === 'hex') put(viewer, h('pre', { class: 'hex', 'aria-label': 'content as hex' }, hexdump(state)));
      else if (text === null) put(viewer, h('p', {}, 'Not text: shown as hex.'), h('pre', { class: 'hex' }, hexdump(state)));
      else if (view === 'json') {
        try {
          put(viewer, h('pre', { class: 'json', 'aria-label': 'content as JSON' }, JSON.stringify(JSON.parse(text), null, 2)));
        } catch {
          put(viewer, h('p', {}, 'Not JSON: shown as text.'), h('pre', { class: 'text' }, text));
        }
      } else put(viewer, h('pre', { class: 'text', 'aria-label': 'content as text' }, text || '(empty)'));
    };
    const viewSwitch = h('fieldset', { class: 'views' }, h('legend', {}, 'Show as'),
      ...(['text', 'json', 'hex'] as View[]).map((v) => {
        const id = `view-${v}`;
        const input = h('input', { type: 'radio', name: 'view', id, value: v, checked: view === v });
        input.addEventListener('change', () => { view = v; showView(); });
        return h('span', {}, input, h('label', { for: id }, v === 'json' ? 'JSON' : v === 'hex' ? 'Hex' : 'Text'));
      }));
    showView();

    let editor: HTMLElement | null = null;
    if (canEdit) {
      const area = h('textarea', { name: 'content', rows: 8, spellcheck: false });
      area.value = view === 'json' && text ? prettyOr(text) : text ?? '';
      const saveErr = h('p', { class: 'error', role: 'alert' });
      const save = h('button', { type: 'submit' }, 'Save');
      area.addEventListener('input', () => { editing = true; });
      editor = h('form', { class: 'editor', 'aria-label': 'Edit' },
        field('Content', area, view === 'json' ? 'Saved only if it is valid JSON.' : undefined),
        h('div', { class: 'row' }, save), saveErr);
      editor.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        saveErr.textContent = '';
        if (view === 'json') {
          try { JSON.parse(area.value); } catch (e) {
            saveErr.textContent = `Not valid JSON: ${(e as Error).message}`;
            return;
          }
        }
        save.disabled = true;
        try {
          await obj.setState(area.value);
          editing = false;
          changedMeanwhile = false;
          await renderDetail();
          renderList();
        } catch (e) {
          saveErr.textContent = explain(e);
        } finally {
          save.disabled = false;
        }
      });
    }

    const actions = h('div', { class: 'row actions' });
    const actErr = h('p', { class: 'error', role: 'alert' });
    const act = (label: string, f: () => Promise<unknown>, confirmText?: string) => h('button', {
      type: 'button',
      onclick: async (ev: Event) => {
        const b = ev.currentTarget as HTMLButtonElement;
        if (confirmText && b.dataset.armed !== 'yes') {
          b.dataset.armed = 'yes';
          b.textContent = confirmText;
          return;
        }
        actErr.textContent = '';
        b.disabled = true;
        try { await f(); } catch (e) { actErr.textContent = explain(e); b.disabled = false; }
      },
    }, label);
    if (obj.dynamic && !obj.isLink) {
      actions.append(act('Freeze a copy', async () => {
        const copyObj = track(await obj.freeze());
        await open(copyObj.address.toString());
      }));
    }
    actions.append(act('Delete', async () => {
      await obj.delete();
      selected = null;
      detail.hidden = true;
      renderList();
    }, obj.owned ? 'Really delete? It goes for everyone it is shared with' : 'Really delete your copy?'));

    const sharing = await renderSharing(obj);
    // Another object was opened (or this one re-rendered) meanwhile.
    if (renders !== mine) return;
    put(detail,
      h('h2', { id: 'detail-h', tabindex: -1 }, `Object ${short(obj.address)}`),
      h('dl', { class: 'props' },
        h('dt', {}, 'Address'), h('dd', {}, h('code', { class: 'ghid' }, obj.address.toString())),
        h('dt', {}, 'Author'), h('dd', {}, obj.author.equals(me) ? 'you' : h('code', { class: 'ghid' }, obj.author.toString())),
        h('dt', {}, 'Kind'), h('dd', {}, `${obj.dynamic ? 'dynamic' : 'static'}${obj.private ? ', private' : ''}${obj.isLink ? ', link' : ''}`),
        h('dt', {}, 'Size'), h('dd', {}, bytes(state.length))),
      viewSwitch, viewer, notice, editor, actions, actErr, sharing);
    renderNotice();
  }

  async function renderSharing(obj: AppObj): Promise<HTMLElement | null> {
    if (obj.private) return null;
    const box = h('section', { class: 'sharing', 'aria-labelledby': 'sharing-h' }, h('h3', { id: 'sharing-h' }, 'Sharing'));
    const to = h('input', { type: 'text', name: 'recipient', spellcheck: false, required: true, autocomplete: 'off' });
    const err = h('p', { class: 'error', role: 'alert' });
    const form = h('form', { class: 'share', 'aria-label': 'Share' },
      field('Share with (their identity)', to, 'Paste the identity they copied from their account.'),
      scanButton(to, 'their identity'),
      h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Share')), err);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      let g: Ghid;
      try { g = Ghid.fromString(to.value.trim()); } catch {
        err.textContent = 'That is not an identity: it is the 88 characters shown as “Identity” in their account.';
        return;
      }
      if (g.equals(me)) {
        err.textContent = 'That is your own identity: your devices share everything already.';
        return;
      }
      try {
        await obj.share(g);
        to.value = '';
        await renderDetail();
      } catch (e) {
        err.textContent = explain(e);
      }
    });
    box.append(form);
    if (obj.owned) {
      let withWhom: Ghid[] = [];
      try { withWhom = await obj.sharedWith(); } catch { /* shown as none */ }
      box.append(h('h4', {}, 'Shared with'), withWhom.length === 0
        ? h('p', {}, 'Nobody yet.')
        : h('ul', { class: 'recipients' }, withWhom.map((r) => h('li', {},
          h('code', { title: r.toString() }, short(r)),
          obj.dynamic
            ? h('button', {
              type: 'button', 'aria-label': `Unshare from ${short(r)}`,
              onclick: async () => {
                try { await obj.unshare(r); await renderDetail(); } catch (e) { err.textContent = explain(e); }
              },
            }, 'Unshare')
            : null))));
      if (!obj.dynamic) box.append(h('p', { class: 'hint' }, 'A static object cannot be taken back: delete it instead.'));
    }
    return box;
  }

  // ---- new object
  function newForm(): HTMLElement {
    const content = h('textarea', { name: 'content', rows: 4, required: true });
    const format = h('select', { name: 'format' },
      h('option', { value: 'text' }, 'Text'), h('option', { value: 'json' }, 'JSON'));
    const dyn = h('input', { type: 'checkbox', name: 'dynamic', checked: true });
    const err = h('p', { class: 'error', role: 'alert' });
    const form = h('form', { class: 'new', 'aria-labelledby': 'new-h' },
      h('h2', { id: 'new-h' }, 'New object'),
      field('Content', content), field('Format', format),
      h('div', { class: 'field check' }, dyn, h('label', { for: (dyn.id ||= 'new-dynamic') }, 'Can be changed later (dynamic)')),
      h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Create')), err);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      if (format.value === 'json') {
        try { JSON.parse(content.value); } catch (e) {
          err.textContent = `Not valid JSON: ${(e as Error).message}`;
          return;
        }
      }
      try {
        const obj = track(await link.newObj(content.value, { apiId: TEXT_API, dynamic: dyn.checked }));
        content.value = '';
        listing = await link.listObjects();
        await open(obj.address.toString());
      } catch (e) {
        err.textContent = explain(e);
      }
    });
    return form;
  }

  // ---- storage persistence
  async function askPersistence() {
    const st = navigator.storage;
    if (!st?.persist) return;
    const kept = (await st.persisted?.()) || (await st.persist().catch(() => false));
    put(banner, kept ? null : h('p', { class: 'notice warn', role: 'status' },
      'This browser may delete its copy of your account when it runs low on space. ',
      'What reached the server is safe; changes made offline are not until they are sent. ',
      'Installing the app or bookmarking it usually lets the browser keep it.'));
  }

  put(root,
    h('header', { class: 'top' },
      h('h1', {}, 'Hypergolix'), status,
      engine
        ? h('p', { class: 'server' }, 'Server: ', h('code', {}, engine.server))
        : h('p', { class: 'server' }, 'Through the Hypergolix service on this computer'),
      h('button', {
        type: 'button', 'aria-expanded': 'false', onclick: (ev: Event) => {
          const b = ev.currentTarget as HTMLButtonElement;
          const openNow = b.getAttribute('aria-expanded') !== 'true';
          b.setAttribute('aria-expanded', String(openNow));
          put(settingsSlot, !openNow ? null : engine ? showSettings(engine, () => { b.click(); })
            : h('section', { class: 'settings card', 'aria-labelledby': 'settings-h' },
              h('h2', { id: 'settings-h' }, 'Settings'),
              h('p', {}, 'The service on this computer holds the account: its password and server are set with ',
                h('code', {}, 'hypergolix config'), '.'),
              h('div', { class: 'row' }, h('button', { type: 'button', onclick: disconnect }, 'Disconnect'))));
        },
      }, 'Settings')),
    banner,
    settingsSlot,
    h('main', {},
      h('section', { class: 'account', 'aria-labelledby': 'account-h' },
        h('h2', { id: 'account-h' }, 'Your account'),
        h('dl', {},
          engine ? idRow('User id', engine.userId.toString(), 'Logs in on another device, with your password.') : null,
          idRow('Identity', me.toString(), 'Give it to people who want to share with you.'))),
      newForm(),
      h('section', { class: 'objects', 'aria-labelledby': 'objects-h' },
        h('h2', { id: 'objects-h' }, 'Objects'),
        errors,
        h('table', {},
          h('caption', { class: 'sr-only' }, 'Your objects and those shared with you, latest change first'),
          h('thead', {}, h('tr', {}, ...['Object', 'Author', 'Type', 'Kind', 'Changed', 'Size'].map((c) => h('th', { scope: 'col' }, c)))),
          listBody),
        listEmpty),
      detail));
  void askPersistence();
  await refresh();
}

function prettyOr(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
