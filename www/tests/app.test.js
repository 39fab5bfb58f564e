// The web app in a real browser (Debian's Chromium), served by a real
// `hypergolix serve --www`: accounts, objects, sharing, devices, tabs,
// offline, errors; screenshots of each main screen and an axe pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { HypergolixLink } from 'hypergolix';
import {
  accessible, browser, createAccount, createAccountWithWords, edit, freePort, ids, logIn, newObject, openObject, profile, screenshot, serve, service,
  readWords, shownText, synced, tab, waitForText,
} from './harness.js';

/** Shares the opened object with `identity` through the form. */
async function share(page, identity) {
  const form = page.getByRole('form', { name: 'Share' });
  await form.getByLabel('Share with (their identity)').fill(identity);
  await form.getByRole('button', { name: 'Share' }).click();
  await page.locator('.recipients li code', { hasText: identity.slice(0, 8) }).waitFor({ timeout: 20_000 });
}

test('a new user creates an account, makes a note, reloads, still sees it', { timeout: 180_000 }, async () => {
  const server = await serve('first', await freePort());
  const b = await browser();
  const ctx = await profile(b, server.url);
  const page = await tab(ctx, server.url);
  await screenshot(page, 'welcome');
  await accessible(page, 'welcome');

  const form = page.getByRole('form', { name: 'Create an account' });
  await form.getByLabel('Password', { exact: true }).fill('correct horse battery staple');
  await page.getByText(/Strength: (good|strong)/).waitFor();
  const me = await createAccount(page, 'correct horse battery staple');
  assert.equal(me.userId.length, 88);
  await synced(page);
  const note = await newObject(page, 'buy oat milk');
  assert.equal(await shownText(page), 'buy oat milk');
  await synced(page);
  await screenshot(page, 'objects');
  await accessible(page, 'objects');

  await page.reload();
  // The shared engine outlives a reload of its only tab only if the browser
  // kept the worker; either way the account opens again.
  await page.locator('form[aria-labelledby="unlock-h"], #account-h').first().waitFor();
  const unlock = page.getByRole('form', { name: 'Unlock' });
  if (await unlock.isVisible()) {
    await screenshot(page, 'unlock');
    await accessible(page, 'unlock');
    await unlock.getByLabel('Password').fill('correct horse battery staple');
    await unlock.getByRole('button', { name: 'Unlock' }).click();
  }
  assert.deepEqual(await ids(page), me);
  await openObject(page, note);
  assert.equal(await shownText(page), 'buy oat milk');
});

test('two agents: share, live edits each way, unshare, delete; a second device sees everything',
  { timeout: 240_000 }, async () => {
    const server = await serve('two', await freePort());
    const b = await browser();
    const alice = await tab(await profile(b, server.url), server.url);
    const bob = await tab(await profile(b, server.url), server.url);
    const a = await createAccount(alice, 'alice password 1');
    const bo = await createAccount(bob, 'bob password 22');
    await synced(alice);
    await synced(bob);

    // Alice → Bob: share, then live edits.
    const note = await newObject(alice, 'from alice');
    await share(alice, bo.identity);
    await openObject(bob, note);
    assert.equal(await shownText(bob), 'from alice');
    assert.equal(await bob.locator(`tr[data-address="${note}"] td`).nth(1).textContent(), a.identity.slice(0, 8) + '…' + a.identity.slice(-4));
    await edit(alice, 'alice edited');
    await waitForText(bob, 'alice edited');
    // Bob cannot edit Alice's object: no editor.
    assert.equal(await bob.getByRole('form', { name: 'Edit' }).count(), 0);
    await screenshot(bob, 'shared-with-me');
    await accessible(bob, 'shared-with-me');

    // Bob → Alice: a JSON object, edited live.
    const doc = await newObject(bob, '{"n":1}', { format: 'JSON' });
    await share(bob, a.identity);
    await openObject(alice, doc);
    await alice.getByLabel('JSON').check();
    await alice.locator('pre[aria-label="content as JSON"]', { hasText: '"n": 1' }).waitFor();
    await bob.getByRole('form', { name: 'Edit' }).getByLabel('Content').fill('{"n":2}');
    await bob.getByRole('form', { name: 'Edit' }).getByRole('button', { name: 'Save' }).click();
    await alice.locator('pre[aria-label="content as JSON"]', { hasText: '"n": 2' }).waitFor({ timeout: 20_000 });
    await alice.getByLabel('Hex').check();
    assert.match(await alice.locator('pre[aria-label="content as hex"]').textContent(), /7b 22 6e 22 3a 32 7d/);

    // A second device of Alice's: user id + password, and everything is there.
    await synced(alice);
    const laptop = await tab(await profile(b, server.url), server.url);
    await logIn(laptop, a.userId, 'alice password 1');
    assert.deepEqual(await ids(laptop), a);
    await openObject(laptop, note);
    assert.equal(await shownText(laptop), 'alice edited');
    await openObject(laptop, doc);
    await laptop.locator('pre', { hasText: '{"n":2}' }).waitFor({ timeout: 20_000 });
    await screenshot(laptop, 'second-device');

    // Unshare: Bob keeps what he read and reads nothing after.
    await alice.getByRole('button', { name: 'Open object ' + note.slice(0, 8) + '…' + note.slice(-4) }).click();
    await alice.getByRole('button', { name: `Unshare from ${bo.identity.slice(0, 8)}…${bo.identity.slice(-4)}` }).click();
    await alice.getByText('Nobody yet.').waitFor();
    await edit(alice, 'after the unshare');
    await synced(alice);
    await openObject(laptop, note);
    await waitForText(laptop, 'after the unshare');
    await openObject(bob, note);
    assert.equal(await shownText(bob), 'alice edited');
    await bob.waitForTimeout(1500);
    assert.equal(await shownText(bob), 'alice edited', 'Bob read a frame published after the unshare');

    // Delete reaches the other agent.
    await openObject(bob, doc);
    const del = bob.getByRole('button', { name: 'Delete' });
    await del.click();
    await bob.getByRole('button', { name: /^Really delete\?/ }).click();
    await alice.locator(`tr[data-address="${doc}"]`).waitFor({ state: 'detached', timeout: 20_000 });
    await laptop.locator(`tr[data-address="${doc}"]`).waitFor({ state: 'detached', timeout: 20_000 });
  });

test('offline: edits wait while the server is down and reach the other agent after', { timeout: 180_000 }, async () => {
  const port = await freePort();
  let server = await serve('offline', port);
  const b = await browser();
  const alice = await tab(await profile(b, server.url), server.url);
  const bob = await tab(await profile(b, server.url), server.url);
  await createAccount(alice, 'alice offline pw');
  const bo = await createAccount(bob, 'bob offline pw');
  await synced(alice);
  const note = await newObject(alice, 'before');
  await share(alice, bo.identity);
  await openObject(bob, note);
  await synced(alice);

  await server.kill();
  await alice.locator('.status', { hasText: 'Offline' }).waitFor({ timeout: 20_000 });
  await edit(alice, 'written offline');
  await alice.locator('.status', { hasText: /Offline · \d+ pending/ }).waitFor();
  await screenshot(alice, 'offline-pending');
  assert.equal(await shownText(bob), 'before');

  server = await serve('offline', port);
  await waitForText(bob, 'written offline', 60_000);
  await synced(alice, 60_000);
});

test('two tabs of one account edit together; closing the first hands over', { timeout: 180_000 }, async () => {
  const server = await serve('tabs', await freePort());
  const b = await browser();
  const ctx = await profile(b, server.url);
  const first = await tab(ctx, server.url);
  const me = await createAccount(first, 'two tabs password');
  const bob = await tab(await profile(b, server.url), server.url);
  const bo = await createAccount(bob, 'bob tabs password');
  await synced(first);
  const note = await newObject(first, 'tab one');
  await share(first, bo.identity);
  await openObject(bob, note);

  // The second tab joins the engine the first unlocked: no password.
  const second = await tab(ctx, server.url);
  assert.deepEqual(await ids(second), me);
  await openObject(second, note);
  assert.equal(await shownText(second), 'tab one');
  await edit(second, 'from tab two');
  await waitForText(first, 'from tab two');
  await edit(first, 'from tab one again');
  await waitForText(second, 'from tab one again');

  // An edit the first tab saw acknowledged, then the tab closes at once.
  await edit(first, 'last words of tab one');
  await first.close();
  await waitForText(second, 'last words of tab one');
  await waitForText(bob, 'last words of tab one', 30_000);
  await edit(second, 'tab two carries on');
  await waitForText(bob, 'tab two carries on', 30_000);
  await synced(second);
});

test('wrong password, unreachable server, and a reload while offline', { timeout: 180_000 }, async () => {
  const port = await freePort();
  const server = await serve('errors', port);
  const b = await browser();
  const ctx = await profile(b, server.url);
  let page = await tab(ctx, server.url);
  const me = await createAccount(page, 'the right password');
  await synced(page);
  const note = await newObject(page, 'kept here');
  await synced(page);

  // A new device: an unreachable server, then a wrong password.
  const other = await tab(await profile(b, server.url), server.url);
  const login = await logIn(other, me.userId, 'the right password', `ws://127.0.0.1:${await freePort()}/`);
  await login.getByRole('alert').filter({ hasText: 'Cannot reach the server' }).waitFor({ timeout: 60_000 });
  await screenshot(other, 'unreachable');
  await accessible(other, 'unreachable');
  await login.getByLabel('Persistence server address').fill(server.ws);
  await login.getByLabel('Password').fill('not the password');
  await login.getByRole('button', { name: 'Log in' }).click();
  await login.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor({ timeout: 30_000 });
  await screenshot(other, 'wrong-password');

  // Lock, then a wrong password at unlock.
  await page.getByRole('button', { name: 'Settings' }).click();
  await screenshot(page, 'settings');
  await accessible(page, 'settings');
  await page.getByRole('button', { name: 'Lock (log out)' }).click();
  const unlock = page.getByRole('form', { name: 'Unlock' });
  await unlock.waitFor();
  await unlock.getByLabel('Password').fill('wrong');
  await unlock.getByRole('button', { name: 'Unlock' }).click();
  await unlock.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor({ timeout: 30_000 });

  // The server (which also serves the app) goes away; a reload still
  // opens the app and the account, from this browser alone.
  await server.kill();
  await page.close();
  page = await tab(ctx, `http://127.0.0.1:${port}/`);
  const again = page.getByRole('form', { name: 'Unlock' });
  await again.getByLabel('Password').fill('the right password');
  await again.getByRole('button', { name: 'Unlock' }).click();
  assert.deepEqual(await ids(page), me);
  await page.locator('.status', { hasText: 'Offline' }).waitFor({ timeout: 20_000 });
  await openObject(page, note);
  assert.equal(await shownText(page), 'kept here');
  await screenshot(page, 'offline-reload');
});

test('recovery words: forgot the password, on this browser and on a new one', { timeout: 240_000 }, async () => {
  const server = await serve('recovery', await freePort());
  const b = await browser();
  const page = await tab(await profile(b, server.url), server.url);
  const { ids: me, words } = await createAccountWithWords(page, 'forgotten password 1');
  assert.equal(words.split(' ').length, 12);
  await synced(page);
  const note = await newObject(page, 'kept by the words');
  await synced(page);

  // Locked, and the password is gone: the words, on this browser.
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByRole('button', { name: 'Lock (log out)' }).click();
  await page.getByRole('form', { name: 'Unlock' }).waitFor();
  const fill = async (p, wordsTyped, password) => {
    await p.locator('summary', { hasText: 'Forgot your password?' }).click();
    const form = p.getByRole('form', { name: 'Recover with your recovery words' });
    await form.getByLabel('User id').fill(me.userId);
    await form.getByLabel('Recovery words').fill(wordsTyped);
    await form.getByLabel('New password', { exact: true }).fill(password);
    await form.getByLabel('New password again').fill(password);
    await form.getByRole('button', { name: 'Recover account' }).click();
    return form;
  };
  const never = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
  const refused = await fill(page, never, 'second password 2');
  await refused.getByRole('alert').filter({ hasText: 'do not open this account' }).waitFor({ timeout: 60_000 });
  await screenshot(page, 'recover-wrong-words');
  await refused.getByLabel('Recovery words').fill(words.toUpperCase());
  await refused.getByRole('button', { name: 'Recover account' }).click();
  assert.deepEqual(await ids(page), me);
  await openObject(page, note);
  assert.equal(await shownText(page), 'kept by the words');
  await synced(page);
  // This browser's copy is now locked by the new password.
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByRole('button', { name: 'Lock (log out)' }).click();
  const unlock = page.getByRole('form', { name: 'Unlock' });
  await unlock.getByLabel('Password').fill('second password 2');
  await unlock.getByRole('button', { name: 'Unlock' }).click();
  assert.deepEqual(await ids(page), me);

  // New words in Settings (the password first); the old ones stop working.
  await page.getByRole('button', { name: 'Settings' }).click();
  const rw = page.getByRole('form', { name: 'Recovery words' });
  await rw.getByLabel('Current password').fill('second password 2');
  await rw.getByRole('button', { name: 'Make new recovery words' }).click();
  const fresh = (await readWords(page)).join(' ');
  assert.notEqual(fresh, words);
  await screenshot(page, 'new-recovery-words');

  // A new device: the old words open nothing, the new ones the account.
  const other = await tab(await profile(b, server.url), server.url);
  const old = await fill(other, words, 'third password 3');
  await old.getByRole('alert').filter({ hasText: 'do not open this account' }).waitFor({ timeout: 60_000 });
  await old.getByLabel('Recovery words').fill(fresh);
  await old.getByRole('button', { name: 'Recover account' }).click();
  assert.deepEqual(await ids(other), me);
  await openObject(other, note);
  assert.equal(await shownText(other), 'kept by the words');
  await accessible(other, 'recovered');

  // An export from Settings restores the account in another browser; a
  // damaged file is refused.
  await other.getByRole('button', { name: 'Settings' }).click();
  const ex = other.getByRole('form', { name: 'Export' });
  await ex.getByLabel('Password').fill('third password 3');
  const [download] = await Promise.all([
    other.waitForEvent('download'),
    ex.getByRole('button', { name: 'Download an export' }).click(),
  ]);
  const file = await readFile(await download.path());
  assert.ok(file.length > 200);
  await screenshot(other, 'exported');
  const third = await tab(await profile(b, server.url), server.url);
  await third.locator('summary', { hasText: 'Restore from an export file' }).click();
  const imp = third.getByRole('form', { name: 'Restore from an export file' });
  const damaged = Buffer.from(file.subarray(0, file.length - 9));
  await imp.getByLabel('Export file').setInputFiles({ name: 'cut.hgx', mimeType: 'application/octet-stream', buffer: damaged });
  await imp.getByLabel('Password').fill('third password 3');
  await imp.getByRole('button', { name: 'Restore' }).click();
  await imp.getByRole('alert').filter({ hasText: 'not a Hypergolix export, or it is damaged' }).waitFor({ timeout: 60_000 });
  await imp.getByLabel('Export file').setInputFiles({ name: 'account.hgx', mimeType: 'application/octet-stream', buffer: file });
  await imp.getByRole('button', { name: 'Restore' }).click();
  assert.deepEqual(await ids(third), me);
  await openObject(third, note);
  assert.equal(await shownText(third), 'kept by the words');
});

test('a password changed on another device opens this browser’s copy, edits made offline kept', { timeout: 240_000 }, async () => {
  const port = await freePort();
  let server = await serve('follow', port);
  const b = await browser();
  const page = await tab(await profile(b, server.url), server.url);
  const me = await createAccount(page, 'first password 1');
  await synced(page);
  const note = await newObject(page, 'v1');
  await synced(page);
  // An edit made offline, then locked: it is only in this browser's copy.
  await server.kill();
  await page.locator('.status', { hasText: 'Offline' }).waitFor({ timeout: 20_000 });
  await edit(page, 'edited offline');
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByRole('button', { name: 'Lock (log out)' }).click();
  const unlock = page.getByRole('form', { name: 'Unlock' });
  await unlock.waitFor();

  // Another device changes the password meanwhile.
  server = await serve('follow', port);
  const other = await tab(await profile(b, server.url), server.url);
  await logIn(other, me.userId, 'first password 1');
  assert.deepEqual(await ids(other), me);
  await other.getByRole('button', { name: 'Settings' }).click();
  const pw = other.getByRole('form', { name: 'Password' });
  await pw.getByLabel('Current password').fill('first password 1');
  await pw.getByLabel('New password', { exact: true }).fill('second password 2');
  await pw.getByLabel('New password again').fill('second password 2');
  await pw.getByRole('button', { name: 'Change password' }).click();
  await pw.getByText('Password changed').waitFor({ timeout: 30_000 });

  // Here a wrong password is still wrong; the new one opens the copy,
  // whose offline edit then reaches the other device.
  await unlock.getByLabel('Password').fill('not the password');
  await unlock.getByRole('button', { name: 'Unlock' }).click();
  await unlock.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor({ timeout: 60_000 });
  await unlock.getByLabel('Password').fill('second password 2');
  await unlock.getByRole('button', { name: 'Unlock' }).click();
  assert.deepEqual(await ids(page), me);
  await openObject(page, note);
  assert.equal(await shownText(page), 'edited offline');
  await synced(page);
  await openObject(other, note);
  await waitForText(other, 'edited offline');
  // From now on the copy opens with the new password directly.
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByRole('button', { name: 'Lock (log out)' }).click();
  await unlock.getByLabel('Password').fill('second password 2');
  await unlock.getByRole('button', { name: 'Unlock' }).click();
  assert.deepEqual(await ids(page), me);
});

test("the local service's account, where it allows the page", { timeout: 120_000 }, async () => {
  const server = await serve('service', await freePort());
  const origin = server.url.replace(/\/$/, '');
  const ipc = await service('svc', server.ws, origin);
  const native = await HypergolixLink.connect(ipc);
  const fromApp = await native.newObj('made by a native app');
  const b = await browser();
  const page = await tab(await profile(b, server.url), server.url);
  const form = page.getByRole('form', { name: 'Use this computer’s service' });
  await form.locator('summary').click();
  await form.getByLabel('Local service address').fill(ipc);
  await form.getByRole('button', { name: 'Connect' }).click();
  await page.getByRole('heading', { name: 'Your account' }).waitFor();
  assert.equal((await page.getByTestId('identity').textContent()).trim(), native.whoami.toString());
  assert.equal(await page.getByTestId('user-id').count(), 0);
  await openObject(page, fromApp.address.toString());
  assert.equal(await shownText(page), 'made by a native app');
  await fromApp.setState('changed by the native app');
  await waitForText(page, 'changed by the native app');
  const made = await newObject(page, 'made in the page');
  assert.ok((await native.listObjects()).some((o) => o.address.toString() === made));
  await screenshot(page, 'local-service');
  native.close();
});

test('freeze, change the password, delete this browser’s copy', { timeout: 180_000 }, async () => {
  const server = await serve('settings', await freePort());
  const b = await browser();
  const page = await tab(await profile(b, server.url), server.url);
  const me = await createAccount(page, 'first password 1');
  await synced(page);
  const note = await newObject(page, 'v1');
  await page.getByRole('button', { name: 'Freeze a copy' }).click();
  await page.waitForFunction((n) => {
    const h = document.querySelector('.detail h2')?.textContent ?? '';
    return h.startsWith('Object ') && !h.includes(n.slice(0, 8));
  }, note);
  assert.match(await page.locator('.detail .props').textContent(), /static/);
  assert.equal(await shownText(page), 'v1');
  assert.equal(await page.getByRole('form', { name: 'Edit' }).count(), 0);

  // A new password, for every device of the account.
  await page.getByRole('button', { name: 'Settings' }).click();
  const pw = page.getByRole('form', { name: 'Password' });
  // The current password first: a wrong one changes nothing.
  await pw.getByLabel('Current password').fill('not the password');
  await pw.getByLabel('New password', { exact: true }).fill('second password 2');
  await pw.getByLabel('New password again').fill('second password 2');
  await pw.getByRole('button', { name: 'Change password' }).click();
  await pw.getByText('Wrong password').waitFor({ timeout: 30_000 });
  await pw.getByLabel('Current password').fill('first password 1');
  await pw.getByRole('button', { name: 'Change password' }).click();
  await pw.getByText('Password changed').waitFor({ timeout: 30_000 });
  await synced(page);
  await page.getByRole('button', { name: 'Lock (log out)' }).click();
  const unlock = page.getByRole('form', { name: 'Unlock' });
  await unlock.getByLabel('Password').fill('first password 1');
  await unlock.getByRole('button', { name: 'Unlock' }).click();
  await unlock.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor({ timeout: 30_000 });
  await unlock.getByLabel('Password').fill('second password 2');
  await unlock.getByRole('button', { name: 'Unlock' }).click();
  assert.deepEqual(await ids(page), me);
  const other = await tab(await profile(b, server.url), server.url);
  await logIn(other, me.userId, 'second password 2');
  assert.deepEqual(await ids(other), me);
  await openObject(other, note);

  // Deleting this browser's copy: back to create or log in.
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByRole('button', { name: 'Delete this browser’s copy' }).click();
  await page.getByRole('button', { name: /^Really delete/ }).click();
  await page.getByRole('form', { name: 'Create an account' }).waitFor();
  await page.getByRole('form', { name: 'Log in on this device' }).waitFor();
  assert.equal(await page.getByRole('form', { name: 'Unlock' }).count(), 0);
  await page.getByText('This browser’s copy was deleted.').waitFor();
});
