// kiln serve's access control: mTLS on loopback TCP (certificates made with openssl here), bearer tokens,
// clear refusals for a wrong token or a certificate from another CA, a refusal to listen on a
// non-loopback address without TLS or tokens, and tenants that never share cache records or context files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { writeContext } from '../helpers/build.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { serve, clientEnv, kilnClient, makeCerts, uploads, type Served, type Certs } from './serve-helpers.js';

const suite = buildSuite();
let certs: Certs;
let tls: Served;

before(async () => {
  certs = makeCerts();
  tls = await serve(['--addr', 'tcp://127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.ca]);
});
after(async () => {
  await tls?.stop();
});

function lastLine(s: string): string {
  return s.trim().split('\n').at(-1) ?? '';
}

/** A client env with a builder NAME pointing at the mTLS server with the given client certificate. */
function tlsClient(name: string, cert?: { cert: string; key: string }, ca = certs.ca): NodeJS.ProcessEnv {
  const env = clientEnv();
  const args = ['builder', 'create', name, '--addr', tls.addr, '--use'];
  if (ca) args.push('--tls-ca', ca);
  if (cert) args.push('--tls-cert', cert.cert, '--tls-key', cert.key);
  const r = kiln(suite.root, args, { env });
  assert.equal(r.status, 0, r.stderr);
  return env;
}

test('mTLS: a client with a certificate from the CA builds; tenants (certificate CN) share neither context files nor cache records', () => {
  assert.match(tls.addr, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.match(tls.stderr(), /\(mTLS;/);
  const alice = tlsClient('remote', certs.client('alice'));
  const bob = tlsClient('remote', certs.client('bob'));
  const files = { Dockerfile: `FROM ${suite.base}\nCOPY . /src\nRUN echo tenant-step-\$((6*7))\n`, 'one.txt': '1\n', 'two.txt': '2\n' };
  const ctx = writeContext(files);
  const meta = join(mkdtempSync(join(tmpdir(), 'kiln-meta-')), 'm.json');
  const a1 = kilnClient(suite.root, ['build', '--progress', 'plain', '--metadata-file', meta, ctx], alice);
  assert.equal(a1.status, 0, a1.stderr);
  const local = kiln(tempRoot(), ['build', '--progress', 'plain', '--builder', 'default', '--metadata-file', `${meta}.local`, ctx], { env: alice, timeoutMs: 300_000 });
  assert.equal(local.status, 0, local.stderr);
  const digest = (f: string) => JSON.parse(readFileSync(f, 'utf8'))['containerimage.digest'];
  assert.equal(digest(meta), digest(`${meta}.local`), 'the mTLS build has the digest of a local build');
  assert.deepEqual(uploads(a1.stderr), { files: 3, uploaded: 3, reused: 0 });
  assert.match(a1.stderr, /^#\d+ \d+\.\d+ tenant-step-42$/m);
  const a2 = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], alice);
  assert.equal(a2.status, 0, a2.stderr);
  assert.deepEqual(uploads(a2.stderr), { files: 3, uploaded: 0, reused: 3 });
  assert.doesNotMatch(a2.stderr, /tenant-step-42/);
  // bob sends the same context: the server holds its bytes, but not for bob; and alice's step is no hit for bob.
  const b1 = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], bob);
  assert.equal(b1.status, 0, b1.stderr);
  assert.deepEqual(uploads(b1.stderr), { files: 3, uploaded: 3, reused: 0 });
  assert.match(b1.stderr, /^#\d+ \d+\.\d+ tenant-step-42$/m);
  // Each tenant's history lists its own builds only.
  const ha = kilnClient(suite.root, ['builder', 'builds'], alice);
  const hb = kilnClient(suite.root, ['builder', 'builds'], bob);
  assert.equal(ha.status, 0, ha.stderr);
  assert.equal(ha.stdout.trim().split('\n').length - 1, 2, ha.stdout);
  assert.equal(hb.stdout.trim().split('\n').length - 1, 1, hb.stdout);
  const info = kilnClient(suite.root, ['builder', 'inspect'], bob);
  assert.match(info.stdout, /^Tenant: +bob$/m);
  assert.match(info.stdout, /^Status: +running$/m);
});

test('mTLS: a certificate from another CA, or none, is refused with a clear message', () => {
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\n` });
  const rogue = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], tlsClient('rogue', certs.rogue));
  assert.equal(rogue.status, 1);
  assert.match(lastLine(rogue.stderr), /^kiln: builder rogue0 \(tcp:\/\/127\.0\.0\.1:\d+\) refused the client certificate: not signed by a CA it trusts$/);
  const none = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], tlsClient('nocert'));
  assert.equal(none.status, 1);
  assert.match(lastLine(none.stderr), /^kiln: builder nocert0 \(tcp:\/\/127\.0\.0\.1:\d+\) refused the connection: it requires a client certificate \(kiln builder create --tls-cert\/--tls-key\)$/);
  // A client that does not trust the server's CA refuses the server.
  const untrusting = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], tlsClient('untrusting', certs.client('carol'), certs.rogue.cert.replace('mallory.crt', 'rogue-ca.crt')));
  assert.equal(untrusting.status, 1);
  assert.match(lastLine(untrusting.stderr), /^kiln: cannot trust builder untrusting0 \(tcp:\/\/127\.0\.0\.1:\d+\): its certificate is not signed by the CA given/);
});

test('tokens: a wrong or missing token is refused; tokens naming one tenant share its cache', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-tokens-'));
  const tokenFile = join(dir, 'tokens');
  writeFileSync(tokenFile, '# tenant:token\nteam:team-token-one\nteam:team-token-two\nsolo:solo-token-xyz\n');
  const sock = join(dir, 'k.sock');
  const s = await serve(['--addr', `unix://${sock}`, '--token-file', tokenFile]);
  try {
    const withToken = (token: string | undefined) => {
      const env = clientEnv();
      const args = ['builder', 'create', 'tok', '--addr', `unix://${sock}`, '--use'];
      if (token !== undefined) {
        writeFileSync(join(dir, `t-${token}`), token + '\n');
        args.push('--token-file', join(dir, `t-${token}`));
      }
      assert.equal(kiln(suite.root, args, { env }).status, 0);
      return env;
    };
    const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nCOPY x /x\n`, x: 'x\n' });
    const wrong = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], withToken('not-a-valid-token'));
    assert.equal(wrong.status, 1);
    assert.equal(lastLine(wrong.stderr), `kiln: builder tok0 (unix://${sock}) refused: invalid token`);
    const missing = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], withToken(undefined));
    assert.equal(missing.status, 1);
    assert.match(lastLine(missing.stderr), /refused: this builder requires a token/);
    const one = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], withToken('team-token-one'));
    assert.equal(one.status, 0, one.stderr);
    assert.deepEqual(uploads(one.stderr), { files: 2, uploaded: 2, reused: 0 });
    const two = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], withToken('team-token-two'));
    assert.equal(two.status, 0, two.stderr);
    assert.deepEqual(uploads(two.stderr), { files: 2, uploaded: 0, reused: 2 }, 'same tenant: shared');
    const solo = kilnClient(suite.root, ['build', '--progress', 'plain', ctx], withToken('solo-token-xyz'));
    assert.equal(solo.status, 0, solo.stderr);
    assert.deepEqual(uploads(solo.stderr), { files: 2, uploaded: 2, reused: 0 }, 'another tenant: nothing shared');
  } finally {
    await s.stop();
  }
});

test('--shared-cache: every tenant uses one cache namespace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-shared-'));
  writeFileSync(join(dir, 'tokens'), 'red:red-token-123\nblue:blue-token-456\n');
  const s = await serve(['--addr', `unix://${join(dir, 'k.sock')}`, '--token-file', join(dir, 'tokens'), '--shared-cache']);
  try {
    const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nCOPY y /y\n`, y: 'y\n' });
    const build = (token: string) => {
      const env = clientEnv();
      writeFileSync(join(dir, token), token);
      assert.equal(kiln(suite.root, ['builder', 'create', 'sh', '--addr', s.addr, '--token-file', join(dir, token), '--use'], { env }).status, 0);
      return kilnClient(suite.root, ['build', '--progress', 'plain', ctx], env);
    };
    const red = build('red-token-123');
    assert.equal(red.status, 0, red.stderr);
    assert.deepEqual(uploads(red.stderr), { files: 2, uploaded: 2, reused: 0 });
    const blue = build('blue-token-456');
    assert.equal(blue.status, 0, blue.stderr);
    assert.deepEqual(uploads(blue.stderr), { files: 2, uploaded: 0, reused: 2 });
    assert.match(blue.stderr, /COPY y \/y\n#\d+ CACHED/);
  } finally {
    await s.stop();
  }
});

test('kiln serve refuses a non-loopback address without TLS or tokens', () => {
  const r = kiln(suite.root, ['serve', '--addr', 'tcp://0.0.0.0:0']);
  assert.equal(r.status, 1);
  assert.equal(lastLine(r.stderr), 'kiln: kiln serve: refusing to listen on tcp://0.0.0.0:0 without TLS (--tls-cert/--tls-key) or tokens (--token-file); pass --insecure to do it anyway');
  const bad = kiln(suite.root, ['serve', '--addr', 'tcp://127.0.0.1:0', '--tls-cert', certs.serverCert]);
  assert.equal(bad.status, 1);
  assert.equal(lastLine(bad.stderr), 'kiln: kiln serve: --tls-cert and --tls-key go together');
});
