// kiln serve --ui as an attacker's web page would use it, with real HTTP requests to a running service:
// a DNS-rebinding Host is not answered, a cross-origin POST is refused, /login is rate-limited per
// address, sessions expire when idle and end at logout, and each route answers only its methods.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type Served } from '../daemon/serve-helpers.js';

const TOKEN = 'team-dashboard-token';
const IDLE_MS = 2000;
const WINDOW_MS = 3000;
let dir: string;
let s: Served;
let port: number;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-ui-sec-'));
  writeFileSync(join(dir, 'tokens'), `team:${TOKEN}\n`);
  s = await serve(['--addr', `unix://${join(dir, 'k.sock')}`, '--token-file', join(dir, 'tokens'), '--ui', '127.0.0.1:0', '--ui-host', 'kiln.example.test'], {
    env: { KILN_UI_LOGIN_ATTEMPTS: '3', KILN_UI_LOGIN_WINDOW_MS: String(WINDOW_MS), KILN_UI_SESSION_IDLE_MS: String(IDLE_MS) },
  });
  for (let i = 0; i < 200 && !port; i++) {
    port = Number(/dashboard on http:\/\/127\.0\.0\.1:(\d+)/.exec(s.stderr())?.[1] ?? 0);
    if (!port) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(port, s.stderr());
});
after(async () => {
  await s?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request to the dashboard on 127.0.0.1 with exactly these headers (Host defaults to 127.0.0.1:PORT). */
function http(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers, ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const origin = () => `http://127.0.0.1:${port}`;

/** Logs in with the token from the dashboard's own origin; returns the session cookie. */
async function login(): Promise<string> {
  const r = await http('POST', '/login', { origin: origin() }, `token=${TOKEN}`);
  assert.equal(r.status, 303, r.body);
  const cookie = String(r.headers['set-cookie']).split(';')[0]!;
  assert.match(cookie, /^kiln_session=[0-9a-f]{48}$/);
  return cookie;
}

test('Host header: only the dashboard\'s address, --ui-host names and localhost forms are answered (DNS rebinding)', async () => {
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`, `kiln.example.test:${port}`]) {
    const r = await http('GET', '/api/summary', { host, authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 200, `${host}: ${r.body}`);
  }
  for (const host of [`attacker.example:${port}`, 'attacker.example', `127.0.0.1:${port + 1}`, `127.0.0.1.attacker.example:${port}`, `127.0.0.1@attacker.example:${port}`]) {
    const r = await http('GET', '/api/summary', { host, authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 421, `${host}: ${r.body}`);
    assert.doesNotMatch(r.body, /builds/);
  }
  // The login form is not served to a rebinding page either (it would phish the token).
  assert.equal((await http('POST', '/login', { host: `attacker.example:${port}` }, `token=${TOKEN}`)).status, 421);
});

test('each route answers only its documented methods (405 with Allow otherwise)', async () => {
  const auth = { authorization: `Bearer ${TOKEN}` };
  for (const [method, path, allow] of [
    ['DELETE', '/', 'GET, HEAD'],
    ['POST', '/', 'GET, HEAD'],
    ['PUT', '/api/summary', 'GET, HEAD'],
    ['POST', '/api/summary', 'GET, HEAD'],
    ['GET', '/logout', 'POST'],
    ['PUT', '/login', 'GET, HEAD, POST'],
    ['POST', '/api/builds/abc/events', 'GET'],
    ['OPTIONS', '/builds/abc', 'GET, HEAD'],
  ] as const) {
    const r = await http(method, path, auth);
    assert.equal(r.status, 405, `${method} ${path}: ${r.body}`);
    assert.equal(r.headers.allow, allow, `${method} ${path}`);
  }
  assert.equal((await http('GET', '/api/summary', auth)).status, 200);
  assert.equal((await http('HEAD', '/', auth)).status, 200);
  assert.equal((await http('GET', '/no-such-page', auth)).status, 404);
  assert.equal((await http('GET', '/builds/abc', auth)).status, 404);
});

test('a cross-origin POST to /login or /logout is refused; the dashboard cannot be framed', async () => {
  for (const headers of <Record<string, string>[]>[{ origin: 'http://attacker.example' }, { origin: 'null' }, { origin: `http://127.0.0.1:${port + 1}` }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }]) {
    const r = await http('POST', '/login', headers, `token=${TOKEN}`);
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.equal(r.headers['set-cookie'], undefined);
  }
  const cookie = await login();
  const r = await http('POST', '/logout', { cookie, origin: 'http://attacker.example' });
  assert.equal(r.status, 403);
  assert.equal((await http('GET', '/api/summary', { cookie })).status, 200, 'the session survives a cross-origin logout attempt');
  const page = await http('GET', '/', { cookie });
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.match(page.body, /id="logout-button"/);
});

test('logout ends the session; an idle session expires', async () => {
  const cookie = await login();
  assert.equal((await http('GET', '/api/summary', { cookie })).status, 200);
  const out = await http('POST', '/logout', { cookie, origin: origin() });
  assert.equal(out.status, 303);
  assert.match(String(out.headers['set-cookie']), /^kiln_session=; .*Max-Age=0/);
  assert.equal((await http('GET', '/api/summary', { cookie })).status, 401, 'the old cookie no longer works');

  const idle = await login();
  // Requests keep it alive past the idle time; then it expires.
  await sleep(IDLE_MS * 0.6);
  assert.equal((await http('GET', '/api/summary', { cookie: idle })).status, 200);
  await sleep(IDLE_MS * 0.6);
  assert.equal((await http('GET', '/api/summary', { cookie: idle })).status, 200);
  await sleep(IDLE_MS * 1.3);
  const expired = await http('GET', '/', { cookie: idle });
  assert.equal(expired.status, 401);
  assert.match(expired.body, /id="login"/);
});

test('/login is rate-limited per address: after 3 wrong tokens even the right one waits', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await http('POST', '/login', { origin: origin() }, 'token=wrong-guess-' + i)).status, 401);
  const limited = await http('POST', '/login', { origin: origin() }, `token=${TOKEN}`);
  assert.equal(limited.status, 429);
  assert.match(String(limited.headers['retry-after']), /^[1-9][0-9]*$/);
  assert.match(limited.body, /too many failed logins: try again in \d+s/);
  assert.equal(limited.headers['set-cookie'], undefined);
  await sleep(WINDOW_MS + 200);
  await login();
});
