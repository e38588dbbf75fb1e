// A live `outband-server serve` for one test file: a free 127.0.0.1 port, SQLite in a
// temporary directory, a configuration file that registers the test's clients, and a
// user with a password set through the admin CLI (`users add --password-stdin`).
//
// The binary is $OUTBAND_SERVER_BIN, else target/debug/outband-server (built by
// `cargo xtask interop` / `cargo xtask test`).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const TARGET = process.env.INTEROP_TARGET_DIR
  ?? (process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target'));
export const SERVER_BIN = process.env.OUTBAND_SERVER_BIN ?? join(TARGET, 'debug', 'outband-server');

/** The user who signs in through the pages. */
export const USER = { username: 'alice', password: 'correct horse battery staple', email: 'alice@example.com', name: 'Alice Example' };

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

/** A TOML value: strings, numbers, booleans, arrays and (inline) tables. */
function toml(value) {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(toml).join(', ')}]`;
  if (value && typeof value === 'object') {
    return `{ ${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)} = ${toml(v)}`).join(', ')} }`;
  }
  throw new TypeError(`no TOML for ${value}`);
}

/** Runs the server binary with `args` to completion; rejects on a non-zero exit. */
function runCli(args, { stdin = '', log } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(SERVER_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'], env: cleanEnv() });
    let out = '';
    child.stdout.on('data', (chunk) => { out += chunk; });
    child.stderr.on('data', (chunk) => { out += chunk; });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (log) writeFileSync(log, out, { flag: 'a' });
      if (code === 0) resolveRun(out);
      else reject(new Error(`outband-server ${args.join(' ')} exited ${code}: ${out}`));
    });
    child.stdin.end(stdin);
  });
}

/** The environment without OUTBAND_* variables (they would override the configuration). */
function cleanEnv() {
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' };
  for (const key of Object.keys(env)) if (key.startsWith('OUTBAND_')) delete env[key];
  return env;
}

/**
 * Starts a server with `clients` (client metadata objects, `client_secret` allowed) registered
 * in its configuration file. With `tls` (a certificate from tls.js) it listens with TLS and
 * asks for client certificates (mutual TLS optional); `fetch` then must trust it.
 * Resolves to `{ issuer, logFile, stop() }` once `/readyz` answers 200.
 */
export async function startServer({ name, clients, tls, fetch: get = fetch }) {
  if (!existsSync(SERVER_BIN)) {
    throw new Error(`${SERVER_BIN} is missing: build it with \`cargo build -p outband-server --bins\``);
  }
  const dir = mkdtempSync(join(tmpdir(), 'outband-interop-'));
  const port = await freePort();
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const logDir = join(TARGET, 'interop');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.server.log`);
  writeFileSync(logFile, '');
  const config = join(dir, 'outband.toml');
  const lines = [
    `issuer = ${toml(issuer)}`,
    `listen = ${toml(`127.0.0.1:${port}`)}`,
    `database_url = ${toml(`sqlite://${join(dir, 'outband.db')}`)}`,
    `key_file = ${toml(join(dir, 'outband.key'))}`,
    'environment = "development"',
    '',
  ];
  if (tls) {
    writeFileSync(join(dir, 'tls-cert.pem'), tls.cert);
    writeFileSync(join(dir, 'tls-key.pem'), tls.key, { mode: 0o600 });
    lines.push('[tls]', `cert_file = ${toml(join(dir, 'tls-cert.pem'))}`, `key_file = ${toml(join(dir, 'tls-key.pem'))}`,
      'client_auth = "optional"', '');
  }
  for (const client of clients) {
    lines.push('[[clients]]');
    for (const [key, value] of Object.entries(client)) lines.push(`${key} = ${toml(value)}`);
    lines.push('');
  }
  writeFileSync(config, lines.join('\n'));

  await runCli(
    ['--config', config, 'users', 'add', USER.username, '--email', USER.email, '--name', USER.name, '--password-stdin'],
    { stdin: `${USER.password}\n`, log: logFile },
  );

  const out = openSync(logFile, 'a');
  const child = spawn(SERVER_BIN, ['--config', config, 'serve'], { stdio: ['ignore', out, out], env: cleanEnv() });
  closeSync(out);
  let exited = null;
  child.once('exit', (code, signal) => { exited = { code, signal }; });

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`outband-server exited (${JSON.stringify(exited)}) before it was ready: see ${logFile}`);
    try {
      const res = await get(`${issuer}/readyz`);
      if (res.status === 200) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`outband-server was not ready within 30 s: see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    issuer,
    logFile,
    async stop() {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
