// Verity's page: ask, read the answer as it streams, open every cited passage.
//
// Rules this file keeps: everything the server returns is inserted with textContent (answers
// and documents can hold hostile text); credentials live in sessionStorage only and travel as
// `Authorization: Bearer …`; nothing is fetched from anywhere but this origin.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const KEYS = {
    token: 'verity.token',
    lang: 'verity.lang',
    history: 'verity.history',
    collection: 'verity.collection',
  };
  const WORDS = window.VerityI18n;

  // ---------------------------------------------------------------- language
  let lang = pickLanguage();
  function pickLanguage() {
    const saved = store.getItem(KEYS.lang);
    if (saved && WORDS[saved]) return saved;
    // The first of the browser's languages the page speaks (pt-BR, es-CL, en-GB … match by
    // their primary subtag); English when none does.
    const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
    for (const tag of wanted) {
      const primary = String(tag).toLowerCase().split('-')[0];
      if (WORDS[primary]) return primary;
    }
    return 'en';
  }
  function t(key, vars) {
    let text = (WORDS[lang] && WORDS[lang][key]) || WORDS.en[key] || key;
    if (vars) {
      text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
    }
    return text;
  }
  function applyLanguage() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('[data-i18n-placeholder]')) {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    }
    for (const el of document.querySelectorAll('[data-i18n-label]')) {
      el.setAttribute('aria-label', t(el.dataset.i18nLabel));
    }
    $('lang').value = lang;
    renderWho();
    renderCollections();
    renderNotice();
    renderHistory();
    renderUploads();
    if (current) renderRun(current);
  }

  // ---------------------------------------------------------------- HTTP
  function token() {
    return store.getItem(KEYS.token);
  }
  function authHeaders(explicit) {
    const value = explicit === undefined ? token() : explicit;
    return value ? { Authorization: `Bearer ${value}` } : {};
  }
  class Failure extends Error {
    constructor(info) {
      super(info.message || info.kind || `HTTP ${info.status}`);
      this.info = info;
    }
  }
  function retryAfter(header, details) {
    const seconds = Number.parseInt(header || '', 10);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds;
    if (details && Number.isFinite(details.retry_after_seconds)) return details.retry_after_seconds;
    return null;
  }
  function failureInfo(status, text, retryHeader) {
    let error = {};
    try {
      error = (JSON.parse(text) || {}).error || {};
    } catch (_) {
      error = {};
    }
    return {
      status,
      code: error.code || null,
      message: typeof error.message === 'string' ? error.message : '',
      retryAfter: retryAfter(retryHeader, error.details),
    };
  }
  async function failureFrom(response) {
    const text = await response.text().catch(() => '');
    return failureInfo(response.status, text, response.headers.get('Retry-After'));
  }
  async function api(path, options = {}, explicitToken) {
    let response;
    try {
      response = await fetch(path, {
        ...options,
        headers: { Accept: 'application/json', ...authHeaders(explicitToken), ...(options.headers || {}) },
      });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new Failure({ kind: 'network' });
    }
    if (!response.ok) throw new Failure(await failureFrom(response));
    return response;
  }

  // An error in words, with what to do about it.
  function explain(info) {
    if (!info || info.kind === 'network') return { text: t('errNetwork') };
    if (info.kind === 'stream') return { text: t('errStream'), detail: info.message };
    const detail = info.message ? t('errServer', { message: info.message }) : '';
    switch (info.status) {
      case 400:
        return { text: t('err400'), detail };
      case 401:
        return { text: token() ? t('err401Bad') : t('err401None'), detail, signIn: true };
      case 403:
        return { text: t('err403'), detail };
      case 404:
        return { text: info.code === 'collection_not_found' ? t('err404Collection') : t('err404'), detail };
      case 413:
        return { text: t('err413'), detail };
      case 415:
        return { text: t('err415'), detail };
      case 422:
        return { text: t('err422'), detail };
      case 429: {
        const left = info.until ? Math.max(0, Math.ceil((info.until - Date.now()) / 1000)) : null;
        if (left === 0) return { text: t('err429Now'), detail };
        return { text: t('err429', { n: left === null ? info.retryAfter || 5 : left }), detail };
      }
      case 503:
        return { text: t('err503'), detail };
      default:
        if (info.status >= 500) return { text: t('err500'), detail };
        return { text: t('errOther', { status: info.status }), detail };
    }
  }

  // ---------------------------------------------------------------- notice (errors)
  let notice = null;
  let noticeTimer = null;
  function showNotice(info) {
    notice = info;
    if (info && info.status === 429 && !info.until) {
      info.until = Date.now() + 1000 * (info.retryAfter || 5);
    }
    clearInterval(noticeTimer);
    if (info && info.until) {
      $('ask-button').disabled = true;
      noticeTimer = setInterval(() => {
        if (Date.now() >= info.until) {
          clearInterval(noticeTimer);
          $('ask-button').disabled = false;
        }
        renderNotice();
      }, 1000);
    }
    renderNotice();
  }
  function clearNotice() {
    notice = null;
    clearInterval(noticeTimer);
    $('ask-button').disabled = false;
    renderNotice();
  }
  function renderNotice() {
    const box = $('notice');
    if (!notice) {
      box.hidden = true;
      return;
    }
    const words = notice.words ? { text: t(notice.words) } : explain(notice);
    $('notice-text').textContent = words.text;
    $('notice-detail').textContent = words.detail || '';
    $('notice-signin').hidden = !words.signIn;
    box.dataset.status = notice.status || notice.kind || notice.words || '';
    box.hidden = false;
  }

  // ---------------------------------------------------------------- who and collections
  let me = null; // {subject, scopes, collections, groups}
  let authNeeded = false;
  let collections = []; // [{name, documents}]

  async function loadMe() {
    try {
      me = await (await api('/v1/me')).json();
      authNeeded = false;
    } catch (e) {
      me = null;
      const info = e.info || {};
      authNeeded = info.status === 401;
      if (info.status === 401 && token()) showNotice(info);
    }
    renderWho();
  }
  function renderWho() {
    const signedIn = Boolean(token());
    $('signout').hidden = !signedIn;
    $('signin-open').hidden = signedIn || (me !== null && !authNeeded);
    const who = $('who');
    if (me && me.subject) {
      who.textContent = t('signedInAs', { subject: me.subject });
      who.hidden = false;
    } else {
      who.textContent = '';
      who.hidden = true;
    }
    const scopes = (me && Array.isArray(me.scopes) && me.scopes) || [];
    $('upload').hidden = !(scopes.includes('ingest') || scopes.includes('admin'));
  }
  async function loadCollections() {
    try {
      const body = await (await api('/v1/collections')).json();
      collections = Array.isArray(body.collections) ? body.collections : [];
    } catch (e) {
      collections = [];
      const info = e.info || {};
      if (info.status === 401) {
        authNeeded = true;
        renderWho();
        if (!notice) showNotice(token() ? info : { words: 'signInFirst', status: 401 });
      } else if (e.info) {
        showNotice(info);
      }
    }
    renderCollections();
  }
  function renderCollections() {
    const select = $('collection');
    const chosen = select.value || store.getItem(KEYS.collection) || '';
    select.replaceChildren();
    if (collections.length === 0) {
      const option = new Option(t(authNeeded ? 'allDefault' : 'noCollections'), '');
      select.append(option);
    }
    for (const c of collections) {
      const label = Number.isFinite(c.documents)
        ? t('documentsCount', { name: c.name, n: c.documents })
        : String(c.name);
      select.append(new Option(label, c.name));
    }
    const names = collections.map((c) => c.name);
    if (names.includes(chosen)) select.value = chosen;
    else if (names.includes('default')) select.value = 'default';
    const list = $('collection-names');
    list.replaceChildren(...names.map((name) => new Option(name, name)));
    const up = $('upload-collection');
    if (!up.value && select.value) up.value = select.value;
  }

  // ---------------------------------------------------------------- sign-in
  function openSignIn() {
    $('signin-error').textContent = '';
    $('token').value = '';
    $('signin').showModal();
    $('token').focus();
  }
  async function submitSignIn(event) {
    event.preventDefault();
    const value = $('token').value.trim();
    if (!value) return;
    const button = $('signin-submit');
    button.disabled = true;
    $('signin-error').textContent = t('checking');
    try {
      await api('/v1/me', {}, value).catch(async (e) => {
        // A server without /v1/me still tells a good key from a bad one here.
        if (e.info && e.info.status === 404) return api('/v1/collections', {}, value);
        throw e;
      });
      store.setItem(KEYS.token, value);
      $('signin').close();
      clearNotice();
      await refresh();
      $('question').focus();
    } catch (e) {
      const info = e.info || { kind: 'network' };
      $('signin-error').textContent =
        info.status === 401 ? t('err401Bad') + (info.message ? ` ${t('errServer', { message: info.message })}` : '') : explain(info).text;
    } finally {
      button.disabled = false;
    }
  }
  async function signOut() {
    store.removeItem(KEYS.token);
    me = null;
    collections = [];
    if (current && current.controller) current.controller.abort();
    current = null;
    $('result').hidden = true;
    closePassage(false);
    clearNotice();
    await refresh();
    $('signin-open').focus();
  }
  async function refresh() {
    await loadMe();
    await loadCollections();
  }

  // ---------------------------------------------------------------- answer rendering
  // `[1]`, `[2, 3]`: the markers the server writes and verification understands.
  const MARKER = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

  function citationsOf(run) {
    return (run.answer && Array.isArray(run.answer.citations) ? run.answer.citations : run.sources) || [];
  }
  function citationById(run, n) {
    return citationsOf(run).find((c) => Number(c.id) === n) || null;
  }
  function citeLink(run, n) {
    const c = citationById(run, n);
    if (!c) return document.createTextNode(`[${n}]`);
    const a = document.createElement('a');
    a.href = `#source-${n}`;
    a.className = 'cite';
    a.dataset.n = String(n);
    a.textContent = `[${n}]`;
    a.setAttribute('aria-label', t('citeLabel', { n, title: c.title || '' }));
    if (openCitation === n) a.classList.add('active');
    return a;
  }
  // Text with its markers as links; everything else stays text.
  function renderMarked(run, text, target) {
    const nodes = [];
    let last = 0;
    for (const m of text.matchAll(MARKER)) {
      if (m.index > last) nodes.push(document.createTextNode(text.slice(last, m.index)));
      for (const part of m[1].split(',')) nodes.push(citeLink(run, Number.parseInt(part, 10)));
      last = m.index + m[0].length;
    }
    if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
    target.replaceChildren(...nodes);
  }

  function renderRun(run) {
    $('result').hidden = false;
    $('asked').textContent = t('youAsked', { q: run.question });
    const answerBox = $('answer');
    answerBox.setAttribute('aria-busy', run.finished ? 'false' : 'true');
    const text = run.answer ? String(run.answer.answer || '') : run.text;
    if (text) {
      // Re-render only what changed, so a focused citation link stays in place.
      const citations = citationsOf(run);
      if (run.rendered !== text || run.renderedCitations !== citations || run.renderedLang !== lang) {
        renderMarked(run, text, answerBox);
        run.rendered = text;
        run.renderedCitations = citations;
        run.renderedLang = lang;
      }
    } else if (!run.finished) {
      const p = document.createElement('span');
      p.className = 'pending';
      p.textContent = run.sources ? t('writing') : t('asking');
      answerBox.replaceChildren(p);
    } else {
      answerBox.replaceChildren();
    }
    if (!text) run.rendered = null;
    renderStatus(run);
    renderSources(run);
    renderFeedback(run);
    const timing = $('timing');
    if (run.timings && run.answer) {
      timing.textContent = t('answeredIn', {
        ms: Math.round(run.timings.total_ms || 0),
        generator: run.answer.generator || '',
      });
    } else {
      timing.textContent = '';
    }
  }

  function renderStatus(run) {
    const box = $('status');
    const grounding = run.answer && run.answer.grounding;
    if (!grounding || !grounding.status) {
      delete $('result').dataset.status;
      box.hidden = true;
      $('unsupported').hidden = true;
      return;
    }
    const status = String(grounding.status);
    $('result').dataset.status = status;
    box.hidden = false;
    box.dataset.status = status;
    $('badge').textContent = t(`st_${status}`);
    const explainText = t(`stx_${status}`);
    const reason = grounding.reason ? ` ${t('reason', { reason: grounding.reason })}` : '';
    $('status-reason').textContent = (explainText.startsWith('stx_') ? '' : explainText) + reason;
    const removed = Array.isArray(grounding.unsupported) ? grounding.unsupported : [];
    $('unsupported').hidden = removed.length === 0;
    const list = $('unsupported-list');
    list.replaceChildren(
      ...removed.map((u) => {
        const li = document.createElement('li');
        const s = document.createElement('q');
        s.textContent = String(u.sentence || '');
        const why = document.createElement('span');
        why.className = 'reason';
        why.textContent = u.reason ? ` — ${u.reason}` : '';
        li.append(s, why);
        return li;
      }),
    );
  }

  function renderSources(run) {
    const citations = citationsOf(run);
    const box = $('sources');
    box.hidden = citations.length === 0;
    const abstained = run.answer && run.answer.grounding && run.answer.grounding.status === 'abstained';
    $('sources-title').textContent = abstained ? t('nearest') : t('sources');
    box.classList.toggle('nearest', Boolean(abstained));
    $('sources-list').replaceChildren(
      ...citations.map((c) => {
        const li = document.createElement('li');
        li.id = `source-${c.id}`;
        li.value = Number(c.id) || 0;
        const a = document.createElement('a');
        a.href = `#source-${c.id}`;
        a.className = 'cite source-link';
        a.dataset.n = String(c.id);
        a.textContent = String(c.title || c.source || '');
        a.setAttribute('aria-label', `${t('openPassage', { n: c.id })}: ${c.title || ''}`);
        const path = document.createElement('span');
        path.className = 'path';
        const heading = Array.isArray(c.heading_path) ? c.heading_path.slice(1).join(' › ') : '';
        path.textContent = heading ? ` — ${heading}` : '';
        const snippet = document.createElement('p');
        snippet.className = 'snippet';
        const text = String(c.text || '')
          .replace(/^#+ .*$/gm, '')
          .replace(/\s+/g, ' ')
          .trim();
        snippet.textContent = text.length > 220 ? `${text.slice(0, 220)}…` : text;
        li.append(a, path, snippet);
        return li;
      }),
    );
  }

  // ---------------------------------------------------------------- the passage panel
  let openCitation = null;
  let returnFocus = null;
  const documents = new Map(); // document id → Promise of the document

  function fetchDocument(id) {
    if (!documents.has(id)) {
      const promise = api(`/v1/documents/${encodeURIComponent(id)}`).then((r) => r.json());
      promise.catch(() => documents.delete(id));
      documents.set(id, promise);
    }
    return documents.get(id);
  }

  // The answer's sentences that cite source n, without their markers.
  function quotedBy(text, n) {
    const quotes = [];
    let last = 0;
    for (const m of text.matchAll(MARKER)) {
      const before = text.slice(last, m.index);
      last = m.index + m[0].length;
      const numbers = m[1].split(',').map((x) => Number.parseInt(x, 10));
      const piece = before.replace(/^[\s.,;:!?]+/, '').trim();
      if (!numbers.includes(n) || !piece) continue;
      quotes.push(piece);
      for (const sentence of piece.split(/(?<=[.!?])\s+/)) if (sentence !== piece) quotes.push(sentence);
    }
    return quotes;
  }
  function escapeRegex(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  // Where each quote occurs in `text`, word for word (whitespace, bullets and punctuation
  // between words may differ: an extractive answer joins a list into one line).
  function quoteRanges(text, quotes) {
    const ranges = [];
    for (const quote of quotes) {
      const words = quote
        .split(/\s+/)
        .map((w) => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ''))
        .filter((w) => w.length > 0);
      if (words.length < 3) continue;
      let pattern;
      try {
        pattern = new RegExp(words.map(escapeRegex).join('[^\\p{L}\\p{N}]+'), 'gu');
      } catch (_) {
        continue;
      }
      for (const m of text.matchAll(pattern)) ranges.push([m.index, m.index + m[0].length]);
    }
    ranges.sort((a, b) => a[0] - b[0]);
    const merged = [];
    for (const r of ranges) {
      const top = merged[merged.length - 1];
      if (top && r[0] <= top[1]) top[1] = Math.max(top[1], r[1]);
      else merged.push(r.slice());
    }
    return merged;
  }
  function highlighted(text, quotes) {
    const mark = document.createElement('mark');
    mark.className = 'hit';
    let last = 0;
    for (const [start, end] of quoteRanges(text, quotes)) {
      if (start > last) mark.append(document.createTextNode(text.slice(last, start)));
      const q = document.createElement('strong');
      q.className = 'quoted';
      q.textContent = text.slice(start, end);
      mark.append(q);
      last = end;
    }
    if (last < text.length) mark.append(document.createTextNode(text.slice(last)));
    return mark;
  }
  // The surrounding chunks are cut to about CONTEXT_CHARS characters, at a word boundary.
  const CONTEXT_CHARS = 360;
  function tail(text) {
    if (text.length <= CONTEXT_CHARS) return text;
    const cut = text.slice(-CONTEXT_CHARS);
    return `…${cut.slice(cut.search(/\s/) + 1)}`;
  }
  function head(text) {
    if (text.length <= CONTEXT_CHARS) return text;
    const cut = text.slice(0, CONTEXT_CHARS);
    return `${cut.slice(0, Math.max(cut.lastIndexOf(' '), 1))}…`;
  }
  function contextBlock(text, cls) {
    const div = document.createElement('div');
    div.className = cls;
    div.textContent = text;
    return div;
  }

  function openPassage(run, n, from) {
    const c = citationById(run, n);
    if (!c) return;
    openCitation = n;
    returnFocus = from || null;
    for (const a of document.querySelectorAll('a.cite')) {
      a.classList.toggle('active', a.dataset.n === String(n));
      if (a.dataset.n === String(n)) a.setAttribute('aria-current', 'true');
      else a.removeAttribute('aria-current');
    }
    const panel = $('passage');
    panel.hidden = false;
    panel.dataset.chunk = String(c.chunk_id || '');
    $('passage-title').textContent = `[${n}] ${c.title || ''}`;
    const path = Array.isArray(c.heading_path) ? c.heading_path.join(' › ') : '';
    $('passage-path').textContent = path;
    $('passage-source').textContent = String(c.source || '');
    const answerText = run.answer ? String(run.answer.answer || '') : run.text;
    const quotes = quotedBy(answerText, n);
    const body = $('passage-body');
    const cited = highlighted(String(c.text || ''), quotes);
    const note = document.createElement('p');
    note.className = 'hint';
    note.textContent = t('loadingContext');
    body.replaceChildren(cited, note);
    $('passage-title').focus({ preventScroll: true });
    const top = panel.getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight - 80) panel.scrollIntoView({ block: 'start' });
    if (!c.document_id) return;
    fetchDocument(c.document_id).then(
      (doc) => {
        if (openCitation !== n || $('passage').dataset.chunk !== String(c.chunk_id || '')) return;
        const chunks = Array.isArray(doc.chunks) ? doc.chunks : [];
        const i = chunks.findIndex((k) => k.id === c.chunk_id || (k.start === c.start && k.end === c.end));
        if (i < 0) {
          note.textContent = t('contextUnavailable', { why: 'chunk' });
          return;
        }
        const parts = [];
        if (i > 0) parts.push(contextBlock(tail(String(chunks[i - 1].text || '')), 'context before'));
        parts.push(highlighted(String(chunks[i].text || c.text || ''), quotes));
        if (i + 1 < chunks.length) parts.push(contextBlock(head(String(chunks[i + 1].text || '')), 'context after'));
        body.replaceChildren(...parts);
        // Bring the cited passage into view inside the panel (not the whole page).
        const hit = body.querySelector('mark.hit');
        if (hit && panel.scrollHeight > panel.clientHeight) {
          panel.scrollTop = Math.max(0, hit.offsetTop - panel.clientHeight / 4);
        }
      },
      (e) => {
        if (openCitation !== n) return;
        const info = (e && e.info) || { kind: 'network' };
        note.textContent = t('contextUnavailable', { why: info.status ? `HTTP ${info.status}` : explain(info).text });
      },
    );
  }
  function closePassage(restoreFocus = true) {
    openCitation = null;
    $('passage').hidden = true;
    for (const a of document.querySelectorAll('a.cite.active')) {
      a.classList.remove('active');
      a.removeAttribute('aria-current');
    }
    if (restoreFocus && returnFocus && document.contains(returnFocus)) returnFocus.focus();
    returnFocus = null;
  }

  // ---------------------------------------------------------------- feedback
  function renderFeedback(run) {
    const box = $('feedback');
    const id = run.answer && run.answer.id;
    box.hidden = !id || !run.finished;
    if (box.hidden) return;
    $('thumb-up').setAttribute('aria-pressed', String(run.rating === 'up'));
    $('thumb-down').setAttribute('aria-pressed', String(run.rating === 'down'));
    $('thumb-up').disabled = $('thumb-down').disabled = Boolean(run.feedbackSent);
    $('feedback-form').hidden = !run.rating || Boolean(run.feedbackSent);
    const done = $('feedback-done');
    if (run.feedbackSent) done.textContent = t('feedbackThanks');
    else if (run.feedbackError) done.textContent = explain(run.feedbackError).text;
    else done.textContent = '';
  }
  function rate(rating) {
    const run = current;
    if (!run || !run.answer || run.feedbackSent) return;
    run.rating = rating;
    renderFeedback(run);
    $('feedback-comment').focus();
  }
  async function sendFeedback(event) {
    event.preventDefault();
    const run = current;
    if (!run || !run.answer || !run.rating) return;
    const body = { answer_id: run.answer.id, rating: run.rating };
    const comment = $('feedback-comment').value.trim();
    if (comment) body.comment = comment;
    try {
      await api('/v1/feedback', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      run.feedbackSent = true;
      run.feedbackError = null;
      $('feedback-comment').value = '';
    } catch (e) {
      run.feedbackError = e.info || { kind: 'network' };
    }
    if (current === run) {
      renderFeedback(run);
      $('feedback-done').focus();
    }
  }

  // ---------------------------------------------------------------- history
  function history() {
    try {
      const list = JSON.parse(store.getItem(KEYS.history) || '[]');
      return Array.isArray(list) ? list : [];
    } catch (_) {
      return [];
    }
  }
  function remember(question, collection) {
    const list = history().filter((h) => !(h.q === question && h.c === collection));
    list.unshift({ q: question, c: collection });
    store.setItem(KEYS.history, JSON.stringify(list.slice(0, 20)));
    renderHistory();
  }
  function renderHistory() {
    const list = history();
    $('history').hidden = list.length === 0;
    $('history-list').replaceChildren(
      ...list.map((h) => {
        const li = document.createElement('li');
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'linkish';
        b.textContent = String(h.q);
        b.setAttribute('aria-label', t('askAgain', { q: h.q }));
        b.addEventListener('click', () => {
          $('question').value = h.q;
          if (h.c && collections.some((c) => c.name === h.c)) $('collection').value = h.c;
          ask();
        });
        li.append(b);
        if (h.c) {
          const c = document.createElement('span');
          c.className = 'path';
          c.textContent = ` · ${h.c}`;
          li.append(c);
        }
        return li;
      }),
    );
  }

  // ---------------------------------------------------------------- asking (streamed)
  let current = null;

  function markOnce(run, name) {
    if (run.marks[name]) return;
    run.marks[name] = true;
    performance.mark(name);
  }

  function handleEvent(run, name, data) {
    switch (name) {
      case 'sources':
        run.sources = Array.isArray(data.citations) ? data.citations : [];
        break;
      case 'delta':
        run.text += String(data.text || '');
        renderRun(run);
        if (!run.marks['verity:first-delta']) {
          markOnce(run, 'verity:first-delta');
          requestAnimationFrame(() => markOnce(run, 'verity:first-delta-frame'));
        }
        return;
      case 'grounding':
        run.answer = data;
        break;
      case 'done':
        run.timings = data.timings || null;
        run.finished = true;
        break;
      case 'error':
        run.finished = true;
        run.failed = true;
        showNotice({ kind: 'stream', message: (data.error && data.error.message) || '' });
        break;
      default:
        return;
    }
    renderRun(run);
  }

  function parseEvent(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length === 0) return null;
    try {
      return { name, data: JSON.parse(data.join('\n')) };
    } catch (_) {
      return null;
    }
  }

  async function ask(event) {
    if (event) event.preventDefault();
    const question = $('question').value.trim();
    if (!question) {
      $('question').focus();
      return;
    }
    if ($('ask-button').disabled) return;
    const collection = $('collection').value;
    if (current && current.controller) current.controller.abort();
    const controller = new AbortController();
    const run = {
      controller,
      question,
      collection,
      text: '',
      sources: null,
      answer: null,
      timings: null,
      finished: false,
      marks: {},
    };
    current = run;
    clearNotice();
    closePassage(false);
    remember(question, collection);
    if (collection) store.setItem(KEYS.collection, collection);
    renderRun(run);
    const body = { question, stream: true };
    if (collection) body.collection = collection;
    let response;
    try {
      response = await fetch('/v1/query', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream', ...authHeaders() },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
    } catch (e) {
      if (controller.signal.aborted) return;
      return fail(run, { kind: 'network' });
    }
    if (!response.ok) return fail(run, await failureFrom(response));
    const type = response.headers.get('Content-Type') || '';
    if (!type.includes('text/event-stream')) {
      try {
        handleEvent(run, 'grounding', await response.json());
        handleEvent(run, 'done', {});
      } catch (_) {
        fail(run, { kind: 'stream' });
      }
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const parsed = parseEvent(block);
          if (!parsed || current !== run) continue;
          if (parsed.name === 'delta') markOnce(run, 'verity:first-delta-read');
          handleEvent(run, parsed.name, parsed.data);
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
      return fail(run, { kind: 'stream', message: '' });
    }
    if (current !== run) return;
    if (!run.answer && !run.failed) return fail(run, { kind: 'stream', message: '' });
    if (!run.finished) {
      run.finished = true;
      renderRun(run);
    }
  }
  function fail(run, info) {
    if (current !== run) return;
    run.finished = true;
    run.failed = true;
    if (!run.answer && !run.text) $('result').hidden = true;
    else renderRun(run);
    showNotice(info);
    if (info.status === 401) {
      authNeeded = true;
      renderWho();
    }
  }

  // ---------------------------------------------------------------- upload
  const uploads = []; // {file, state, pct, doc, error}
  let uploading = false;

  function renderUploads() {
    const list = $('upload-list');
    list.replaceChildren(
      ...uploads.map((u) => {
        const li = document.createElement('li');
        li.className = `up ${u.state}`;
        const name = document.createElement('span');
        name.className = 'up-name';
        name.textContent = u.file.name;
        const bar = document.createElement('progress');
        bar.max = 1;
        bar.value = u.state === 'done' ? 1 : u.pct;
        bar.setAttribute('aria-label', u.file.name);
        const state = document.createElement('span');
        state.className = 'up-state';
        if (u.state === 'queued') state.textContent = t('upQueued');
        else if (u.state === 'sending') state.textContent = t('upSending', { pct: Math.round(u.pct * 100) });
        else if (u.state === 'processing') state.textContent = t('upProcessing');
        else if (u.state === 'done') {
          const d = u.doc || {};
          state.textContent = t(`up_${d.status || 'added'}`, {
            collection: d.collection || '',
            title: d.title || d.source || u.file.name,
            chunks: d.chunk_count ?? '?',
          });
        } else {
          const words = explain(u.error);
          state.textContent = t('upFailed', { why: [words.text, words.detail].filter(Boolean).join(' ') });
        }
        li.append(name, bar, state);
        return li;
      }),
    );
  }
  function sendFile(u, collection, groups) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/v1/documents');
      xhr.setRequestHeader('Accept', 'application/json');
      const value = token();
      if (value) xhr.setRequestHeader('Authorization', `Bearer ${value}`);
      xhr.upload.addEventListener('progress', (e) => {
        u.state = 'sending';
        if (e.lengthComputable && e.total > 0) u.pct = e.loaded / e.total;
        renderUploads();
      });
      xhr.upload.addEventListener('load', () => {
        u.state = 'processing';
        u.pct = 1;
        renderUploads();
      });
      xhr.addEventListener('load', () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          try {
            // {"document": {…, "chunk_count"}, "status": "added"|"updated"|"unchanged"}
            const reply = JSON.parse(xhr.responseText);
            u.doc = { ...(reply.document || {}), status: reply.status };
            u.state = 'done';
          } catch (_) {
            u.state = 'failed';
            u.error = { status: xhr.status, message: '' };
          }
        } else {
          u.state = 'failed';
          u.error = failureInfo(xhr.status, xhr.responseText, xhr.getResponseHeader('Retry-After'));
        }
        renderUploads();
        resolve();
      });
      xhr.addEventListener('error', () => {
        u.state = 'failed';
        u.error = { kind: 'network' };
        renderUploads();
        resolve();
      });
      const form = new FormData();
      if (collection) form.append('collection', collection);
      if (groups) form.append('groups', groups);
      form.append('file', u.file, u.file.name);
      xhr.send(form);
    });
  }
  async function upload(event) {
    event.preventDefault();
    const input = $('upload-files');
    const files = Array.from(input.files || []);
    if (files.length === 0) return;
    const collection = $('upload-collection').value.trim();
    const groups = $('upload-groups').value.trim();
    const batch = files.map((file) => ({ file, state: 'queued', pct: 0, doc: null, error: null }));
    uploads.unshift(...batch.slice().reverse());
    input.value = '';
    renderUploads();
    if (uploading) return;
    uploading = true;
    try {
      let next;
      while ((next = uploads.filter((u) => u.state === 'queued').pop())) {
        await sendFile(next, collection, groups);
      }
    } finally {
      uploading = false;
    }
    await loadCollections();
  }

  // ---------------------------------------------------------------- wiring
  function wire() {
    $('ask').addEventListener('submit', ask);
    $('question').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing) {
        e.preventDefault();
        $('ask').requestSubmit();
      }
    });
    $('collection').addEventListener('change', () => store.setItem(KEYS.collection, $('collection').value));
    const onCite = (e) => {
      const link = e.target.closest('a.cite');
      if (!link || !current) return;
      e.preventDefault();
      openPassage(current, Number.parseInt(link.dataset.n, 10), link);
    };
    $('answer').addEventListener('click', onCite);
    $('sources-list').addEventListener('click', onCite);
    $('passage-close').addEventListener('click', () => closePassage(true));
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !$('passage').hidden && !$('signin').open) closePassage(true);
    });
    $('lang').addEventListener('change', () => {
      if (!WORDS[$('lang').value]) return;
      lang = $('lang').value;
      store.setItem(KEYS.lang, lang);
      applyLanguage();
    });
    $('signin-open').addEventListener('click', openSignIn);
    $('notice-signin').addEventListener('click', openSignIn);
    $('signin-cancel').addEventListener('click', () => $('signin').close());
    $('signin-form').addEventListener('submit', submitSignIn);
    $('signout').addEventListener('click', signOut);
    $('thumb-up').addEventListener('click', () => rate('up'));
    $('thumb-down').addEventListener('click', () => rate('down'));
    $('feedback-form').addEventListener('submit', sendFeedback);
    $('upload-form').addEventListener('submit', upload);
  }

  wire();
  applyLanguage();
  refresh();
})();
