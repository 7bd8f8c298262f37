// A small OpenAI-compatible chat-completions engine for the browser tests. It speaks the real
// protocol (POST /v1/chat/completions, `stream: true` → `data: {chat.completion.chunk}` lines,
// then `data: [DONE]`) and answers by quoting the sentence of source 1 in the prompt that
// shares most words with the question,
// followed by ` [1]`, a few characters every ~20 ms, so Verity's verification finds it grounded.
//
// Questions can ask for other behaviour (the words are in the prompt's "Question:" line):
//   "mock-partial"  adds a sentence with a number no source has → verification removes it (partial)
//   "mock-fail"     answers 500 every time → Verity gives the extractive answer as `fallback`
// Every streamed piece's send time (epoch ms) is kept; GET /stats returns them.
import http from 'node:http';

const CHUNK_CHARS = 4;
const CHUNK_EVERY_MS = 20;
const FIRST_TOKEN_MS = 150;

// Words of four letters or more, lowercased: enough for a mock to tell which sentence of a
// source is about the question.
function words(text) {
  return new Set((text.toLowerCase().match(/\p{L}{4,}/gu) || []));
}

// The sentence of source 1 sharing most words with the question (the first on ties): a crude
// stand-in for a model that quotes what answers the question.
function bestSentence(prompt, question) {
  const m = /<source id="1"[^\n]*>\n([\s\S]*?)\n<\/source>/.exec(prompt);
  if (!m) return null;
  const asked = words(question);
  let best = null;
  let bestScore = -1;
  for (const raw of m[1].split('\n')) {
    const line = raw.replace(/^\s*(?:[-*+]|\d+\.)\s+/, '').trim();
    if (!line || line.startsWith('#') || line.startsWith('|')) continue;
    if (line.split(/\s+/).length < 5) continue;
    for (const sentence of line.split(/(?<=[.!?])\s+/)) {
      const score = [...words(sentence)].filter((w) => asked.has(w)).length;
      if (score > bestScore) {
        best = sentence;
        bestScore = score;
      }
    }
  }
  return best;
}

export function answerFor(messages) {
  const user = [...messages].reverse().find((m) => m.role === 'user');
  const prompt = user ? String(user.content) : '';
  const question = (/Question: ([\s\S]*)$/.exec(prompt) || [])[1] || '';
  const sentence = bestSentence(prompt, question);
  if (!sentence) return { text: 'The documents do not answer the question.', question };
  let text = `${sentence.replace(/[.!?;:,]*$/, '.')} [1]`;
  if (question.includes('mock-partial')) {
    text += ' Every employee also receives 977 golden parachutes each week [1].';
  }
  return { text, question };
}

export function startMockLlm({ port = 0, host = '127.0.0.1' } = {}) {
  const sent = []; // {at, text}
  const requests = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/stats') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ sent, requests }));
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'mock', object: 'model' }] }));
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      let request;
      try {
        request = JSON.parse(body);
      } catch (e) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `not JSON: ${e.message}` } }));
        return;
      }
      const { text, question } = answerFor(request.messages || []);
      requests.push({ at: Date.now(), question, stream: Boolean(request.stream) });
      if (question.includes('mock-fail')) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'the mock engine was asked to fail' } }));
        return;
      }
      const id = `chatcmpl-mock-${requests.length}`;
      const created = Math.floor(Date.now() / 1000);
      const model = request.model || 'mock';
      if (!request.stream) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(
          JSON.stringify({
            id,
            object: 'chat.completion',
            created,
            model,
            choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
          }),
        );
        return;
      }
      res.writeHead(200, {
        'Content-Type': 'text/event-stream',
        'Cache-Control': 'no-cache',
        Connection: 'keep-alive',
      });
      res.flushHeaders();
      const chunk = (delta, finish = null, usage = undefined) => {
        const value = { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] };
        if (usage) value.usage = usage;
        return `data: ${JSON.stringify(value)}\n\n`;
      };
      res.write(chunk({ role: 'assistant', content: '' }));
      const pieces = [];
      for (let i = 0; i < text.length; i += CHUNK_CHARS) pieces.push(text.slice(i, i + CHUNK_CHARS));
      let closed = false;
      res.on('close', () => (closed = true));
      let i = 0;
      const next = () => {
        if (closed) return;
        if (i < pieces.length) {
          const piece = pieces[i++];
          sent.push({ at: performance.timeOrigin + performance.now(), text: piece });
          res.write(chunk({ content: piece }));
          setTimeout(next, CHUNK_EVERY_MS);
          return;
        }
        res.write(chunk({}, 'stop'));
        res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: { prompt_tokens: 100, completion_tokens: pieces.length, total_tokens: 100 + pieces.length } })}\n\n`);
        res.end('data: [DONE]\n\n');
      };
      setTimeout(next, FIRST_TOKEN_MS);
    });
  });
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const { port: bound } = server.address();
      resolve({
        url: `http://${host}:${bound}/v1`,
        port: bound,
        sent,
        requests,
        reset() {
          sent.length = 0;
          requests.length = 0;
        },
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
    server.on('connection', (s) => s.setNoDelay(true));
  });
}

// `node lib/mock-llm.js [port]` runs it on its own.
if (import.meta.url === `file://${process.argv[1]}`) {
  const engine = await startMockLlm({ port: Number(process.argv[2] || 0) });
  console.log(`mock engine on ${engine.url}`);
}
