// A real `verity` for the browser tests: the binary scripts/test.sh builds, a data directory
// with knowledge/ ingested (made once, then copied per test file), `verity serve` on a free
// loopback port, and API keys.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const OUTPUT = path.resolve(process.env.VERITY_BROWSER_OUTPUT || path.join(REPO, 'test-output/browser'));
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(REPO, process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');
export const BIN = process.env.VERITY_BIN || path.join(TARGET, 'debug/verity');

// Two collections, so that a key scoped to one means something.
export const COLLECTIONS = { handbook: 'knowledge', product: 'knowledge/verity' };

function baseEnv(extra = {}) {
  const env = { ...process.env, VERITY_LOG: process.env.VERITY_LOG || 'warn', ...extra };
  delete env.VERITY_DATA_DIR;
  return env;
}

export function verity(dataDir, args, extraEnv = {}) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`verity binary not found at ${BIN}; build it with cargo build -p verity-cli (or set VERITY_BIN)`);
  }
  return execFileSync(BIN, ['--data-dir', dataDir, ...args], {
    cwd: REPO,
    env: baseEnv(extraEnv),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
}

// The data directory every test file starts from: knowledge/ in `handbook`, knowledge/verity
// also in `product`. Made once per run (VERITY_BROWSER_BASE, or a temp dir), then copied.
export function baseDataDir() {
  const base = process.env.VERITY_BROWSER_BASE || path.join(os.tmpdir(), `verity-browser-base-${process.ppid}`);
  const ready = path.join(base, '.browser-tests-ready');
  if (fs.existsSync(ready)) return base;
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(base, { recursive: true });
  for (const [collection, dir] of Object.entries(COLLECTIONS)) {
    verity(base, ['ingest', path.join(REPO, dir), '--collection', collection, '--json']);
  }
  fs.writeFileSync(ready, new Date().toISOString());
  return base;
}

export function freshDataDir(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `verity-browser-${name}-`));
  fs.cpSync(baseDataDir(), dir, { recursive: true });
  fs.rmSync(path.join(dir, '.lock'), { force: true });
  return dir;
}

export function createKey(dataDir, { name, scopes, collections }) {
  const args = ['keys', 'create', '--name', name, '--scopes', scopes.join(','), '--json'];
  if (collections) args.push('--collections', collections.join(','));
  return JSON.parse(verity(dataDir, args)).key;
}

// `verity serve` on 127.0.0.1:0; resolves with its base URL once it says where it listens.
export function serve(dataDir, extraEnv = {}) {
  const child = spawn(BIN, ['--data-dir', dataDir, 'serve', '--bind', '127.0.0.1:0'], {
    cwd: REPO,
    env: baseEnv({ VERITY_LOG: 'info', ...extraEnv }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`verity serve did not start within 120 s:\n${log}`));
    }, 120_000);
    const onData = (d) => {
      log += d.toString();
      // Only a whole line: output arrives in pieces, and half a port number is another port.
      const m = /listening on (https?:\/\/[^\s]+)[^\n]*\n/.exec(log);
      if (m && timer) {
        clearTimeout(timer);
        resolve({
          url: m[1].replace(/\/$/, ''),
          child,
          log: () => log,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
            }),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`verity serve exited with ${code}:\n${log}`));
    });
  });
}
