// The service's bookkeeping, as a user of kiln builder sees it: secrets asked from the client, build
// history with logs (expiring after --history-ttl), disk usage and prune of the caller's cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { writeContext } from '../helpers/build.js';
import { waitFor } from '../helpers/wait.js';
import { serve, clientEnv, kilnClient, type Served } from './serve-helpers.js';

const suite = buildSuite();
let server: Served;
let addr: string;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-service-'));
  server = await serve(['--addr', `unix://${join(dir, 'k.sock')}`, '--history-ttl', '10s']);
  addr = server.addr;
});
after(async () => {
  await server?.stop();
});

test('secrets come from the client on request; history lists the build and keeps its logs until --history-ttl passes', async () => {
  const env = clientEnv();
  const secret = join(dir, 'secret.txt');
  writeFileSync(secret, 's3cr3t-value');
  const out = join(dir, 'out');
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN --mount=type=secret,id=tok cp /run/secrets/tok /got && echo history-\$((2*3))\n` });
  const r = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', addr, '--secret', `id=tok,src=${secret}`, '-o', `type=local,dest=${out}`, ctx], env);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(out, 'got'), 'utf8'), 's3cr3t-value');
  const list = kilnClient(suite.root, ['builder', 'builds', addr], env);
  assert.equal(list.status, 0, list.stderr);
  const rows = list.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/));
  assert.equal(rows.length, 1, list.stdout);
  assert.equal(rows[0]![2], 'completed');
  const logs = kilnClient(suite.root, ['builder', 'logs', addr, rows[0]![1]!], env);
  assert.equal(logs.status, 0, logs.stderr);
  assert.match(logs.stdout, /^history-6$/m);
  assert.match(logs.stdout, /^completed sha256:[0-9a-f]{64}$/m);
  // Expired after --history-ttl (10 s; shorter races the two client calls above on a loaded machine): only the header is left.
  await waitFor(() => kilnClient(suite.root, ['builder', 'builds', addr], env).stdout.trim().split('\n').length === 1, { timeoutMs: 40_000, intervalMs: 500, what: 'the build to leave the history after --history-ttl' });
  const gone = kilnClient(suite.root, ['builder', 'logs', addr, rows[0]![1]!], env);
  assert.equal(gone.status, 1);
  assert.equal(gone.stderr.trim(), `kiln: no build ${rows[0]![1]}`);
});

test('kiln builder du shows the caller\'s cache on the node; kiln builder prune empties it and the step runs again', () => {
  const env = clientEnv();
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo prune-me-\$((3*3)) | tee /p\n` });
  const first = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', addr, ctx], env);
  assert.equal(first.status, 0, first.stderr);
  const du = kilnClient(suite.root, ['builder', 'du', addr], env);
  assert.equal(du.status, 0, du.stderr);
  const m = /^\S+: (\d+) cache records, .*; synced context files \S+$/m.exec(du.stdout);
  assert.ok(m && Number(m[1]) > 0, du.stdout);
  assert.match(du.stdout, /RUN echo prune-me/);
  const pr = kilnClient(suite.root, ['builder', 'prune', addr], env);
  assert.equal(pr.status, 0, pr.stderr);
  assert.match(pr.stdout, /^\S+: removed [1-9]\d* cache records, reclaimed /m);
  const again = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', addr, ctx], env);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /^#\d+ \d+\.\d+ prune-me-9$/m, 'the step ran again');
});

test('kiln builder cancel stops a running build of the caller; the client says so', async () => {
  const env = clientEnv();
  const { kilnClientAsync } = await import('./serve-helpers.js');
  const c = kilnClientAsync(suite.root, ['build', '--progress', 'plain', '--builder', addr, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo cancel-me-\$((5*5)) && sleep 300\n` })], env);
  await waitFor(() => /cancel-me-25/.test(c.output().stderr), { timeoutMs: 60_000, what: 'the build to start' });
  const list = kilnClient(suite.root, ['builder', 'builds', addr], env);
  const running = list.stdout.split('\n').map((l) => l.split(/\s+/)).find((cols) => cols[2] === 'running');
  assert.ok(running, list.stdout);
  const cancel = kilnClient(suite.root, ['builder', 'cancel', addr, running[1]!], env);
  assert.equal(cancel.status, 0, cancel.stderr);
  const r = await c.done;
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').at(-1), 'kiln: build canceled: canceled by request');
  const again = kilnClient(suite.root, ['builder', 'cancel', addr, running[1]!], env);
  assert.equal(again.status, 1);
  assert.equal(again.stderr.trim(), `kiln: kiln builder cancel: no running build ${running[1]}`);
});

test('a Dockerfile outside the context keeps its own .dockerignore on the builder', () => {
  const env = clientEnv();
  const ctx = writeContext({ '.dockerignore': 'data/keep.txt\n', 'data/keep.txt': 'keep\n', 'data/secret.txt': 'secret\n' });
  const outside = mkdtempSync(join(tmpdir(), 'kiln-df-'));
  writeFileSync(join(outside, 'app.Dockerfile'), `FROM ${suite.base}\nCOPY data /data\n`);
  writeFileSync(join(outside, 'app.Dockerfile.dockerignore'), 'data/secret.txt\n');
  const out = join(dir, 'outside-df');
  const r = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', addr, '-f', join(outside, 'app.Dockerfile'), '-o', `type=local,dest=${out}`, ctx], env);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(out, 'data', 'keep.txt'), 'utf8'), 'keep\n');
  assert.throws(() => readFileSync(join(out, 'data', 'secret.txt')), /ENOENT/);
  // .dockerignore and data/keep.txt: the secret never left the client.
  assert.match(r.stderr, /^context: 2 files, /m);
});

test('--build-context directories are synced like the context, images pass through; the digest is the local one', () => {
  const env = clientEnv();
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nCOPY --from=extra f.txt /f.txt\nCOPY --from=img /bin/busybox /bb\n` });
  // DIR/.dockerignore filters a named context (as BuildKit): skip.txt never leaves the client.
  const extra = writeContext({ 'f.txt': 'from the named context\n', 'skip.txt': 'ignored\n', '.dockerignore': 'skip.txt\n' });
  const args = ['--build-context', `extra=${extra}`, '--build-context', `img=docker-image://${suite.base}`];
  const meta = join(dir, 'named.json');
  const r = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', addr, ...args, '--metadata-file', meta, ctx], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^context: 3 files, 3 uploaded/m);
  const local = kilnClient(mkdtempSync(join(tmpdir(), 'kiln-local-')), ['build', '--progress', 'plain', ...args, '--metadata-file', `${meta}.local`, ctx], env);
  assert.equal(local.status, 0, local.stderr);
  const digest = (f: string) => JSON.parse(readFileSync(f, 'utf8'))['containerimage.digest'];
  assert.equal(digest(meta), digest(`${meta}.local`));
  const again = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', addr, ...args, ctx], env);
  assert.match(again.stderr, /^context: 3 files, 0 uploaded/m);
});

test('--cache-to/--cache-from type=registry go through the builder: another builder reuses the exported steps', async () => {
  const env = clientEnv();
  const cacheRef = `${suite.reg.host}/kiln/remote-cache:buildcache`;
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo exported-\$((4*4)) > /x\n` });
  const first = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', addr, '--cache-to', `type=registry,ref=${cacheRef},mode=max`, ctx], env);
  assert.equal(first.status, 0, first.stderr);
  const other = await serve(['--addr', `unix://${join(dir, 'other.sock')}`]);
  try {
    const second = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', other.addr, '--cache-from', `type=registry,ref=${cacheRef}`, ctx], env);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /RUN echo exported-[^\n]*\n#\d+ CACHED/);
  } finally {
    await other.stop();
  }
  const local = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', addr, '--cache-from', `type=local,src=${dir}`, ctx], env);
  assert.equal(local.status, 1);
  assert.equal(local.stderr.trim().split('\n').at(-1), 'kiln: --cache-from type=local reads a directory of this machine: not supported with a remote builder (use type=registry)');
});

test('--allow asks the builder for an entitlement: refused unless kiln serve allows it; --add-host reaches RUN', async () => {
  const env = clientEnv();
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN --network=host cat /etc/hosts | grep -c builder-alias\n` });
  const refused = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', addr, '--allow', 'network.host', ctx], env);
  assert.equal(refused.status, 1);
  assert.equal(refused.stderr.trim().split('\n').at(-1), 'kiln: entitlement network.host is not allowed by this builder (kiln serve --allow-insecure-entitlement network.host)');
  const permissive = await serve(['--addr', `unix://${join(dir, 'ent.sock')}`, '--allow-insecure-entitlement', 'network.host']);
  try {
    const hosts = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN grep builder-alias /etc/hosts\n` });
    const ok = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', permissive.addr, '--allow', 'network.host', '--add-host', 'builder-alias:10.1.2.3', hosts], env);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /^#\d+ \d+\.\d+ 10\.1\.2\.3\s+builder-alias$/m);
  } finally {
    await permissive.stop();
  }
});
