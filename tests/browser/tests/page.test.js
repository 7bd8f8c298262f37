// The page against a real `verity serve` (API keys, extractive answers) with knowledge/ ingested,
// in Debian's Chromium.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, createKey, freshDataDir, serve } from '../lib/verity.js';
import { PHONE, ask, collectionNames, launch, newPage, screenshot, signIn, waitForAnswer } from '../lib/browser.js';

const squash = (s) => s.replace(/\s+/g, ' ').trim();

describe('the page, with API keys', () => {
  let server;
  let browser;
  let admin;
  let scoped;
  let queryOnly;

  before(async () => {
    const dir = freshDataDir('page');
    admin = createKey(dir, { name: 'browser admin', scopes: ['query', 'ingest', 'admin'] });
    scoped = createKey(dir, { name: 'browser handbook', scopes: ['query'], collections: ['handbook'] });
    queryOnly = createKey(dir, { name: 'browser query', scopes: ['query'] });
    server = await serve(dir, { VERITY_AUTH_MODE: 'keys' });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the page is served with its security headers and needs no other origin', async () => {
    const response = await fetch(`${server.url}/`);
    assert.equal(response.status, 200, await response.clone().text());
    assert.match(response.headers.get('content-type'), /^text\/html/);
    const csp = response.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('x-frame-options'), 'DENY');
    assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
    const missing = await fetch(`${server.url}/assets/nope.js`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, 'route_not_found');

    const page = await newPage(browser);
    const outside = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(server.url)) outside.push(r.url());
    });
    await page.goto(server.url);
    await page.waitForSelector('#signin-open', { state: 'visible' });
    // Auth is on and nobody signed in: the page says so in words.
    await page.waitForSelector('#notice', { state: 'visible' });
    assert.match(await page.textContent('#notice-text'), /sign in/i);
    assert.deepEqual(outside, []);
    assert.deepEqual(page.errors.filter((e) => !/status of 401/.test(e)), []);
    await page.context().close();
  });

  test('ask, read the streamed answer, open citation [1] beside it', async () => {
    const page = await newPage(browser);
    await page.goto(server.url);
    await signIn(page, admin);
    const result = await ask(page, 'How many vacation days can I carry over?', 'handbook');
    assert.equal(result.status, 'grounded', JSON.stringify(result));
    assert.equal(await page.textContent('#badge'), 'Grounded');
    const first = page.locator('#answer a.cite[data-n="1"]').first();
    await first.click();
    await page.waitForSelector('#passage', { state: 'visible' });
    // The surrounding chunks come from GET /v1/documents/{id}; the cited one is highlighted.
    await page.waitForFunction(() => !document.querySelector('#passage-body .hint'), null, { timeout: 10_000 });
    const panel = await page.evaluate(() => ({
      title: document.getElementById('passage-title').textContent,
      path: document.getElementById('passage-path').textContent,
      source: document.getElementById('passage-source').textContent,
      hit: document.querySelector('#passage-body mark.hit')?.textContent || '',
      quoted: [...document.querySelectorAll('#passage-body strong.quoted')].map((q) => q.textContent),
      context: document.querySelectorAll('#passage-body .context').length,
    }));
    assert.match(panel.title, /^\[1\] /);
    assert.ok(panel.source.startsWith(path.join(REPO, 'knowledge')), panel.source);
    // The highlighted passage is text of the cited document, as it is on disk.
    const file = squash(fs.readFileSync(panel.source, 'utf8'));
    const hit = squash(panel.hit);
    assert.ok(hit.length > 40, hit);
    assert.ok(file.includes(hit.slice(0, 120)), `"${hit.slice(0, 120)}" is not in ${panel.source}`);
    assert.ok(panel.quoted.length >= 1, 'the sentences the answer quotes are marked');
    assert.ok(panel.context >= 1, 'the chunks around the cited one are shown');
    assert.ok(panel.title.includes(panel.path.split(' › ')[0]), JSON.stringify(panel));
    await screenshot(page, 'desktop-answer');
    await page.setViewportSize(PHONE);
    await screenshot(page, 'phone-answer');
    // Chromium logs the 401s of the loads before signing in; nothing else may go wrong.
    assert.deepEqual(page.errors.filter((e) => !/status of 401/.test(e)), []);
    await page.context().close();
  });

  test('a key scoped to one collection sees only that collection', async () => {
    const page = await newPage(browser);
    await page.goto(server.url);
    await signIn(page, admin);
    await page.waitForSelector('#collection option[value="product"]', { state: 'attached' });
    const all = await collectionNames(page);
    assert.ok(all.includes('handbook') && all.includes('product'), all.join(','));
    await page.click('#signout');
    await signIn(page, scoped);
    await page.waitForFunction(() => document.querySelectorAll('#collection option[value="handbook"]').length === 1);
    assert.deepEqual(await collectionNames(page), ['handbook']);
    // No upload panel without the ingest scope.
    assert.equal(await page.isVisible('#upload'), false);
    await page.context().close();
  });

  test('upload a file, then ask what only it answers and see it cited', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verity-upload-'));
    const file = path.join(dir, 'zorblax-allowance.md');
    fs.writeFileSync(
      file,
      '# Zorblax allowance\n\nEvery engineer receives a Zorblax allowance of 37 quatloos per quarter. ' +
        'The Zorblax allowance is paid on the first Monday of each quarter.\n',
    );
    const page = await newPage(browser);
    await page.goto(server.url);
    await signIn(page, admin);
    await page.waitForSelector('#upload', { state: 'visible' });
    await page.fill('#upload-collection', 'handbook');
    await page.setInputFiles('#upload-files', file);
    await page.click('#upload-form button[type="submit"]');
    await page.waitForSelector('#upload-list li.up.done, #upload-list li.up.failed', { timeout: 60_000 });
    const row = await page.textContent('#upload-list li.up');
    assert.match(row, /Added to “handbook”/, row);
    assert.equal(await page.$eval('#upload-list progress', (p) => p.value), 1);
    await screenshot(page, 'desktop-upload');
    const result = await ask(page, 'How many quatloos is the Zorblax allowance per quarter?', 'handbook');
    assert.equal(result.status, 'grounded', JSON.stringify(result));
    assert.match(result.answer, /37 quatloos/);
    await page.click('#answer a.cite[data-n="1"]');
    assert.match(await page.textContent('#passage-source'), /zorblax-allowance\.md$/);
    await page.context().close();
  });

  test('hostile document text is shown as text, never run', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'verity-hostile-'));
    const file = path.join(dir, 'hostile-snorkel.md');
    fs.writeFileSync(
      file,
      '# Snorkel policy\n\nThe snorkel budget is 12 snorkels per team <img src=x onerror="window.__pwned=1"> ' +
        'and <script>window.__pwned=2</script> approval comes from the <b>snorkel</b> office.\n',
    );
    const page = await newPage(browser);
    await page.goto(server.url);
    await signIn(page, admin);
    await page.fill('#upload-collection', 'handbook');
    await page.setInputFiles('#upload-files', file);
    await page.click('#upload-form button[type="submit"]');
    await page.waitForSelector('#upload-list li.up.done', { timeout: 60_000 });
    await ask(page, 'What is the snorkel budget per team?', 'handbook');
    const links = page.locator('#answer a.cite');
    if ((await links.count()) > 0) await links.first().click();
    await page.waitForTimeout(300);
    const state = await page.evaluate(() => ({
      pwned: window.__pwned,
      images: document.querySelectorAll('#answer img, #passage-body img, #sources img').length,
      scripts: document.querySelectorAll('#answer script, #passage-body script, #sources script').length,
      text: document.getElementById('sources').textContent,
    }));
    assert.equal(state.pwned, undefined);
    assert.equal(state.images, 0);
    assert.equal(state.scripts, 0);
    assert.match(state.text, /snorkel/i);
    await page.context().close();
  });

  test('thumbs up or down with a comment goes to /v1/feedback', async () => {
    const page = await newPage(browser);
    await page.goto(server.url);
    await signIn(page, admin);
    await ask(page, 'How long must a password be?', 'handbook');
    await page.waitForSelector('#feedback', { state: 'visible' });
    await page.click('#thumb-down');
    assert.equal(await page.getAttribute('#thumb-down', 'aria-pressed'), 'true');
    await page.fill('#feedback-comment', 'It should mention passphrases.');
    const [sent] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/feedback')),
      page.click('#feedback-form button[type="submit"]'),
    ]);
    assert.equal(sent.status(), 201, await sent.text());
    const body = JSON.parse(sent.request().postData());
    assert.equal(body.rating, 'down');
    assert.equal(body.comment, 'It should mention passphrases.');
    assert.ok(body.answer_id);
    assert.match(await page.textContent('#feedback-done'), /Thank you/);
    assert.equal(await page.isDisabled('#thumb-up'), true);
    await page.context().close();
  });

  test('an abstained answer is shown as such, with the nearest passages', async () => {
    const page = await newPage(browser);
    await page.goto(server.url);
    await signIn(page, admin);
    const result = await ask(page, 'How many moons does Jupiter have?', 'handbook');
    assert.equal(result.status, 'abstained', JSON.stringify(result));
    assert.equal(result.badge, 'Not answered');
    assert.match(await page.textContent('#status-reason'), /do not support an answer/);
    assert.match(await page.textContent('#sources-title'), /Nearest passages/);
    assert.ok((await page.locator('#sources-list li').count()) >= 1);
    assert.equal(await page.locator('#answer a.cite').count(), 0);
    await screenshot(page, 'desktop-abstained');
    await page.context().close();
  });

  test('a bad key is refused in words, and so is a revoked session', async () => {
    const page = await newPage(browser);
    await page.goto(server.url);
    await page.click('#signin-open');
    await page.fill('#token', 'vk_000000000000_not-a-real-key');
    await page.click('#signin-submit');
    await page.waitForFunction(() => /not accepted/.test(document.getElementById('signin-error').textContent));
    assert.equal(await page.isVisible('#signin'), true);
    await page.click('#signin-cancel');
    // A key that was good when stored but is not now (here: a bad one in the session).
    await page.evaluate(() => sessionStorage.setItem('verity.token', 'vk_000000000000_revoked'));
    await page.reload();
    await page.waitForSelector('#notice', { state: 'visible' });
    assert.match(await page.textContent('#notice-text'), /key or token was not accepted/);
    assert.equal(await page.isVisible('#notice-signin'), true);
    await page.fill('#question', 'How many vacation days can I carry over?');
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/v1/query')),
      page.press('#question', 'Enter'),
    ]);
    assert.equal(refused.status(), 401);
    await page.waitForFunction(() => !document.getElementById('notice').hidden);
    assert.equal(await page.getAttribute('#notice', 'data-status'), '401');
    assert.match(await page.textContent('#notice-text'), /Sign in again/);
    await page.context().close();
  });

  test('keyboard only: sign in, ask, open a citation, close it', async () => {
    const page = await newPage(browser);
    await page.goto(server.url);
    await page.waitForSelector('#signin-open', { state: 'visible' });
    const tabTo = async (selector, limit = 25) => {
      for (let i = 0; i < limit; i++) {
        await page.keyboard.press('Tab');
        if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
      }
      throw new Error(`Tab never reached ${selector}`);
    };
    await tabTo('#signin-open');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
    await page.keyboard.type(queryOnly);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#signout', { state: 'visible' });
    // The page moves the focus once it has loaded the caller's collections, just after the
    // sign-out button shows: wait for that moment, then check where the focus is.
    await page
      .waitForFunction(() => document.activeElement?.id === 'question', null, { timeout: 5000 })
      .catch(() => {});
    assert.equal(await page.evaluate(() => document.activeElement.id), 'question');
    await page.keyboard.type('How long must a password be?');
    await page.keyboard.press('Enter');
    const result = await waitForAnswer(page);
    assert.ok(['grounded', 'partial'].includes(result.status), JSON.stringify(result));
    await tabTo('#answer a.cite');
    // The focused link is visibly marked.
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.equal(outline, 'solid');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#passage', { state: 'visible' });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'passage-title');
    await page.keyboard.press('Escape');
    await page.waitForSelector('#passage', { state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement.classList.contains('cite')), true);
    await page.context().close();
  });

  test('Spanish interface from the browser language, switchable, remembered for the session', async () => {
    const page = await newPage(browser, { locale: 'es-CL' });
    await page.goto(server.url);
    assert.equal(await page.getAttribute('html', 'lang'), 'es');
    assert.equal(await page.textContent('#ask-button'), 'Preguntar');
    assert.equal(await page.inputValue('#lang'), 'es');
    await page.selectOption('#lang', 'en');
    assert.equal(await page.textContent('#ask-button'), 'Ask');
    await page.reload();
    assert.equal(await page.textContent('#ask-button'), 'Ask');
    assert.equal(await page.inputValue('#lang'), 'en');
    await page.context().close();
  });

  test('Portuguese interface from a Brazilian browser, switchable to Spanish', async () => {
    const page = await newPage(browser, { locale: 'pt-BR' });
    await page.goto(server.url);
    assert.equal(await page.getAttribute('html', 'lang'), 'pt');
    assert.equal(await page.inputValue('#lang'), 'pt');
    assert.equal(await page.textContent('#ask-button'), 'Perguntar');
    assert.equal(await page.textContent('#signin-open'), 'Entrar');
    assert.equal(await page.getAttribute('#question', 'placeholder'), 'Quantos dias de f\u00e9rias posso acumular para o ano seguinte?');
    assert.equal(await page.textContent('label[for="lang"]'), 'Idioma da interface');
    await page.selectOption('#lang', 'es');
    assert.equal(await page.getAttribute('html', 'lang'), 'es');
    assert.equal(await page.textContent('#signin-open'), 'Iniciar sesi\u00f3n');
    await page.reload();
    assert.equal(await page.inputValue('#lang'), 'es');
    await page.context().close();
  });

  test('a Portuguese question is answered from the Portuguese handbook, in a Portuguese page', async () => {
    const page = await newPage(browser, { locale: 'pt-BR' });
    await page.goto(server.url);
    await signIn(page, admin);
    const result = await ask(page, 'Em quantos per\u00edodos posso dividir as minhas f\u00e9rias?', 'handbook');
    assert.equal(result.status, 'grounded', JSON.stringify(result));
    assert.equal(result.badge, 'Fundamentada');
    assert.match(result.answer, /tr\u00eas per\u00edodos/);
    assert.equal(await page.textContent('#sources-title'), 'Fontes');
    assert.match(await page.textContent('#sources-list'), /F\u00e9rias no Brasil/);
    await page.context().close();
  });

  test('network down is shown in words', async () => {
    const page = await newPage(browser);
    await page.goto(server.url);
    await signIn(page, admin);
    await page.context().setOffline(true);
    await page.fill('#question', 'How many vacation days can I carry over?');
    await page.press('#question', 'Enter');
    await page.waitForSelector('#notice', { state: 'visible' });
    assert.match(await page.textContent('#notice-text'), /Cannot reach Verity/);
    await page.context().setOffline(false);
    await page.context().close();
  });

  test('the previous questions of the session are listed and can be asked again', async () => {
    const page = await newPage(browser);
    await page.goto(server.url);
    await signIn(page, admin);
    await ask(page, 'How long must a password be?', 'handbook');
    await ask(page, 'How many vacation days can I carry over?', 'handbook');
    const items = await page.$$eval('#history-list button', (b) => b.map((x) => x.textContent));
    assert.deepEqual(items.slice(0, 2), ['How many vacation days can I carry over?', 'How long must a password be?']);
    await page.click('#history-list li:nth-child(2) button');
    await page.waitForFunction(() => /password/.test(document.getElementById('asked').textContent));
    await waitForAnswer(page);
    await page.context().close();
  });
});
