// Settings of an unlocked account: the password, locking this browser's
// copy (log out), deleting it.
import type { SharedEngine } from 'hypergolix';
import { field, h, onSubmit } from './dom';
import { explain } from './errors';
import { app, DATABASE, remembered } from './main';
import { exportSection, wordsSection } from './recovery';
import { passwordWithStrength } from './welcome';

export function showSettings(engine: SharedEngine, close: () => void): HTMLElement {
  const current = h('input', { type: 'password', name: 'current', autocomplete: 'current-password', required: true });
  const { input: pw, row } = passwordWithStrength('New password', 'new-password');
  const again = h('input', { type: 'password', name: 'again', autocomplete: 'new-password', required: true });
  const pwMsg = h('p', { role: 'status' });
  const change = h('button', { type: 'submit' }, 'Change password');
  const pwForm = h('form', { 'aria-labelledby': 'pw-h' },
    h('h3', { id: 'pw-h' }, 'Password'), field('Current password', current), row,
    field('New password again', again), change, pwMsg);
  onSubmit(pwForm, change, pwMsg, 'Changing…', async () => {
    await engine.changePassword(current.value, pw.value);
    current.value = '';
    pw.value = '';
    again.value = '';
    pwMsg.textContent = 'Password changed, for every device of this account.';
  }, () => {
    if (pw.value !== again.value) return 'The two passwords differ.';
    if (pw.value.length < 8) return 'The password needs 8 characters or more.';
    return null;
  });

  const msg = h('p', { class: 'error', role: 'alert' });
  const lock = h('button', {
    type: 'button',
    onclick: async () => {
      try { await engine.close(); } catch (e) { msg.textContent = explain(e); }
    },
  }, 'Lock (log out)');
  const del = h('button', {
    type: 'button', class: 'danger',
    onclick: async () => {
      if (del.dataset.armed !== 'yes') {
        let pending = 0;
        try { pending = (await engine.status()).pending.length; } catch { /* closed */ }
        del.dataset.armed = 'yes';
        del.textContent = pending
          ? `Really delete? ${pending} change(s) have not reached the server and would be lost`
          : 'Really delete this browser’s copy?';
        return;
      }
      try {
        remembered.account = null;
        await app.host?.deleteDatabase(DATABASE);
      } catch (e) { msg.textContent = explain(e); }
    },
  }, 'Delete this browser’s copy');

  return h('section', { class: 'settings card', 'aria-labelledby': 'settings-h' },
    h('h2', { id: 'settings-h' }, 'Settings'),
    pwForm,
    wordsSection(engine),
    exportSection(engine),
    h('h3', {}, 'This browser'),
    h('p', {}, 'Locking closes the account in every tab of this browser; your password unlocks it again. ',
      'Deleting removes this browser’s copy; log in again with your user id and password.'),
    h('div', { class: 'row' }, lock, del, h('button', { type: 'button', onclick: close }, 'Close settings')),
    msg);
}
