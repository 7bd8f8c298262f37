// Debian's Chromium, headless, driven by playwright-core; and the page actions the tests share.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { OUTPUT } from './verity.js';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 812 };

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

// A fresh context (its own sessionStorage) and page; English unless told otherwise.
export async function newPage(browser, { viewport = DESKTOP, locale = 'en-US' } = {}) {
  const context = await browser.newContext({ viewport, locale });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.errors = errors;
  return page;
}

export async function screenshot(page, name) {
  fs.mkdirSync(OUTPUT, { recursive: true });
  const file = path.join(OUTPUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

export async function signIn(page, key) {
  await page.click('#signin-open');
  await page.fill('#token', key);
  await page.click('#signin-submit');
  await page.waitForSelector('#signin', { state: 'hidden' });
  await page.waitForSelector('#signout', { state: 'visible' });
}

export async function collectionNames(page) {
  return page.$$eval('#collection option', (options) => options.map((o) => o.value).filter(Boolean));
}

// Types the question, picks the collection, presses Enter, waits for the verified answer.
export async function ask(page, question, collection) {
  if (collection) {
    await page.waitForSelector(`#collection option[value="${collection}"]`, { state: 'attached' });
    await page.selectOption('#collection', collection);
  }
  await page.fill('#question', question);
  await page.press('#question', 'Enter');
  return waitForAnswer(page);
}

export async function waitForAnswer(page, timeout = 60_000) {
  await page.waitForFunction(
    () => {
      const status = document.getElementById('status');
      const notice = document.getElementById('notice');
      return (!status.hidden && status.dataset.status) || !notice.hidden;
    },
    null,
    { timeout },
  );
  return page.evaluate(() => ({
    status: document.getElementById('status').hidden ? null : document.getElementById('status').dataset.status,
    badge: document.getElementById('badge').textContent,
    answer: document.getElementById('answer').textContent,
    notice: document.getElementById('notice').hidden ? null : document.getElementById('notice-text').textContent,
  }));
}
