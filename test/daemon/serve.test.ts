// kiln serve on a unix socket, built through with kiln build --builder: the same image as a local build,
// context sync that uploads nothing the second time and one file after a one-file change, concurrent
// builds sharing a step, a queue when all build slots are busy, Ctrl-C canceling the remote work, and
// a graceful shutdown that finishes the running build and keeps its cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import { mkdtempSync, writeFileSync, readFileSync, existsSync, utimesSync, linkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { writeContext } from '../helpers/build.js';
import { tempRoot } from '../helpers/kiln.js';
import { serve, clientEnv, kilnClient, kilnClientAsync, uploads, type Served } from './serve-helpers.js';
import { waitFor } from '../helpers/wait.js';

const suite = buildSuite();
let server: Served;
let sock: string;

before(async () => {
  sock = join(mkdtempSync(join(tmpdir(), 'kiln-sock-')), 'kiln.sock');
  server = await serve(['--addr', `unix://${sock}`, '--max-parallel', '2']);
});
after(async () => {
  await server?.stop();
});

function digestOf(metaFile: string): string {
  return JSON.parse(readFileSync(metaFile, 'utf8'))['containerimage.digest'];
}

function sleepers(marker: string): number {
  try {
    return execFileSync('pgrep', ['-f', `^sleep ${marker}$`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

async function until(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  await waitFor(cond, { timeoutMs, intervalMs: 200, what });
}

test('a build through kiln serve on a unix socket gives the digest of a local build; the second build uploads nothing, a one-file change uploads one file', () => {
  const ctx = writeContext({
    Dockerfile: `FROM ${suite.base}\nCOPY . /app\nRUN cat /app/a.txt /app/sub/b.txt > /joined\n`,
    'a.txt': 'alpha\n',
    'sub/b.txt': 'beta\n',
    'sub/c.sh': { content: '#!/bin/sh\necho c\n', mode: 0o755 },
    '.dockerignore': 'ignored.txt\n',
    'ignored.txt': 'never sent\n',
  });
  // Two paths with the same content and metadata (never one inode on the builder), and a real hard link.
  writeFileSync(join(ctx, 'same1.txt'), 'same\n');
  writeFileSync(join(ctx, 'same2.txt'), 'same\n');
  utimesSync(join(ctx, 'same1.txt'), 1600000000, 1600000000);
  utimesSync(join(ctx, 'same2.txt'), 1600000000, 1600000000);
  linkSync(join(ctx, 'a.txt'), join(ctx, 'a-link.txt'));
  const env = clientEnv();
  const localMeta = join(ctx, '..', `${ctx.split('/').pop()}-local.json`);
  const local = kilnClient(tempRoot(), ['build', '--progress', 'plain', '--metadata-file', localMeta, ctx], env);
  assert.equal(local.status, 0, local.stderr);

  const meta1 = join(suite.outs, 'remote1.json');
  const first = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, '--metadata-file', meta1, ctx], env);
  assert.equal(first.status, 0, first.stderr);
  assert.equal(digestOf(meta1), digestOf(localMeta), 'same image digest as the local build');
  // Dockerfile, .dockerignore, a.txt, sub/b.txt, sub/c.sh, same1.txt, same2.txt (a-link.txt is a link to
  // a.txt): the ignored file is not part of the context; same1/same2 have one content.
  assert.deepEqual(uploads(first.stderr), { files: 7, uploaded: 6, reused: 0 });
  assert.match(first.stderr, /^#\d+ \[3\/3\] RUN cat/m, 'progress is rendered as for a local build');

  const second = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, ctx], env);
  assert.equal(second.status, 0, second.stderr);
  assert.deepEqual(uploads(second.stderr), { files: 7, uploaded: 0, reused: 7 });
  assert.match(second.stderr, /^#\d+ CACHED$/m);

  writeFileSync(join(ctx, 'sub/b.txt'), 'beta changed\n');
  const meta3 = join(suite.outs, 'remote3.json');
  const third = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, '--metadata-file', meta3, '-o', `type=local,dest=${join(suite.outs, 'third')}`, ctx], env);
  assert.equal(third.status, 0, third.stderr);
  assert.deepEqual(uploads(third.stderr), { files: 7, uploaded: 1, reused: 6 });
  assert.equal(readFileSync(join(suite.outs, 'third', 'joined'), 'utf8'), 'alpha\nbeta changed\n');
  assert.equal(existsSync(join(suite.outs, 'third', 'app', 'ignored.txt')), false);
  assert.equal((execFileSync('stat', ['-c', '%a', join(suite.outs, 'third', 'app', 'sub', 'c.sh')], { encoding: 'utf8' })).trim(), '755');
  assert.equal(statSync(join(suite.outs, 'third', 'app', 'same1.txt')).mtimeMs, 1600000000000);
});

test('an OCI archive streams back from the builder; a Dockerfile error is one line naming the builder-side line', () => {
  const env = clientEnv();
  const archive = join(suite.outs, 'remote.oci.tar');
  const ok = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, '-o', `type=oci,dest=${archive}`, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo hi > /hi\n` })], env);
  assert.equal(ok.status, 0, ok.stderr);
  const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${archive}`], { encoding: 'utf8' }));
  assert.equal(index.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  const bad = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN exit 3\n` })], env);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr.trim().split('\n').at(-1)!, /^kiln: Dockerfile:2: process "\/bin\/sh -c exit 3" did not complete successfully: exit code: 3$/);
});

test('concurrent builds of the same step run it once: the second waits for the first and gets a cache hit', async () => {
  const env = clientEnv();
  const files = { Dockerfile: `FROM ${suite.base}\nRUN echo dedup-step-\$((40+2)) && sleep 3 && date > /when\n` };
  const a = kilnClientAsync(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, writeContext(files)], env);
  await until('the first build to start its RUN step', () => /dedup-step-42/.test(a.output().stderr));
  const b = kilnClientAsync(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, writeContext(files)], env);
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.status, 0, ra.stderr);
  assert.equal(rb.status, 0, rb.stderr);
  assert.match(ra.stderr, /^#\d+ \d+\.\d+ dedup-step-42$/m);
  assert.doesNotMatch(rb.stderr, /dedup-step-42/, 'the second build did not run the step');
  assert.match(rb.stderr, /RUN echo dedup-step-[^\n]*\n#\d+ CACHED/);
});

test('two builds started at the same moment run their common step once', async () => {
  const env = clientEnv();
  const files = { Dockerfile: `FROM ${suite.base}\nRUN echo together-${Date.now()}-\$((20+3)) && sleep 2\n` };
  const runs = [0, 1].map(() => kilnClientAsync(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, writeContext(files)], env));
  const results = await Promise.all(runs.map((r) => r.done));
  for (const r of results) assert.equal(r.status, 0, r.stderr);
  const ran = results.filter((r) => /^#\d+ \d+\.\d+ together-\d+-23$/m.test(r.stderr));
  assert.equal(ran.length, 1, results.map((r) => r.stderr).join('\n----\n'));
});

test('with every build slot busy a build waits in the queue, then runs', async () => {
  const env = clientEnv();
  const slow = (n: number) => writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo busy-${n}-${Date.now()}-\$((1+1)) && sleep 3\n` });
  const running = [1, 2].map((n) => kilnClientAsync(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, slow(n)], env));
  await until('both slots to be busy', () => running.every((r) => /busy-\d-\d+-2/.test(r.output().stderr)));
  const queued = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo queued-${Date.now()}\n` })], env);
  assert.equal(queued.status, 0, queued.stderr);
  assert.match(queued.stderr, /^waiting for a build slot \(1 queued, 2 running\)$/m);
  for (const r of await Promise.all(running.map((x) => x.done))) assert.equal(r.status, 0, r.stderr);
});

test('Ctrl-C on the client cancels the remote build: its RUN process is killed and the build is recorded as canceled', async () => {
  const env = clientEnv();
  const marker = String(4000 + Math.floor(Math.random() * 1000));
  const c = kilnClientAsync(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo long-step && sleep ${marker}\n` })], env);
  await until('the remote RUN step to run', () => sleepers(marker) > 0);
  c.child.kill('SIGINT');
  const r = await c.done;
  assert.notEqual(r.status, 0);
  assert.match(r.stderr.trim().split('\n').at(-1)!, /^kiln: build canceled/);
  await until('the sandboxed process to be gone', () => sleepers(marker) === 0, 20_000);
  const history = kilnClient(suite.root, ['builder', 'builds', `unix://${sock}`], env);
  assert.equal(history.status, 0, history.stderr);
  const line = history.stdout.split('\n').find((l) => /\scanceled\s/.test(l));
  assert.ok(line, history.stdout);
  // The slot is free again: a build runs at once.
  const after = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo after-cancel\n` })], env);
  assert.equal(after.status, 0, after.stderr);
  assert.doesNotMatch(after.stderr, /waiting for a build slot/);
});

test('SIGTERM lets the running build finish, then the server stops; a restarted server has its cache', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-serve-'));
  const s2 = join(mkdtempSync(join(tmpdir(), 'kiln-sock-')), 'k.sock');
  const first = await serve(['--addr', `unix://${s2}`], { root });
  const env = clientEnv();
  const files = { Dockerfile: `FROM ${suite.base}\nRUN echo graceful-${Date.now()}-\$((1+1)) && sleep 2 && echo done > /done\n` };
  const ctx = writeContext(files);
  const c = kilnClientAsync(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${s2}`, ctx], env);
  await until('the build to be running', () => /graceful-\d+-2/.test(c.output().stderr));
  const exited = first.stop('SIGTERM');
  const r = await c.done;
  assert.equal(r.status, 0, r.stderr);
  assert.equal(await exited, 0, first.stderr());
  assert.match(first.stderr(), /waiting up to \d+s for 1 running build/);
  assert.match(first.stderr(), /stopped$/m);
  const again = await serve(['--addr', `unix://${s2}`], { root });
  try {
    const r2 = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${s2}`, ctx], env);
    assert.equal(r2.status, 0, r2.stderr);
    assert.match(r2.stderr, /RUN echo graceful-[^\n]*\n#\d+ CACHED/);
    assert.deepEqual(uploads(r2.stderr), { files: 1, uploaded: 0, reused: 1 });
  } finally {
    await again.stop();
  }
});

test('--push through the builder pushes from the builder to the registry', () => {
  const env = clientEnv();
  const name = `${suite.reg.host}/kiln/remote-push:1`;
  const meta = join(suite.outs, 'push.json');
  const r = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, '-t', name, '--push', '--metadata-file', meta, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo pushed > /pushed\n` })], env);
  assert.equal(r.status, 0, r.stderr);
  const raw = execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${name}`]);
  assert.equal(`sha256:${crypto.createHash('sha256').update(raw).digest('hex')}`, digestOf(meta));
});

test('a RUN that bind-mounts the context read-write cannot change the builder\'s copy of it', () => {
  const env = clientEnv();
  const ctx = writeContext({
    Dockerfile: `FROM ${suite.base}\nRUN --mount=type=bind,target=/ctx,rw echo overwritten > /ctx/data.txt && cat /ctx/data.txt\n`,
    'read.Dockerfile': `FROM ${suite.base}\nCOPY data.txt /data.txt\n`,
    'data.txt': 'original\n',
  });
  const r = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, ctx], env);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^#\d+ \d+\.\d+ overwritten$/m, 'the RUN wrote into its mount');
  // The same context (same files, same mtimes) read by another build: the builder's copy is intact.
  const out = join(suite.outs, 'rw');
  const r2 = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, '-f', join(ctx, 'read.Dockerfile'), '-o', `type=local,dest=${out}`, ctx], env);
  assert.equal(r2.status, 0, r2.stderr);
  assert.deepEqual(uploads(r2.stderr), { files: 3, uploaded: 0, reused: 3 });
  assert.equal(readFileSync(join(out, 'data.txt'), 'utf8'), 'original\n');
  assert.equal(readFileSync(join(ctx, 'data.txt'), 'utf8'), 'original\n');
});

test('SIGTERM past --shutdown-timeout cancels the running build: the client is told, nothing of it is cached', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-serve-'));
  const s2 = join(mkdtempSync(join(tmpdir(), 'kiln-sock-')), 'k.sock');
  const first = await serve(['--addr', `unix://${s2}`, '--shutdown-timeout', '1s'], { root });
  const env = clientEnv();
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo cut-short-\$((7*7)) && sleep 120\n` });
  const c = kilnClientAsync(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${s2}`, ctx], env);
  await until('the build to be running', () => /cut-short-49/.test(c.output().stderr));
  assert.equal(await first.stop('SIGTERM'), 0, first.stderr());
  const r = await c.done;
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').at(-1), 'kiln: build canceled: the builder is shutting down');
  const again = await serve(['--addr', `unix://${s2}`, '--shutdown-timeout', '1s'], { root });
  try {
    const c2 = kilnClientAsync(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${s2}`, ctx], env);
    await until('the step to run again', () => /cut-short-49/.test(c2.output().stderr));
    c2.child.kill('SIGINT');
    await c2.done;
  } finally {
    await again.stop();
  }
});
