// docker buildx (docker-sid's buildx 0.29, remote driver) using `kiln serve --buildkit-addr` as its
// builder: what a buildx user sees — the node in `buildx ls`, kiln's steps in buildx's progress, outputs
// of every exporter, images in the registry and in dockerd, secrets, history, du/prune, cancellation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeContext } from '../helpers/build.js';
import { repoRoot } from '../helpers/fixtures.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { buildx, buildxAsync, buildxSuite, errorLine, DOCKER } from './buildx-harness.js';
import { serve, makeCerts } from '../daemon/serve-helpers.js';

const s = buildxSuite();
const skip = s.peer.ok ? false : s.peer.reason;
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };
const b = () => ['--builder', s.builder, '--progress', 'plain'];
let n = 0;
const outDir = () => join(s.dir, `out-${n++}`);

function untar(tarPath: string): string {
  const dir = `${tarPath}.d`;
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xf', tarPath, '-C', dir]);
  return dir;
}

test('buildx inspect --bootstrap and buildx ls show the kiln node, its platforms and version', { skip }, async () => {
  const r = await buildx(['inspect', '--bootstrap', s.builder]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Status:\s+running$/m);
  assert.match(r.stdout, /^BuildKit version:\s+v0\.25\.0\+kiln\./m);
  assert.match(r.stdout, /^Platforms:\s+linux\/amd64, linux\/arm64$/m);
  const ls = await buildx(['ls']);
  assert.match(ls.stdout, new RegExp(`${s.builder}0 .*running\\s+v0\\.25\\.0\\+kiln\\S*\\s+linux/amd64, linux/arm64`));
});

test('examples/hello through buildx --load runs in dockerd 28 (default provenance request and all)', { skip }, async () => {
  const tag = `kiln-buildx-hello:${randomBytes(3).toString('hex')}`;
  const r = await buildx(['build', ...b(), '--build-arg', `REGISTRY=${s.reg.host}/library`, '--load', '-t', tag, join(repoRoot, 'examples', 'hello')]);
  assert.equal(r.status, 0, r.stderr);
  // buildx's plain view shows kiln's steps by their Dockerfile names, with their output.
  assert.match(r.stderr, /#\d+ \[3\/4\] COPY greet\.sh \.\/\n/);
  assert.match(r.stderr, /#\d+ \[internal\] load build context\n/);
  try {
    const run = spawnSync(DOCKER, ['run', '--rm', tag], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'hello from kiln, world! (built on x86_64, running as nobody)\n');
  } finally {
    spawnSync(DOCKER, ['rmi', '-f', tag], { stdio: 'ignore' });
  }
});

test('a multi-stage build exports with -o type=local; an unchanged context sends no file contents the second time', { skip }, async () => {
  const big = randomBytes(3 * 1024 * 1024).toString('base64');
  const ctx = writeContext({
    Dockerfile: `FROM ${s.base} AS build\nCOPY big.txt /big.txt\nRUN wc -c < /big.txt > /size && echo stage-one-ran\nFROM ${s.base}\nCOPY --from=build /size /size\nCOPY note.txt /note.txt\n`,
    'big.txt': big,
    'note.txt': 'note\n',
    'skip.log': 'ignored\n',
    '.dockerignore': '*.log\n',
  });
  const out1 = outDir();
  s.resetSent();
  const r1 = await buildx(['build', ...b(), '-o', `type=local,dest=${out1}`, ctx]);
  assert.equal(r1.status, 0, r1.stderr);
  const first = s.sent();
  assert.ok(first > big.length, `the first build sent ${first} bytes for a ${big.length}-byte file`);
  assert.equal(readFileSync(join(out1, 'size'), 'utf8').trim(), String(big.length));
  assert.equal(readFileSync(join(out1, 'note.txt'), 'utf8'), 'note\n');
  assert.match(r1.stderr, /stage-one-ran/);

  const out2 = outDir();
  s.resetSent();
  const r2 = await buildx(['build', ...b(), '-o', `type=local,dest=${out2}`, ctx]);
  assert.equal(r2.status, 0, r2.stderr);
  const second = s.sent();
  assert.ok(second < 256 * 1024, `an unchanged context still sent ${second} bytes`);
  assert.match(r2.stderr, /transferring context: \d+ entries, 0 changed file\(s\), 0 bytes/);
  assert.match(r2.stderr, /#\d+ \[build 3\/3\] RUN wc -c < \/big\.txt > \/size && echo stage-one-ran\n#\d+ CACHED/);
  assert.equal(readFileSync(join(out2, 'note.txt'), 'utf8'), 'note\n');

  // One changed file crosses the wire again; a removed one is gone from the build.
  writeFileSync(join(ctx, 'note.txt'), 'changed\n');
  const out3 = outDir();
  const r3 = await buildx(['build', ...b(), '-o', `type=local,dest=${out3}`, ctx]);
  assert.equal(r3.status, 0, r3.stderr);
  assert.match(r3.stderr, /transferring context: \d+ entries, 1 changed file\(s\), 8 bytes/);
  assert.equal(readFileSync(join(out3, 'note.txt'), 'utf8'), 'changed\n');
});

test('-o type=oci gives the digest a local kiln build of the same inputs gives (SOURCE_DATE_EPOCH set)', { skip }, async () => {
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nCOPY a.txt /a.txt\nRUN echo made > /made\nLABEL org.example=kiln\n`, 'a.txt': 'a\n' });
  const dir = outDir();
  mkdirSync(dir);
  const r = await buildx(['build', ...b(), '--provenance=false', '--metadata-file', join(dir, 'bx.json'), '-o', `type=oci,dest=${join(dir, 'bx.tar')}`, ctx], { env: EPOCH });
  assert.equal(r.status, 0, r.stderr);
  const viaBuildx = JSON.parse(readFileSync(join(dir, 'bx.json'), 'utf8'))['containerimage.digest'];
  assert.match(viaBuildx, /^sha256:[0-9a-f]{64}$/);
  const index = JSON.parse(readFileSync(join(untar(join(dir, 'bx.tar')), 'index.json'), 'utf8'));
  assert.equal(index.manifests[0].digest, viaBuildx);
  const root = tempRoot();
  const local = kiln(root, ['build', '--progress', 'plain', '--metadata-file', join(dir, 'local.json'), '-o', `type=oci,dest=${join(dir, 'local.tar')}`, ctx], { env: EPOCH, timeoutMs: 300_000 });
  assert.equal(local.status, 0, local.stderr);
  assert.equal(JSON.parse(readFileSync(join(dir, 'local.json'), 'utf8'))['containerimage.digest'], viaBuildx);
});

test('multi-platform --platform linux/amd64,linux/arm64 -o type=oci: one index, a manifest per platform, each RUN on its platform', { skip }, async () => {
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN uname -m > /arch\n` });
  const dir = outDir();
  mkdirSync(dir);
  const r = await buildx(['build', ...b(), '--platform', 'linux/amd64,linux/arm64', '-o', `type=oci,dest=${join(dir, 'x.tar')}`, ctx], { timeoutMs: 600_000 });
  assert.equal(r.status, 0, r.stderr);
  const layout = untar(join(dir, 'x.tar'));
  const top = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blob = (d: string) => readFileSync(join(layout, 'blobs', 'sha256', d.slice('sha256:'.length)));
  const idx = top.manifests[0].mediaType.includes('index') ? JSON.parse(blob(top.manifests[0].digest).toString()) : top;
  const platforms = idx.manifests.filter((m: { platform?: { architecture: string } }) => m.platform && m.platform.architecture !== 'unknown').map((m: { platform: { architecture: string } }) => m.platform.architecture).sort();
  assert.deepEqual(platforms, ['amd64', 'arm64']);
});

test('--push to a registry; --metadata-file names the pushed digest', { skip }, async () => {
  const ref = `${s.reg.host}/buildx/pushed:1`;
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo pushed > /p\n` });
  const md = join(s.dir, `md-${n++}.json`);
  const r = await buildx(['build', ...b(), '--push', '-t', ref, '--metadata-file', md, ctx]);
  assert.equal(r.status, 0, r.stderr);
  const digest = JSON.parse(readFileSync(md, 'utf8'))['containerimage.digest'];
  const res = await fetch(`${s.reg.url}/v2/buildx/pushed/manifests/1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), digest);
});

test('--secret reaches RUN --mount=type=secret and stays out of the image', { skip }, async () => {
  const secret = join(s.dir, 'token.txt');
  writeFileSync(secret, 'tok-4242');
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN --mount=type=secret,id=tok cp /run/secrets/tok /got && ls /run/secrets > /listed\n` });
  const out = outDir();
  const r = await buildx(['build', ...b(), '--secret', `id=tok,src=${secret}`, '-o', `type=local,dest=${out}`, ctx]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(out, 'got'), 'utf8'), 'tok-4242');
  assert.ok(!existsSync(join(out, 'run', 'secrets', 'tok')));
});

test("a failing step shows kiln's error in buildx's output; a frontend image is refused in one line", { skip }, async () => {
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo about-to-fail && exit 3\n` });
  const r = await buildx(['build', ...b(), ctx]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /about-to-fail/);
  assert.match(errorLine(r.stderr), /^ERROR: failed to build: failed to solve: .*exit code: 3/);

  const other = writeContext({ Dockerfile: `# syntax=example.com/custom/frontend:1\nFROM ${s.base}\n` });
  const o = await buildx(['build', ...b(), other]);
  assert.notEqual(o.status, 0);
  assert.equal(errorLine(o.stderr), 'ERROR: failed to build: failed to solve: Dockerfile: # syntax: frontend image "example.com/custom/frontend:1" cannot be run by this builder (kiln runs its built-in Dockerfile frontend for docker/dockerfile only)');
  const builtin = writeContext({ Dockerfile: `# syntax=docker/dockerfile:1\nFROM ${s.base}\nRUN echo builtin-frontend\n` });
  const ok = await buildx(['build', ...b(), builtin]);
  assert.equal(ok.status, 0, ok.stderr);
});

test('buildx history ls lists the builds; buildx du shows the cache and buildx prune empties it', { skip }, async () => {
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo for-history-${randomBytes(4).toString('hex')} > /h\n` });
  const r = await buildx(['build', ...b(), ctx]);
  assert.equal(r.status, 0, r.stderr);
  const h = await buildx(['history', 'ls', '--builder', s.builder, '--format', '{{.Ref}} {{.Status}}']);
  assert.equal(h.status, 0, h.stderr);
  assert.ok(h.stdout.trim().split('\n').length >= 2, h.stdout);
  assert.match(h.stdout, /Completed/);
  assert.match(h.stdout, /Error/); // the failing build above

  const du = await buildx(['du', '--builder', s.builder]);
  assert.equal(du.status, 0, du.stderr);
  assert.match(du.stdout, /Total:\s+[1-9]/);
  const prune = await buildx(['prune', '--builder', s.builder, '--all', '--force']);
  assert.equal(prune.status, 0, prune.stderr);
  assert.match(prune.stdout, /Total:\s+[1-9]/);
  const after = await buildx(['du', '--builder', s.builder]);
  assert.doesNotMatch(after.stdout, /^result\//m);
  assert.match(after.stdout, /Total:\s+0B/);
});

test('Ctrl-C in buildx cancels the solve on kiln', { skip }, async () => {
  const marker = `${30 + Math.floor(Math.random() * 9)}.${randomBytes(2).readUInt16BE()}`;
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo started-long && sleep ${marker}\n` });
  const run = buildxAsync(['build', ...b(), ctx]);
  const deadline = Date.now() + 120_000;
  while (!run.stderr().includes('started-long') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.match(run.stderr(), /started-long/);
  const sleeping = () => spawnSync('pgrep', ['-f', `sleep ${marker}`]).status === 0;
  assert.ok(sleeping(), 'the RUN step is running on kiln');
  run.child.kill('SIGINT');
  const res = await run.done;
  assert.notEqual(res.status, 0);
  const gone = Date.now() + 15_000;
  while (sleeping() && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!sleeping(), 'the canceled RUN step still runs on kiln');
  const h = await buildx(['history', 'ls', '--builder', s.builder, '--format', '{{.Ref}} {{.Status}}']);
  assert.doesNotMatch(h.stdout, /Running/);
});

test('the BuildKit address follows the TLS rules of kiln serve', { skip }, async () => {
  const root = tempRoot();
  const refused = kiln(root, ['serve', '--buildkit-addr', 'tcp://0.0.0.0:0']);
  assert.notEqual(refused.status, 0);
  assert.equal(refused.stderr.trim(), 'kiln: kiln serve: refusing to serve BuildKit\'s API on tcp://0.0.0.0:0 without TLS (--tls-cert/--tls-key); pass --insecure to do it anyway');
});

test('--cache-to type=registry,mode=max, then a second kiln server with --cache-from runs no step', { skip }, async () => {
  const ref = `${s.reg.host}/buildx/cache:max`;
  const ctx = writeContext({ Dockerfile: `FROM ${s.base} AS a\nRUN echo cached-step-a-${randomBytes(4).toString('hex')} > /a\nFROM ${s.base}\nCOPY --from=a /a /a\nRUN echo cached-step-b > /b\n` });
  const first = await buildx(['build', ...b(), '--cache-to', `type=registry,ref=${ref},mode=max`, '-o', 'type=cacheonly', ctx]);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /RUN echo cached-step-b > \/b\n#\d+ DONE/);

  const dir = join(s.dir, 'second');
  mkdirSync(dir);
  const sock = join(dir, 'bk.sock');
  const other = await serve(['--addr', `unix://${join(dir, 'k.sock')}`, '--buildkit-addr', `unix://${sock}`]);
  const name = `kiln-test-${randomBytes(4).toString('hex')}`;
  try {
    execFileSync(DOCKER, ['buildx', 'create', '--driver', 'remote', '--name', name, `unix://${sock}`], { stdio: 'ignore' });
    const out = outDir();
    const second = await buildx(['build', '--builder', name, '--progress', 'plain', '--cache-from', `type=registry,ref=${ref}`, '-o', `type=local,dest=${out}`, ctx]);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, /RUN echo cached-step-b > \/b\n#\d+ CACHED/);
    assert.match(second.stderr, /RUN echo cached-step-a-\w+ > \/a\n#\d+ CACHED/);
    assert.equal(readFileSync(join(out, 'b'), 'utf8'), 'cached-step-b\n');
  } finally {
    spawnSync(DOCKER, ['buildx', 'rm', '--force', name], { stdio: 'ignore', timeout: 60_000 });
    await other.stop();
    rmSync(other.root, { recursive: true, force: true });
  }
});

test("--ssh default=SOCKET forwards the client's ssh-agent over the session to RUN --mount=type=ssh", { skip }, async () => {
  const dir = join(s.dir, 'ssh');
  mkdirSync(dir);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'kiln-buildx-agent-key', '-f', join(dir, 'key')]);
  const sock = join(dir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 10));
    execFileSync('ssh-add', ['-q', join(dir, 'key')], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
    const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nCOPY ssh-probe /ssh-probe\nRUN --mount=type=ssh /ssh-probe > /keys\n` });
    execFileSync('gcc', ['-static', '-O2', '-o', join(ctx, 'ssh-probe'), join(repoRoot, 'test/network/ssh-probe.c')]);
    const out = outDir();
    const r = await buildx(['build', ...b(), '--ssh', `default=${sock}`, '-o', `type=local,dest=${out}`, ctx]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(out, 'keys'), 'utf8'), 'kiln-buildx-agent-key\n');
  } finally {
    agent.kill();
  }
});

test('tcp:// with mTLS: buildx --driver-opt cacert,cert,key builds as the tenant its certificate names; a rogue certificate is refused', { skip }, async () => {
  const certs = makeCerts();
  const dir = join(s.dir, 'tls');
  mkdirSync(dir);
  const server = await serve(['--addr', `unix://${join(dir, 'k.sock')}`, '--buildkit-addr', 'tcp://127.0.0.1:0', '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-ca', certs.ca]);
  for (let i = 0; i < 100 && !/BuildKit API on/.test(server.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  const names: string[] = [];
  const create = (who: { cert: string; key: string }) => {
    const name = `kiln-test-${randomBytes(4).toString('hex')}`;
    names.push(name);
    const endpoint = /BuildKit API on (tcp:\/\/\S+)/.exec(server.stderr())![1]!;
    execFileSync(DOCKER, ['buildx', 'create', '--driver', 'remote', '--name', name, '--driver-opt', `cacert=${certs.ca},cert=${who.cert},key=${who.key}`, endpoint], { stdio: 'ignore' });
    return name;
  };
  try {
    const alice = create(certs.client('alice'));
    const bob = create(certs.client('bob'));
    const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo over-mtls > /m\n` });
    const out = outDir();
    const r = await buildx(['build', '--builder', alice, '--progress', 'plain', '-o', `type=local,dest=${out}`, ctx]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(out, 'm'), 'utf8'), 'over-mtls\n');
    const ha = await buildx(['history', 'ls', '--builder', alice, '--format', '{{.Ref}}']);
    const hb = await buildx(['history', 'ls', '--builder', bob, '--format', '{{.Ref}}']);
    assert.equal(ha.stdout.trim().split('\n').filter(Boolean).length, 1, ha.stdout + ha.stderr);
    assert.equal(hb.stdout.trim(), '', 'bob sees none of alice\'s builds');
    const rogue = create(certs.rogue);
    const inspect = await buildx(['inspect', '--bootstrap', rogue], { timeoutMs: 60_000 });
    assert.doesNotMatch(inspect.stdout, /^Status:\s+running$/m);
  } finally {
    for (const name of names) spawnSync(DOCKER, ['buildx', 'rm', '--force', name], { stdio: 'ignore', timeout: 60_000 });
    await server.stop();
    rmSync(server.root, { recursive: true, force: true });
  }
});
