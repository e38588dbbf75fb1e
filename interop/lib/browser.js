// Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) driven by playwright-core, and
// the steps a person takes on Outband's login and consent pages.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** A headless Chromium; the caller closes it. */
export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true });
}

/**
 * Opens `authorizationUrl` in a fresh browser context, signs in as `user` on the login
 * page, then answers the consent page with `decision` ('approve' or 'deny'). Resolves to
 * the URL the browser was sent back to, as the callback listener saw it.
 * `screenshot`: a path for a picture of the consent page.
 */
export async function signInAndDecide(browser, authorizationUrl, { user, callback, decision = 'approve', screenshot }) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const page = await context.newPage();
    const console = [];
    page.on('console', (message) => console.push(`${message.type()}: ${message.text()}`));
    const response = await page.goto(authorizationUrl.href);
    assert.equal(response.status(), 200, `GET /authorize answered ${response.status()}: ${await page.content()}`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
    if (screenshot) {
      mkdirSync(dirname(screenshot), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true });
    }
    const [url] = await Promise.all([
      withTimeout(callback.next(), 15_000, async () => `the browser did not reach the redirect URI; it shows ${page.url()}\nbrowser console:\n${console.join('\n')}\npage:\n${await page.content()}`),
      page.getByRole('button', { name: decision === 'approve' ? 'Allow' : 'Deny' }).click(),
    ]);
    await page.getByRole('heading', { name: 'Back at the client' }).waitFor();
    return url;
  } finally {
    await context.close();
  }
}

/** `promise`, or a rejection with `describe()`'s text after `ms` milliseconds. */
async function withTimeout(promise, ms, describe) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => describe().then((text) => reject(new Error(text)), reject), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
