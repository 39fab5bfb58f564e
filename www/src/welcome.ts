// The screen before an account is open: unlock this browser's copy, create
// an account, or log in on this (new) device with user id + password.
import { Ghid, type EngineHost, type SharedEngine } from 'hypergolix';
import { field, h, put } from './dom';
import { explain, said } from './errors';
import { app, DATABASE, defaultServer, remembered } from './main';
import { importFields, recover, recoverFields } from './recovery';
import { scanButton } from './scan';
import { strength } from './strength';

/** A password input with a strength meter under it. */
export function passwordWithStrength(label: string, autocomplete: string) {
  const input = h('input', { type: 'password', name: 'password', autocomplete, required: true, minlength: 8 });
  const meter = h('meter', { min: 0, max: 4, value: 0, 'aria-label': 'password strength' });
  const words = h('span', {}, 'Choose a password (8 characters or more).');
  input.addEventListener('input', () => {
    const s = strength(input.value);
    meter.value = s.score;
    words.textContent = `Strength: ${s.label}. ${s.advice}`;
  });
  return { input, row: field(label, input, h('span', { class: 'strength' }, meter, ' ', words)) };
}

function serverField() {
  const input = h('input', { type: 'url', name: 'server', value: defaultServer(), required: true, autocomplete: 'url' });
  // A server named by the link that opened the app is shown, never silently used.
  const fromLink = new URLSearchParams(location.search).has('server');
  const row = h('details', { class: 'server', open: fromLink },
    h('summary', {}, 'Server'),
    fromLink ? h('p', { class: 'notice warn' }, 'The link that opened this page chose this server. Use it only if you trust whoever sent the link.') : null,
    field('Persistence server address', input, 'A ws:// or wss:// address. It stores only encrypted data.'));
  return { input, row };
}

type Submit = (form: HTMLFormElement) => Promise<SharedEngine>;

/**
 * A form whose submit opens an engine: the button is busy meanwhile (key
 * derivation takes a moment, in the worker), errors appear under it.
 */
function engineForm(title: string, id: string, button: string, busy: string, fields: (Node | null)[], submit: Submit) {
  const error = h('p', { class: 'error', role: 'alert' });
  const go = h('button', { type: 'submit' }, button);
  const form = h('form', { 'aria-labelledby': `${id}-h`, novalidate: true },
    h('h2', { id: `${id}-h` }, title), ...fields, go, error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!form.checkValidity()) {
      const bad = form.querySelector(':invalid') as HTMLInputElement | null;
      error.textContent = bad?.validationMessage
        ? `${bad.labels?.[0]?.textContent ?? 'A field'}: ${bad.validationMessage}`
        : 'Please fill in every field.';
      bad?.focus();
      return;
    }
    go.disabled = true;
    go.textContent = busy;
    form.setAttribute('aria-busy', 'true');
    try {
      // An engine already unlocked (another tab, or an earlier try whose
      // screen failed) is joined, not opened again.
      await app.enter((await app.host?.attach({ database: DATABASE })) ?? await submit(form));
    } catch (e) {
      const server = (form.elements.namedItem('server') as HTMLInputElement | null)?.value;
      error.textContent = explain(e, server);
      go.disabled = false;
      go.textContent = button;
      form.removeAttribute('aria-busy');
    }
  });
  return form;
}

/**
 * Forgot the password: the recovery words and a new one. Over this
 * browser's copy, it replaces the copy only once the words open the account.
 */
function recoverForm(host: EngineHost, userId: string | null, server: string | null): HTMLElement {
  const { input: pw, row } = passwordWithStrength('New password', 'new-password');
  const again = h('input', { type: 'password', name: 'again', autocomplete: 'new-password', required: true });
  const srv = serverField();
  if (server) srv.input.value = server;
  const { fields, check } = recoverFields(userId, srv.row, row, again);
  const form = engineForm('Recover with your recovery words', 'recover', 'Recover account', 'Recovering…', fields,
    async () => recover(host, srv.input.value, pw.value, check(pw.value), DATABASE));
  return h('details', { class: 'recover' }, h('summary', {}, 'Forgot your password?'), form);
}

/** An export file brings the account into this browser (which holds none). */
function importForm(host: EngineHost): HTMLElement {
  const srv = serverField();
  const { fields, read } = importFields(srv.row);
  const form = engineForm('Restore from an export file', 'import', 'Restore', 'Restoring…', fields,
    async () => host.import({ server: srv.input.value, database: DATABASE, ...(await read()) }));
  return h('details', { class: 'recover' }, h('summary', {}, 'Restore from an export file'), form);
}

export function showWelcome(root: HTMLElement, host: EngineHost, notice?: string): void {
  const saved = remembered.account;
  const forms: HTMLElement[] = [];

  if (saved) {
    const pw = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
    forms.push(engineForm('Unlock', 'unlock', 'Unlock', 'Unlocking…', [
      h('p', {}, 'This browser holds the account ', h('code', { class: 'ghid' }, saved.userId), '.'),
      field('Password', pw),
    ], () => host.open({ server: saved.server, password: pw.value, database: DATABASE })));
    forms.push(recoverForm(host, saved.userId, saved.server));
  } else {
    const { input: pw, row } = passwordWithStrength('Password', 'new-password');
    const again = h('input', { type: 'password', name: 'again', autocomplete: 'new-password', required: true });
    const srv = serverField();
    forms.push(engineForm('Create an account', 'create', 'Create account', 'Creating your account…', [
      h('p', {}, 'Everything is encrypted in this browser before it is stored or shared.'),
      row, field('Password again', again), srv.row,
    ], async () => {
      if (pw.value !== again.value) throw said('The two passwords differ.');
      if (pw.value.length < 8) throw said('The password needs 8 characters or more.');
      return host.create({ server: srv.input.value, password: pw.value, database: DATABASE });
    }));

    const user = h('input', { type: 'text', name: 'userId', autocomplete: 'username', required: true, spellcheck: false });
    const lpw = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
    const lsrv = serverField();
    forms.push(engineForm('Log in on this device', 'login', 'Log in', 'Logging in…', [
      h('p', {}, 'Your user id and password from another device.'),
      field('User id', user, '88 characters, shown on your other device.'), scanButton(user, 'your user id'),
      field('Password', lpw), lsrv.row,
    ], async () => {
      try {
        Ghid.fromString(user.value.trim());
      } catch {
        throw said('That is not a user id: it is the 88 characters shown as “User id” on your other device.');
      }
      // 20 s to reach the server and get the account (not the engine's 30 s:
      // someone is waiting in front of the button).
      return host.login({
        server: lsrv.input.value, userId: user.value.trim(), password: lpw.value, database: DATABASE, timeoutMs: 20_000,
      });
    }));
    forms.push(recoverForm(host, null, null));
    forms.push(importForm(host));
  }

  // The service of this computer, where the user runs one and allows this page.
  const svcUrl = h('input', { type: 'url', name: 'service', value: 'ws://127.0.0.1:7772/', required: true });
  const svcErr = h('p', { class: 'error', role: 'alert' });
  const svcGo = h('button', { type: 'submit' }, 'Connect');
  const svcForm = h('form', { 'aria-labelledby': 'svc-h', class: 'service' },
    h('h2', { id: 'svc-h' }, 'Use this computer’s service'),
    h('p', {}, 'If Hypergolix runs on this computer (', h('code', {}, 'hypergolix start'),
      '), use its account instead of one kept in this browser. It must allow this page: ',
      h('code', {}, `hypergolix config set allow_origins ${location.origin}`), '.'),
    h('details', {}, h('summary', {}, 'Service address'), field('Local service address', svcUrl)),
    svcGo, svcErr);
  svcForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    svcErr.textContent = '';
    svcGo.disabled = true;
    try {
      await app.enterService(svcUrl.value);
    } catch (e) {
      svcErr.textContent = `No Hypergolix service answered at ${svcUrl.value}, or it does not allow this page `
        + `(${location.origin}): run hypergolix config set allow_origins ${location.origin} and restart it. `
        + `(${explain(e)})`;
      svcGo.disabled = false;
    }
  });

  const forget = saved
    ? h('p', { class: 'aside' }, 'Another account? ',
      h('button', {
        type: 'button', class: 'link', onclick: async (ev: Event) => {
          const b = ev.currentTarget as HTMLButtonElement;
          if (b.dataset.armed !== 'yes') {
            b.dataset.armed = 'yes';
            b.textContent = 'Delete this browser’s copy: sure? (changes not yet on the server are lost)';
            return;
          }
          try {
            remembered.account = null;
            await host.deleteDatabase(DATABASE);
            showWelcome(root, host, 'This browser’s copy was deleted.');
          } catch (e) {
            b.dataset.armed = '';
            b.textContent = 'Delete this browser’s copy';
            b.after(h('span', { class: 'error', role: 'alert' }, ` ${explain(e)}`));
          }
        },
      }, 'Delete this browser’s copy'))
    : null;

  put(root,
    h('main', { class: 'welcome', 'aria-labelledby': 'welcome-h' },
      h('h1', { id: 'welcome-h' }, 'Hypergolix'),
      h('p', { class: 'tagline' }, 'Your objects, end-to-end encrypted, synced between your devices and the people you share with.'),
      notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
      h('div', { class: 'forms' }, ...forms),
      svcForm,
      forget));
  (root.querySelector('input') as HTMLInputElement | null)?.focus();
}
