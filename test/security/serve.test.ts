// kiln serve as a shared builder, tried as a hostile tenant would: crafted context manifests sent with raw
// protocol messages (symlinks out of the context, hard links to the builder's files and to another
// tenant's synced blobs), oversized unauthenticated gRPC frames, cancelled queued builds, corrupt blobs
// at export, a tenant over its disk quota, and builder paths in errors sent to a remote client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { connect as netConnect } from 'node:net';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { tarOf } from './crafted.js';
import { extractTar } from '../../src/client/untar.js';
import { buildSuite } from '../helpers/suite.js';
import { writeContext } from '../helpers/build.js';
import { serve, clientEnv, kilnClient, rawClient, rawManifest, rawSolve, rawStart, type Served, type RawFile } from '../daemon/serve-helpers.js';
import { listTar } from '../daemon/tar-list.js';

const suite = buildSuite();
let dir: string;
let server: Served;
const ALICE = 'alice-token-0123456789';
const BOB = 'bob-token-0123456789';

/** A file outside every state dir whose content, mtime and directory must never change. */
let canary: { dir: string; file: string; text: string; mtimeMs: number };

function canaryUnchanged(): void {
  assert.equal(readFileSync(canary.file, 'utf8'), canary.text);
  assert.equal(statSync(canary.file).mtimeMs, canary.mtimeMs);
  assert.deepEqual(readdirSync(canary.dir), ['canary.txt']);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-sec-serve-'));
  writeFileSync(join(dir, 'tokens'), `alice:${ALICE}\nbob:${BOB}\n`);
  const cdir = mkdtempSync(join(tmpdir(), 'kiln-canary-'));
  const text = `canary-${randomBytes(8).toString('hex')}\n`;
  writeFileSync(join(cdir, 'canary.txt'), text);
  canary = { dir: cdir, file: join(cdir, 'canary.txt'), text, mtimeMs: statSync(join(cdir, 'canary.txt')).mtimeMs };
  server = await serve(['--addr', `unix://${join(dir, 'k.sock')}`, '--token-file', join(dir, 'tokens'), '--max-parallel', '1']);
});
after(async () => {
  await server?.stop();
});

const tarOut = [{ type: 'tar', attrs: {}, names: [], push: false }];

async function bobBuilds(files: RawFile[], dockerfile = 'FROM scratch\nCOPY . /\n') {
  const { entries, contents } = rawManifest([{ path: 'Dockerfile', content: dockerfile }, ...files]);
  return rawSolve(server.addr, BOB, rawStart(dockerfile, entries, { outputs: tarOut }), contents);
}

test('context sync: a hard link through a symlink to another tenant\'s synced blob is refused, nothing of it reaches the image', async () => {
  const secret = `alice-secret-${randomBytes(8).toString('hex')}\n`;
  const a = rawManifest([{ path: 'Dockerfile', content: 'FROM scratch\nCOPY s.txt /\n' }, { path: 's.txt', content: secret }]);
  const first = await rawSolve(server.addr, ALICE, rawStart('FROM scratch\nCOPY s.txt /\n', a.entries), a.contents);
  assert.equal(first.code, undefined, first.details);
  const hex = createHash('sha256').update(secret).digest('hex');
  const blobs = join(server.root, 'tenants', 'alice', 'sync', 'blobs');
  assert.ok(readdirSync(blobs).includes(hex), 'alice\'s content is in her store');

  const r = await bobBuilds([{ path: 'l', symlink: blobs }, { path: 'x', hardlinkTo: `l/${hex}` }]);
  assert.equal(r.code, grpc.status.INVALID_ARGUMENT, r.details);
  assert.equal(r.details, `context sync: "x" is a hard link to "l/${hex}", which is not a regular file of this manifest`);
  for (const out of r.outputs.values()) assert.ok(!out.includes(secret.trim()), 'alice\'s secret is not in bob\'s output');
});

test('context sync: `l -> /` then a hard link to l/<host file> never copies the builder\'s file into the image', async () => {
  const r = await bobBuilds([{ path: 'h', symlink: '/' }, { path: 'y', hardlinkTo: `h${canary.file}` }]);
  assert.equal(r.code, grpc.status.INVALID_ARGUMENT, r.details);
  assert.match(r.details!, /^context sync: "y" is a hard link to "h\/.*", which is not a regular file of this manifest$/);
  for (const out of r.outputs.values()) assert.ok(!out.includes(canary.text.trim()));
  canaryUnchanged();
});

test('context sync: a file or directory under a symlink of the manifest is refused; nothing is written through it', async () => {
  const r = await bobBuilds([{ path: 'w', symlink: canary.dir }, { path: 'w/pwned.txt', content: 'written through a symlink\n' }]);
  assert.equal(r.code, grpc.status.INVALID_ARGUMENT, r.details);
  assert.equal(r.details, 'context sync: "w/pwned.txt" is inside "w", which the manifest lists as a symlink');
  const d = await bobBuilds([{ path: 'v', symlink: canary.dir }, { path: 'v/sub', dir: true, mode: 0o777 }]);
  assert.equal(d.code, grpc.status.INVALID_ARGUMENT, d.details);
  // A hard link to a symlink of the manifest (which would carry its target's meaning into the image).
  const s = await bobBuilds([{ path: 's', symlink: canary.file }, { path: 't', hardlinkTo: 's' }]);
  assert.equal(s.code, grpc.status.INVALID_ARGUMENT, s.details);
  canaryUnchanged();
  assert.equal(statSync(canary.dir).mode & 0o777, 0o700, 'the canary dir keeps its mode');
});

test('context sync: symlinks are stored as symlinks (never followed), hard links between files of the manifest still work', async () => {
  const r = await bobBuilds([
    { path: 'root', symlink: '/' },
    { path: 'c', symlink: canary.file },
    { path: 'a.txt', content: 'alpha\n' },
    { path: 'b.txt', hardlinkTo: 'a.txt' },
  ]);
  assert.equal(r.code, undefined, r.details);
  const entries = listTar(r.outputs.get(0)!);
  const by = new Map(entries.map((e) => [e.name.replace(/^\.?\//, ''), e]));
  assert.equal(by.get('root')?.type, 'symlink');
  assert.equal(by.get('root')?.linkname, '/');
  assert.equal(by.get('c')?.type, 'symlink');
  assert.equal(by.get('c')?.linkname, canary.file);
  assert.equal(by.get('a.txt')?.content, 'alpha\n');
  const b = by.get('b.txt')!;
  assert.ok(b.type === 'link' ? b.linkname?.replace(/^\.?\//, '') === 'a.txt' : b.content === 'alpha\n', JSON.stringify(b));
  assert.ok(!r.outputs.get(0)!.includes(canary.text.trim()), 'the symlink\'s host target was not read');
  assert.ok(!entries.some((e) => /^(\.\/)?root\/./.test(e.name)), 'nothing under the root symlink');
  canaryUnchanged();
});

function unary<T>(token: string, method: string, req: unknown): Promise<T> {
  const { client, md } = rawClient(server.addr, token);
  return new Promise((resolve, reject) =>
    client[method](req, md, (err: grpc.ServiceError | null, res: T) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    }),
  );
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function tagExists(repo: string): Promise<boolean> {
  const res = await fetch(`http://${suite.reg.host}/v2/${repo}/tags/list`);
  await res.arrayBuffer();
  return res.status === 200;
}

function queuedBuild(n: number, sleep: number) {
  const dockerfile = `FROM ${suite.base}\nRUN sleep ${sleep} && echo queued-step-${n}-\$((6*7))\n`;
  const { entries, contents } = rawManifest([{ path: 'Dockerfile', content: dockerfile }]);
  const outputs = [{ type: 'image', attrs: {}, names: [`${suite.reg.host}/sec/queued-${n}:latest`], push: true }];
  let id = '';
  const done = rawSolve(server.addr, ALICE, rawStart(dockerfile, entries, { outputs }), contents, { onAccepted: (i) => (id = i) });
  return { done, id: () => id };
}

function sleeping(seconds: number): boolean {
  try {
    return execFileSync('pgrep', ['-f', `^sleep ${seconds}$`], { encoding: 'utf8' }).trim() !== '';
  } catch {
    return false;
  }
}

test('Cancel takes queued builds out of the queue: with --max-parallel 1 they never run and never push', async () => {
  let maxRunning = 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const info = await unary<{ running: number }>(ALICE, 'Info', {});
      maxRunning = Math.max(maxRunning, info.running);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const run = queuedBuild;
  const first = run(1, 4);
  await until('the first build to run', async () => first.id() !== '' && (await unary<{ running: number }>(ALICE, 'Info', {})).running === 1);
  const second = run(2, 1);
  const third = run(3, 1);
  await until('two builds queued', async () => (await unary<{ queued: number }>(ALICE, 'Info', {})).queued === 2);
  for (const b of [second, third]) assert.deepEqual(await unary(ALICE, 'Cancel', { build_id: b.id() }), { canceled: true });
  const [r1, r2, r3] = await Promise.all([first.done, second.done, third.done]);
  polling = false;
  await poller;
  assert.equal(r1.code, undefined, r1.details);
  for (const [n, r] of [[2, r2], [3, r3]] as const) {
    assert.equal(r.code, grpc.status.CANCELLED, r.details);
    assert.match(r.details!, /^build canceled: canceled by request$/);
    assert.ok(!r.progress.some((p) => p.includes(`queued-step-${n}-42`)), `build ${n} never ran its step`);
    assert.equal(await tagExists(`sec/queued-${n}`), false, `build ${n} pushed nothing`);
    const status = await unary<{ status: string }>(ALICE, 'Status', { build_id: n === 2 ? second.id() : third.id() });
    assert.equal(status.status, 'canceled');
  }
  assert.equal(await tagExists('sec/queued-1'), true, 'the build that was not canceled pushed');
  assert.equal(maxRunning, 1, 'never more than --max-parallel builds at once');
  const info = await unary<{ running: number; queued: number }>(ALICE, 'Info', {});
  assert.deepEqual([info.running, info.queued], [0, 0]);
});

test('Cancel of a running build: it pushes nothing, and the next queued build starts only after it has ended', async () => {
  const running = queuedBuild(4, 17);
  await until('build 4 to run its step', () => sleeping(17));
  const next = queuedBuild(5, 19);
  await until('build 5 queued', async () => next.id() !== '' && (await unary<{ queued: number }>(ALICE, 'Info', {})).queued === 1);
  let overlap = false;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      if (sleeping(17) && sleeping(19)) overlap = true;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  assert.deepEqual(await unary(ALICE, 'Cancel', { build_id: running.id() }), { canceled: true });
  const r4 = await running.done;
  assert.equal(r4.code, grpc.status.CANCELLED, r4.details);
  await until('build 5 to run its step', () => sleeping(19));
  assert.deepEqual(await unary(ALICE, 'Cancel', { build_id: next.id() }), { canceled: true });
  await next.done;
  watching = false;
  await watcher;
  assert.equal(overlap, false, 'the canceled build had ended before the queued one started');
  assert.equal(await tagExists('sec/queued-4'), false, 'a canceled build pushes nothing');
  assert.equal(await tagExists('sec/queued-5'), false);
});

/** The server process's resident memory in bytes. */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/**
 * One gRPC call written by hand over HTTP/2: a message header claiming `claimed` bytes, then up to `send`
 * bytes of it, stopping as soon as the server answers. Returns the gRPC status and the server's peak RSS.
 */
async function rawFrames(path: string, token: string | undefined, claimed: number, send: number): Promise<{ status?: number; message?: string; peakRss: number; sent: number }> {
  const sock = server.addr.slice('unix://'.length);
  const session = http2.connect('http://localhost', { createConnection: () => netConnect(sock) });
  session.on('error', () => {});
  const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
  if (token) headers.authorization = `Bearer ${token}`;
  const req = session.request(headers);
  req.on('error', () => {});
  let status: number | undefined;
  let message: string | undefined;
  const take = (h: http2.IncomingHttpHeaders) => {
    if (h['grpc-status'] !== undefined) {
      status = Number(h['grpc-status']);
      message = decodeURIComponent(String(h['grpc-message'] ?? ''));
    }
  };
  req.on('response', take);
  req.on('trailers', take);
  req.resume();
  const closed = new Promise<void>((r) => req.on('close', () => r()));
  let peakRss = rss(server.proc.pid!);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rss(server.proc.pid!))), 20);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(claimed, 1);
  req.write(head);
  const chunk = Buffer.alloc(1 << 20, 0x61);
  let sent = 0;
  let done = false;
  void closed.then(() => (done = true));
  while (!done && status === undefined && sent < send) {
    const more = req.write(chunk);
    sent += chunk.length;
    // A server that stops reading (flow control) and never answers: stop too, the status check fails.
    if (!more && (await Promise.race([new Promise((r) => req.once('drain', () => r('drained'))), closed, new Promise((r) => setTimeout(() => r('stuck'), 2000))])) === 'stuck') break;
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
  await new Promise((r) => setTimeout(r, 300));
  clearInterval(sampler);
  peakRss = Math.max(peakRss, rss(server.proc.pid!));
  req.close();
  session.destroy();
  return { status, message, peakRss, sent };
}

test('oversized messages are refused before authentication and before buffering: the server\'s memory stays bounded', async () => {
  const MiB = 1 << 20;
  const before = rss(server.proc.pid!);
  const anonymous = await rawFrames('/kiln.v1.Builder/Info', undefined, 200 * MiB, 200 * MiB);
  assert.equal(anonymous.status, grpc.status.UNAUTHENTICATED, anonymous.message);
  assert.match(anonymous.message!, /^refused: this builder requires a token/);
  assert.ok(anonymous.peakRss - before < 48 * MiB, `server RSS grew by ${Math.round((anonymous.peakRss - before) / MiB)} MiB for an unauthenticated 200 MiB message`);
  const anonSolve = await rawFrames('/kiln.v1.Builder/Solve', 'not-a-valid-token', 200 * MiB, 200 * MiB);
  assert.equal(anonSolve.status, grpc.status.UNAUTHENTICATED, anonSolve.message);
  assert.ok(anonSolve.peakRss - before < 48 * MiB, `server RSS grew by ${Math.round((anonSolve.peakRss - before) / MiB)} MiB`);

  // A tenant's messages have per-method limits, checked on the header: nothing of the body is buffered.
  const big = await rawFrames('/kiln.v1.Builder/Solve', BOB, 200 * MiB, 64 * MiB);
  assert.equal(big.status, grpc.status.RESOURCE_EXHAUSTED, big.message);
  assert.match(big.message!, /Received message larger than max \(209715200 vs 33554432\)/);
  assert.ok(big.peakRss - before < 48 * MiB, `server RSS grew by ${Math.round((big.peakRss - before) / MiB)} MiB`);
  const unaryBig = await rawFrames('/kiln.v1.Builder/Status', BOB, 1 * MiB, 1 * MiB);
  assert.equal(unaryBig.status, grpc.status.RESOURCE_EXHAUSTED, unaryBig.message);
  assert.match(unaryBig.message!, /Received message larger than max \(1048576 vs 65536\)/);
  // The server still serves.
  const info = await unary<{ tenant: string }>(BOB, 'Info', {});
  assert.equal(info.tenant, 'bob');
});

test('a tenant has a limit of concurrent calls; another tenant is not affected by it', async () => {
  const { client, md } = rawClient(server.addr, BOB);
  const calls: grpc.ClientDuplexStream<unknown, unknown>[] = [];
  const refused: grpc.ServiceError[] = [];
  for (let i = 0; i < 65; i++) {
    const c = client.Solve(md) as grpc.ClientDuplexStream<unknown, unknown>;
    c.on('error', (e: grpc.ServiceError) => refused.push(e));
    c.on('data', () => {});
    calls.push(c);
  }
  await until('one call to be refused', () => refused.length > 0, 20_000);
  assert.equal(refused.length, 1);
  assert.equal(refused[0]!.code, grpc.status.RESOURCE_EXHAUSTED);
  assert.match(refused[0]!.details, /^tenant bob has 64 calls open on this builder already \(its limit\)/);
  assert.equal((await unary<{ tenant: string }>(ALICE, 'Info', {})).tenant, 'alice');
  for (const c of calls) c.cancel();
  client.close();
  await until('bob\'s calls to be released', async () => {
    try {
      return (await unary<{ tenant: string }>(BOB, 'Info', {})).tenant === 'bob';
    } catch {
      return false;
    }
  });
});

/** A client environment whose default builder is this server, as tenant `who`. */
function tenantEnv(who: 'alice' | 'bob'): NodeJS.ProcessEnv {
  const env = clientEnv();
  const tf = join(dir, `${who}.token`);
  writeFileSync(tf, who === 'alice' ? ALICE : BOB);
  const r = kilnClient(suite.root, ['builder', 'create', `sec-${who}`, '--addr', server.addr, '--token-file', tf, '--use'], env);
  assert.equal(r.status, 0, r.stderr);
  return env;
}

function lastLine(stderr: string): string {
  return stderr.trim().split('\n').at(-1)!;
}

test('a corrupt blob at export: one line on the client, the file at the destination is left as it was, the server keeps serving', async () => {
  const env = tenantEnv('alice');
  const ctx = writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo corrupt-me-\$((5*5)) > /c\n` });
  const outDir = mkdtempSync(join(tmpdir(), 'kiln-sec-out-'));
  const dest = join(outDir, 'image.oci.tar');
  const first = kilnClient(suite.root, ['build', '--progress', 'plain', '-o', `type=oci,dest=${dest}`, ctx], env);
  assert.equal(first.status, 0, first.stderr);
  // The layer the RUN made, in alice's content store on the builder: flip its bytes (same size).
  const index = JSON.parse(execFileSync('tar', ['-xOf', dest, 'index.json'], { encoding: 'utf8' }));
  const manifest = JSON.parse(execFileSync('tar', ['-xOf', dest, `blobs/sha256/${index.manifests[0].digest.slice(7)}`], { encoding: 'utf8' }));
  const layer = manifest.layers.at(-1).digest.slice(7);
  const blob = join(server.root, 'tenants', 'alice', 'content', 'blobs', 'sha256', layer);
  const bytes = readFileSync(blob);
  for (let i = 0; i < bytes.length; i += 97) bytes[i] ^= 0xff;
  chmodSync(blob, 0o644);
  writeFileSync(blob, bytes);
  writeFileSync(dest, 'the previous archive\n');

  const second = kilnClient(suite.root, ['build', '--progress', 'plain', '-o', `type=oci,dest=${dest}`, ctx], env);
  assert.equal(second.status, 1, second.stderr);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(server.proc.exitCode, null, server.stderr());
  assert.equal(lastLine(second.stderr), `kiln: content store blob sha256:${layer} is corrupt (it hashes to sha256:${createHash('sha256').update(bytes).digest('hex')})`);
  assert.doesNotMatch(second.stderr, /^\s+at /m, 'no stack trace');
  assert.equal(readFileSync(dest, 'utf8'), 'the previous archive\n', 'the destination is untouched');
  assert.deepEqual(readdirSync(outDir), ['image.oci.tar'], 'no temporary file is left behind');
  assert.equal(server.proc.exitCode, null, 'the server is still running');
  const next = kilnClient(suite.root, ['build', '--progress', 'plain', '-o', `type=oci,dest=${join(outDir, 'next.tar')}`, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN echo after-corruption > /a\n` })], env);
  assert.equal(next.status, 0, next.stderr);
});

test('a write error on the client (ENOSPC) is one line and leaves the destination as it was; the server frees the build slot', async () => {
  const env = tenantEnv('bob');
  const outDir = mkdtempSync(join(tmpdir(), 'kiln-sec-full-'));
  // A 1 MiB tmpfs: the archive (with 3 MB of random bytes) does not fit.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', outDir]);
  try {
    const dest = join(outDir, 'image.oci.tar');
    writeFileSync(dest, 'the previous archive\n');
    const r = kilnClient(suite.root, ['build', '--progress', 'plain', '-o', `type=oci,dest=${dest}`, writeContext({ Dockerfile: `FROM ${suite.base}\nRUN head -c 3000000 /dev/urandom > /big\n` })], env);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(lastLine(r.stderr), `kiln: cannot write ${dest}: ENOSPC: no space left on device, write`);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    assert.equal(readFileSync(dest, 'utf8'), 'the previous archive\n');
    assert.deepEqual(readdirSync(outDir), ['image.oci.tar']);
    assert.equal(server.proc.exitCode, null, 'the server is still running');
    // The abandoned build gave its slot back (--max-parallel 1): the next build runs.
    const next = await Promise.race([bobBuilds([], 'FROM scratch\nCOPY Dockerfile /\n'), new Promise<undefined>((r) => setTimeout(() => r(undefined), 60_000))]);
    assert.ok(next, 'the next build did not start within 60s');
    assert.equal(next.code, undefined, next.details);
  } finally {
    execFileSync('umount', [outDir]);
  }
});

test('errors sent to a remote client name no builder path (state dir, build dirs, tmp dirs)', async () => {
  const failing: [string, RawFile[]][] = [
    ['FROM scratch\nCOPY missing.txt /\n', []],
    ['FROM scratch\nCOPY sub/ /\n', [{ path: 'sub', symlink: 'nowhere' }]],
    ['FROM scratch\nWORKDIR /w\nCOPY a/b/c /\n', [{ path: 'a', symlink: '/etc' }]],
    [`FROM ${suite.base}\nRUN --mount=type=bind,source=nothere,target=/x true\n`, []],
    [`FROM ${suite.base}\nRUN --mount=type=bind,source=link,target=/x ls /x\n`, [{ path: 'link', symlink: '/does/not/exist' }]],
    ['FROM scratch\nCOPY --from=nostage / /\n', []],
  ];
  for (const [dockerfile, files] of failing) {
    const r = await bobBuilds(files, dockerfile);
    assert.notEqual(r.code, undefined, `${dockerfile} fails`);
    assert.ok(!r.details!.includes(server.root), `the error names the state dir: ${r.details}`);
    assert.ok(!r.details!.includes(tmpdir() + '/kiln'), `the error names a builder tmp dir: ${r.details}`);
    assert.doesNotMatch(r.details!, /\n/, 'one line');
    assert.ok(!r.progress.some((p) => p.includes(server.root)), 'no progress event names the state dir');
  }
  const bind = await bobBuilds([], `FROM ${suite.base}\nRUN --mount=type=bind,source=nothere,target=/x true\n`);
  // The source resolves inside the context (RESOLVE_IN_ROOT), so the helper names it as seen from there.
  assert.equal(bind.details, 'Dockerfile:2: sandbox set-up failed: bind mount source /nothere for /x: No such file or directory');
});

/** The limits of the kiln-build-* cgroup of a running build of the server process `pid`, when there is one. */
function buildCgroupLimits(pid: number): { memory: number; pids: string; cpuQuota: number } | undefined {
  const own = (controller: string) => new RegExp(`^\\d+:[^:]*\\b${controller}\\b[^:]*:(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1] ?? '/';
  const find = (controller: string, mount: string) => {
    const d = join('/sys/fs/cgroup', mount, own(controller));
    const name = existsSync(d) ? readdirSync(d).find((n) => n.startsWith('kiln-build-')) : undefined;
    return name ? join(d, name) : undefined;
  };
  const mem = find('memory', 'memory');
  const pids = find('pids', 'pids');
  const cpu = find('cpu', 'cpu');
  if (!mem || !pids || !cpu) return undefined;
  try {
    return {
      memory: Number(readFileSync(join(mem, 'memory.limit_in_bytes'), 'utf8')),
      pids: readFileSync(join(pids, 'pids.max'), 'utf8').trim(),
      cpuQuota: Number(readFileSync(join(cpu, 'cpu.cfs_quota_us'), 'utf8')),
    };
  } catch {
    return undefined; // removed as the build ended
  }
}

test('kiln serve applies default per-build limits (memory, pids, CPUs) without any configuration', async () => {
  const dockerfile = `FROM ${suite.base}\nRUN sleep 6 && echo limits-probe\n`;
  const { entries, contents } = rawManifest([{ path: 'Dockerfile', content: dockerfile }]);
  const running = rawSolve(server.addr, BOB, rawStart(dockerfile, entries), contents);
  let seen: ReturnType<typeof buildCgroupLimits>;
  await until('the build cgroup', () => (seen = buildCgroupLimits(server.proc.pid!)) !== undefined, 30_000);
  const r = await running;
  assert.equal(r.code, undefined, r.details);
  const memory = Math.min(4 * 1024 ** 3, Math.floor(totalmem() / 2));
  assert.equal(seen!.memory, Math.floor(memory / 4096) * 4096, 'half the RAM, at most 4 GiB');
  assert.equal(seen!.pids, '4096');
  assert.equal(seen!.cpuQuota, Math.max(1, Math.floor(availableParallelism() / 2)) * 100_000, 'half the cores');
});

test('a tenant over its disk quota: its build fails with one line, the next one before it runs; another tenant still builds, and one tenant cannot take every slot', async () => {
  const qdir = mkdtempSync(join(tmpdir(), 'kiln-sec-quota-'));
  writeFileSync(join(qdir, 'tokens'), `alice:${ALICE}\nbob:${BOB}\n`);
  const q = await serve(['--addr', `unix://${join(qdir, 'q.sock')}`, '--token-file', join(qdir, 'tokens'), '--max-parallel', '2', '--tenant-disk', '40m']);
  try {
    const build = (token: string, dockerfile: string) => {
      const { entries, contents } = rawManifest([{ path: 'Dockerfile', content: dockerfile }]);
      return rawSolve(q.addr, token, rawStart(dockerfile, entries, { outputs: tarOut }), contents);
    };
    const over = await build(BOB, `FROM ${suite.base}\nRUN head -c 60000000 /dev/zero > /big && echo wrote-big\n`);
    assert.equal(over.code, grpc.status.RESOURCE_EXHAUSTED, over.details);
    assert.match(over.details!, /^tenant bob is over its disk quota on this builder: [0-9.]+ MiB of 40 MiB \(kiln builder prune frees space\)$/);
    assert.equal(over.outputs.size, 0, 'nothing of it was exported');
    // Synced context files count too, and stay: the tenant is over its quota until it prunes.
    const bigCtx = rawManifest([{ path: 'Dockerfile', content: 'FROM scratch\nCOPY Dockerfile /\n' }, { path: 'big.bin', content: randomBytes(45 * 1024 * 1024) }]);
    const synced = await rawSolve(q.addr, BOB, rawStart('FROM scratch\nCOPY Dockerfile /\n', bigCtx.entries), bigCtx.contents);
    assert.equal(synced.code, grpc.status.RESOURCE_EXHAUSTED, synced.details);
    assert.match(synced.details!, /^tenant bob is over its disk quota on this builder: [0-9.]+ MiB of 40 MiB/);
    const again = await build(BOB, `FROM ${suite.base}\nRUN echo never-runs-\$((1+1))\n`);
    assert.equal(again.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.ok(!again.progress.some((p) => p.includes('never-runs-2')), 'refused before it ran');
    const fine = await build(ALICE, `FROM ${suite.base}\nRUN echo alice-builds > /a\n`);
    assert.equal(fine.code, undefined, fine.details);
    assert.ok(fine.outputs.get(0)!.includes('alice-builds'));

    // --max-parallel 2 with tokens: one build of a tenant at a time, the other slot stays for the others.
    const { client, md } = rawClient(q.addr, ALICE);
    const slow = (n: number) => build(ALICE, `FROM ${suite.base}\nRUN sleep 3 && echo slow-${n}\n`);
    const both = Promise.all([slow(1), slow(2)]);
    const info = () => new Promise<{ running: number; queued: number }>((res, rej) => client.Info({}, md, (e: Error | null, r: { running: number; queued: number }) => (e ? rej(e) : res(r))));
    await until('alice to have a build running and one queued', async () => {
      const i = await info();
      return i.running === 1 && i.queued === 1;
    });
    for (const r of await both) assert.equal(r.code, undefined, r.details);
    client.close();
  } finally {
    await q.stop();
  }
});

test('a -o type=local export from a hostile builder cannot write through its own symlinks on the client', async () => {
  const evil = await tarOf([
    { name: 'a', type: 'symlink', linkname: canary.dir },
    { name: 'a/evil.txt', data: 'through an absolute symlink\n' },
    { name: 'b', type: 'symlink', linkname: '../../../../..' },
    { name: `b${canary.dir}/evil2.txt`, data: 'through a relative symlink\n' },
    { name: 'c', type: 'hardlink', linkname: 'a/canary.txt' },
  ]);
  const dest = mkdtempSync(join(tmpdir(), 'kiln-sec-untar-'));
  await extractTar(Readable.from([evil]), dest).catch(() => {});
  canaryUnchanged();
  // The symlinks are never followed: an entry below one gets a real directory in their place.
  assert.equal(readFileSync(join(dest, 'a', 'evil.txt'), 'utf8'), 'through an absolute symlink\n', 'written inside the destination');
  assert.equal(readFileSync(join(dest, 'b', canary.dir, 'evil2.txt'), 'utf8'), 'through a relative symlink\n');
  assert.ok(!existsSync(join(dest, 'c')), 'a hard link to a file the tar did not write is refused');
});
