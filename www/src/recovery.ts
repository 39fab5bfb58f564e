// Recovery words: shown once when an account is made (or new ones are made
// in Settings), and the form that recovers an account with them when its
// password is lost.
import type { EngineHost, SharedEngine } from 'hypergolix';
import { Ghid } from 'hypergolix';
import { field, h, onSubmit, put } from './dom';
import { said } from './errors';

/**
 * The words, once, with what they are for; resolves when the user says
 * they are written down. Nothing keeps them: not the page, not storage.
 */
export function showWords(root: HTMLElement, words: string, replaced: boolean): Promise<void> {
  return new Promise((resolve) => {
    put(root, h('main', { class: 'card narrow' }, wordsCard(words, replaced, resolve)));
    (root.querySelector('input') as HTMLInputElement | null)?.focus();
  });
}

/** The words with their warning; `done` once the user says they are written down. */
function wordsCard(words: string, replaced: boolean, done: () => void): HTMLElement {
  const list = h('ol', { class: 'words', 'data-testid': 'recovery-words' },
    ...words.split(' ').map((w) => h('li', {}, w)));
  const written = h('input', { type: 'checkbox', name: 'written' });
  const go = h('button', { type: 'button', disabled: true }, 'Continue');
  written.addEventListener('change', () => { go.disabled = !written.checked; });
  go.addEventListener('click', () => done());
  return h('section', { 'aria-labelledby': 'words-h' },
    h('h2', { id: 'words-h' }, 'Your recovery words'),
    h('p', {}, 'Write these 12 words down, in order, and keep them somewhere safe. '
      + 'With your user id they restore this account if you forget your password. '
      + 'Anyone who has them can take the account.'),
    replaced ? h('p', { class: 'notice warn' }, 'The recovery words you had before no longer work.') : null,
    list,
    h('p', { class: 'aside' }, 'They are shown only this once. You can make new ones in Settings (the old ones then stop working).'),
    h('label', { class: 'check' }, written, ' I have written them down'),
    go);
}

/** Settings: new recovery words, given the current password. */
export function wordsSection(engine: SharedEngine): HTMLElement {
  const pw = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const msg = h('p', { role: 'status' });
  const go = h('button', { type: 'submit' }, 'Make new recovery words');
  const form = h('form', { 'aria-labelledby': 'rw-h' },
    h('h3', { id: 'rw-h' }, 'Recovery words'),
    h('p', {}, 'Twelve words that restore this account if the password is lost. Making new ones makes the old ones stop working (do it if they may have been seen).'),
    field('Current password', pw), go, msg);
  onSubmit(form, go, msg, 'Making them…', async () => {
    const words = await engine.recoveryWords(pw.value);
    pw.value = '';
    msg.textContent = '';
    const card = wordsCard(words, true, () => {
      card.replaceWith(form);
      msg.textContent = 'New recovery words made.';
    });
    form.replaceWith(card);
  });
  return form;
}

/** Settings: the account in one encrypted file, downloaded. */
export function exportSection(engine: SharedEngine): HTMLElement {
  const pw = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const msg = h('p', { role: 'status' });
  const go = h('button', { type: 'submit' }, 'Download an export');
  const form = h('form', { 'aria-labelledby': 'ex-h' },
    h('h3', { id: 'ex-h' }, 'Export'),
    h('p', {}, 'The account in one encrypted file: its keys and every object, locked with your password. '
      + 'It restores the account in any browser, or with hypergolix import, with no server. Keep it as safe as your password.'),
    field('Password', pw), go, msg);
  onSubmit(form, go, msg, 'Exporting…', async () => {
    const file = await engine.exportAccount(pw.value);
    pw.value = '';
    const url = URL.createObjectURL(new Blob([new Uint8Array(file)], { type: 'application/octet-stream' }));
    const a = h('a', { href: url, download: `hypergolix-${engine.userId.toString().slice(0, 8)}.hgx` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    msg.textContent = `Exported (${Math.ceil(file.length / 1024)} KiB).`;
  });
  return form;
}

/** The welcome screen's fields for restoring an export file. */
export function importFields(serverRow: HTMLElement) {
  const file = h('input', { type: 'file', name: 'file', required: true, accept: '.hgx,application/octet-stream' });
  const pw = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const fields = [
    h('p', {}, 'An export file (Settings → Export, or hypergolix export) brings the account back in this browser.'),
    field('Export file', file), field('Password', pw, 'The password the file was exported with.'), serverRow,
  ];
  const read = async () => {
    const f = file.files?.[0];
    if (!f) throw said('Choose the export file.');
    return { file: new Uint8Array(await f.arrayBuffer()), password: pw.value };
  };
  return { fields, read };
}

/** The welcome screen's form: the account back from its words, under a new password. */
export function recoverFields(userId: string | null, serverRow: HTMLElement, passwordRow: HTMLElement, again: HTMLInputElement) {
  const user = h('input', { type: 'text', name: 'userId', autocomplete: 'username', required: true, spellcheck: false, value: userId ?? '' });
  const words = h('textarea', { name: 'recoveryWords', required: true, rows: 3, spellcheck: false, autocomplete: 'off' });
  const fields = [
    h('p', {}, 'Forgot your password? Your 12 recovery words restore the account, with a new password.'),
    field('User id', user),
    field('Recovery words', words, 'The 12 words, in order, separated by spaces.'),
    passwordRow, field('New password again', again), serverRow,
  ];
  const check = (password: string) => {
    try {
      Ghid.fromString(user.value.trim());
    } catch {
      throw said('That is not a user id: it is the 88 characters shown as “User id” on your other device.');
    }
    if (words.value.trim().split(/\s+/).length !== 12) throw said('The recovery words are 12 words.');
    if (password !== again.value) throw said('The two passwords differ.');
    if (password.length < 8) throw said('The password needs 8 characters or more.');
    return { userId: user.value.trim(), recoveryWords: words.value };
  };
  return { fields, check };
}

/** Recovers with `host` (the words are checked by the engine). */
export function recover(host: EngineHost, server: string, password: string, got: { userId: string; recoveryWords: string }, database: string) {
  return host.recover({ server, password, database, timeoutMs: 20_000, ...got });
}
