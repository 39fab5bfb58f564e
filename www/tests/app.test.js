// The web app in a real browser (Debian's Chromium), served by a real
// `hypergolix serve --www`: accounts, objects, sharing, devices, tabs,
// offline, errors; screenshots of each main screen and an axe pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accessible, browser, createAccount, edit, freePort, ids, newObject, openObject, profile, screenshot, serve,
  shownText, synced, tab, waitForText,
} from './harness.js';

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
  // The shared engine outlives a reload of its only tab only if the worker
  // was kept; either way the account opens again.
  const unlock = page.getByRole('form', { name: 'Unlock' });
  if (await unlock.isVisible().catch(() => false)) {
    await screenshot(page, 'unlock');
    await accessible(page, 'unlock');
    await unlock.getByLabel('Password').fill('correct horse battery staple');
    await unlock.getByRole('button', { name: 'Unlock' }).click();
  }
  assert.deepEqual(await ids(page), me);
  await openObject(page, note);
  assert.equal(await shownText(page), 'buy oat milk');
});
