// BuildKit's Control API without buildx: kiln's own buildctl-like client (buildctl-client.ts) solving a
// dockerfile.v0 frontend with --local context/dockerfile, and raw LLB definitions written in the test
// (image, local, exec and file ops) on kiln's solver; hostile definitions end in one line and touch
// nothing outside the build's root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { startRegistry, pushBusybox, type TestRegistry } from '../helpers/registry.js';
import { serve, type Served } from '../daemon/serve-helpers.js';
import { BuildctlClient } from './buildctl-client.js';
import { LlbDef, copy, execOp, fileChain, mkdir, mkfile } from './llb-ops.js';
import { decodeDefinition } from '../../src/buildkit/llb/decode.js';
import { translateDefinition } from '../../src/buildkit/llb/translate.js';
import { codec } from '../../src/buildkit/proto.js';
import { isUserFacing } from '../../base/errors.js';

const EPOCH = '1700000000';
let reg: TestRegistry;
let base: string;
let server: Served;
let client: BuildctlClient;
let dir: string;
let n = 0;
const fresh = (name: string) => join(dir, `${name}-${n++}`);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-llb-'));
  reg = await startRegistry();
  base = pushBusybox(reg, 'library/busybox', 'latest');
  const sock = join(dir, 'buildkitd.sock');
  server = await serve(['--addr', `unix://${join(dir, 'kiln.sock')}`, '--buildkit-addr', `unix://${sock}`, '--platform', 'linux/amd64']);
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  client = new BuildctlClient(`unix://${sock}`);
});

after(async () => {
  client?.close();
  await server?.stop();
  await reg?.stop();
  if (server) rmSync(server.root, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function untar(tarPath: string): string {
  const out = `${tarPath}.d`;
  mkdirSync(out, { recursive: true });
  execFileSync('tar', ['-xf', tarPath, '-C', out]);
  return out;
}

/** The first line of a failed solve's gRPC error (what buildctl prints after "error: "). */
async function solveError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { details?: string }).details ?? (err as Error).message;
  }
  assert.fail('the solve succeeded');
}

/** Content, mtime and listing of a canary dir outside kiln's state, to compare after an attack. */
function snapshot(d: string): string {
  return readdirSync(d)
    .sort()
    .map((f) => `${f}:${statSync(join(d, f)).mtimeMs}:${readFileSync(join(d, f), 'utf8')}`)
    .join('\n');
}

test('buildctl build --frontend dockerfile.v0 --local context=. --local dockerfile=. of examples/hello: the oci digest equals a local kiln build', async () => {
  const hello = join(repoRoot, 'examples', 'hello');
  const out = fresh('hello.tar');
  const r = await client.solve({
    frontend: 'dockerfile.v0',
    frontendAttrs: { 'build-arg:REGISTRY': `${reg.host}/library`, 'build-arg:SOURCE_DATE_EPOCH': EPOCH },
    locals: { context: hello, dockerfile: hello },
    outputs: [{ type: 'oci', dest: out }],
  });
  const digest = r.response['containerimage.digest'];
  assert.match(digest ?? '', /^sha256:[0-9a-f]{64}$/);
  const index = JSON.parse(readFileSync(join(untar(out), 'index.json'), 'utf8'));
  assert.equal(index.manifests[0].digest, digest);
  assert.ok([...r.vertices.values()].some((v) => /COPY greet\.sh/.test(v.name)), 'progress shows the Dockerfile steps');

  const md = fresh('local.json');
  const local = kiln(tempRoot(), ['build', '--progress', 'plain', '--build-arg', `REGISTRY=${reg.host}/library`, '--metadata-file', md, '-o', `type=oci,dest=${fresh('local.tar')}`, hello], {
    env: { SOURCE_DATE_EPOCH: EPOCH },
    timeoutMs: 300_000,
  });
  assert.equal(local.status, 0, local.stderr);
  assert.equal(JSON.parse(readFileSync(md, 'utf8'))['containerimage.digest'], digest);
});

test('a plain LLB definition (image, local, exec, file ops) solves on kiln; the second solve is all cached', async () => {
  const ctx = fresh('ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'in.txt'), 'hello-llb');
  const d = new LlbDef();
  const img = d.image(base);
  const src = d.local('context');
  const run = d.add(execOp(img, 'echo "ran-$(cat /ctx/in.txt)" > /out.txt', [{ input: src, dest: '/ctx' }]), 'write out.txt');
  const files = d.add(fileChain(run, src, [mkdir('/made/deep'), mkfile('/made/deep/file.txt', 'made\n', 0o600), copy('/in.txt', '/copied/')]), 'files');
  const def = d.definition(files);

  const solve = async () => {
    const outDir = fresh('out');
    const tar = fresh('img.tar');
    const r = await client.solve({ definition: def, locals: { context: ctx }, outputs: [{ type: 'local', dest: outDir }, { type: 'oci', dest: tar }] });
    return { r, outDir, tar };
  };
  const first = await solve();
  // What the steps made, in the exported dir.
  assert.equal(readFileSync(join(first.outDir, 'out.txt'), 'utf8'), 'ran-hello-llb\n');
  assert.equal(readFileSync(join(first.outDir, 'made', 'deep', 'file.txt'), 'utf8'), 'made\n');
  assert.equal(statSync(join(first.outDir, 'made', 'deep', 'file.txt')).mode & 0o777, 0o600);
  assert.equal(readFileSync(join(first.outDir, 'copied', 'in.txt'), 'utf8'), 'hello-llb');
  assert.ok(existsSync(join(first.outDir, 'bin', 'busybox')), 'the image source is the rootfs');
  // And in the image: a manifest for linux/amd64 with the busybox layers plus the exec's and the file op's.
  const layout = untar(first.tar);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  assert.equal(index.manifests[0].digest, first.r.response['containerimage.digest']);
  const blob = (dg: string) => JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', dg.slice(7)), 'utf8'));
  const manifest = blob(index.manifests[0].digest);
  const config = blob(manifest.config.digest);
  assert.equal(config.architecture, 'amd64');
  assert.equal(manifest.layers.length, config.rootfs.diff_ids.length);
  assert.ok(manifest.layers.length >= 3);

  // Progress names kiln's steps by BuildKit's vertex digests (sha256 of each op's bytes) and custom names.
  const exec = first.r.vertices.get(run.digest);
  assert.ok(exec, `no progress for the exec vertex ${run.digest}: ${[...first.r.vertices.values()].map((v) => `${v.digest} ${v.name}`).join('; ')}`);
  assert.equal(exec.name, 'write out.txt');
  assert.equal(exec.cached, false);

  const second = await solve();
  for (const ref of [img, run, files]) {
    const v = second.r.vertices.get(ref.digest);
    assert.ok(v, `no progress for ${ref.digest}`);
    assert.equal(v.cached, true, `${v.name} ran again`);
  }
  assert.equal(second.r.response['containerimage.digest'], first.r.response['containerimage.digest']);
  assert.equal(readFileSync(join(second.outDir, 'out.txt'), 'utf8'), 'ran-hello-llb\n');
  assert.equal(second.r.servedBytes, 0, 'an unchanged local dir sends no contents the second time');
});

test('a local source as the result, and as the base of a file op, exports its files', async () => {
  const ctx = fresh('ctx');
  mkdirSync(join(ctx, 'sub'), { recursive: true });
  writeFileSync(join(ctx, 'sub', 'a.txt'), 'a\n');
  writeFileSync(join(ctx, 'skip.log'), 'no\n');
  const d = new LlbDef();
  const src = d.local('context', { 'local.excludepatterns': JSON.stringify(['*.log']) });
  const out = fresh('local-out');
  const r = await client.solve({ definition: d.definition(src), locals: { context: ctx }, outputs: [{ type: 'local', dest: out }] });
  assert.equal(readFileSync(join(out, 'sub', 'a.txt'), 'utf8'), 'a\n');
  assert.ok(!existsSync(join(out, 'skip.log')), 'the exclude patterns of the source apply');
  assert.equal(r.vertices.get(src.digest)?.name, 'local://context');

  const e = new LlbDef();
  const on = e.add(fileChain(e.local('context'), null, [mkfile('/sub/b.txt', 'b\n'), { rm: { path: '/sub/a.txt', allowNotFound: false, allowWildcard: false } }]));
  const out2 = fresh('local-out');
  await client.solve({ definition: e.definition(on), locals: { context: ctx }, outputs: [{ type: 'local', dest: out2 }] });
  assert.deepEqual(readdirSync(join(out2, 'sub')), ['b.txt']);
  assert.equal(readFileSync(join(out2, 'skip.log'), 'utf8'), 'no\n');
});

test('an exec mount of scratch as a result (its output 1), alone and merged with the same exec\'s rootfs', async () => {
  const d = new LlbDef();
  const op = execOp(d.image(base), 'echo out > /out/o.txt; echo root > /r.txt');
  (op.exec as { mounts: unknown[] }).mounts.push({ input: -1, dest: '/out', output: 1 });
  const run = d.add(op, 'write both');
  const out = fresh('mount-out');
  await client.solve({ definition: d.definition({ ...run, index: 1 }), outputs: [{ type: 'local', dest: out }] });
  assert.deepEqual(readdirSync(out), ['o.txt']);
  assert.equal(readFileSync(join(out, 'o.txt'), 'utf8'), 'out\n');

  const merged = d.add({ inputs: [run, { ...run, index: 1 }], merge: { inputs: [{ input: 0 }, { input: 1 }] } });
  const out2 = fresh('mount-out');
  await client.solve({ definition: d.definition(merged), outputs: [{ type: 'local', dest: out2 }] });
  assert.equal(readFileSync(join(out2, 'r.txt'), 'utf8'), 'root\n');
  assert.equal(readFileSync(join(out2, 'o.txt'), 'utf8'), 'out\n');
  assert.ok(existsSync(join(out2, 'bin', 'busybox')));
  assert.ok(!existsSync(join(out2, 'out', 'o.txt')), 'the mount is not part of the rootfs result');
});

test('an LLB result exported as type=image,push=true lands in the registry under the digest the solve reports', async () => {
  const d = new LlbDef();
  const f = d.add(fileChain(d.image(base), null, [mkfile('/pushed.txt', 'pushed\n')]));
  const name = `${reg.host}/llb/pushed:1`;
  const r = await client.solve({ definition: d.definition(f), outputs: [{ type: 'image', attrs: { name, push: 'true' } }] });
  const digest = r.response['containerimage.digest'];
  assert.match(digest ?? '', /^sha256:[0-9a-f]{64}$/);
  assert.equal(r.response['image.name'], name);
  const res = await fetch(`${reg.url}/v2/llb/pushed/manifests/1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), digest);
});

test('LLB exec with a secret mount and a secret env from the session, merged with a scratch file op; secret values stay out of the cache key', async () => {
  const d = new LlbDef();
  const img = d.image(base);
  const op = execOp(img, 'cp /run/secrets/tok /from-file; echo "$TOKEN" > /from-env');
  (op.exec as { mounts: unknown[] }).mounts.push({ input: -1, dest: '/run/secrets/tok', output: -1, mountType: 1, secretOpt: { ID: 'tok', mode: 0o400 } });
  (op.exec as { secretenv: unknown[] }).secretenv = [{ ID: 'tok', name: 'TOKEN' }];
  const run = d.add(op, 'use the secret');
  const extra = d.add(fileChain(null, null, [mkfile('/merged.txt', 'merged\n')]));
  const merged = d.add({ inputs: [run, extra], merge: { inputs: [{ input: 0 }, { input: 1 }] }, platform: { OS: 'linux', Architecture: 'amd64' } });
  const def = d.definition(merged);
  const out = fresh('secret-out');
  await client.solve({ definition: def, secrets: { tok: 'sekrit' }, outputs: [{ type: 'local', dest: out }] });
  assert.equal(readFileSync(join(out, 'from-file'), 'utf8'), 'sekrit');
  assert.equal(readFileSync(join(out, 'from-env'), 'utf8'), 'sekrit\n');
  assert.equal(readFileSync(join(out, 'merged.txt'), 'utf8'), 'merged\n');
  assert.ok(existsSync(join(out, 'bin', 'busybox')));
  assert.ok(!existsSync(join(out, 'run', 'secrets', 'tok')), 'the secret is not left in the result');
  // Another value of the same secret id: the step is cached, as in BuildKit (values never enter a key).
  const again = await client.solve({ definition: def, secrets: { tok: 'other' }, outputs: [{ type: 'local', dest: fresh('secret-out') }] });
  assert.equal(again.vertices.get(run.digest)?.cached, true);
  // A required secret the client does not have fails the step in one line.
  const d2 = new LlbDef();
  const op2 = execOp(d2.image(base), 'cat /run/secrets/missing');
  (op2.exec as { mounts: unknown[] }).mounts.push({ input: -1, dest: '/run/secrets/missing', output: -1, mountType: 1, secretOpt: { ID: 'missing', mode: 0o400 } });
  const msg = await solveError(client.solve({ definition: d2.definition(d2.add(op2)), outputs: [{ type: 'local', dest: fresh('x') }] }));
  assert.doesNotMatch(msg, /\n/);
  assert.match(msg, /^secret missing: not found/);
});

test('hostile file ops: ../ and absolute symlinks resolve inside the root; nothing outside changes', async () => {
  const canary = mkdtempSync(join(tmpdir(), 'kiln-llb-canary-'));
  writeFileSync(join(canary, 'secret.txt'), 'canary-secret\n');
  const before = snapshot(canary);
  const ctx = fresh('evil-ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'ok.txt'), 'ok\n');
  symlinkSync(canary, join(ctx, 'esc'));
  const up = '../../../../../../../../../../..';
  try {
    // Writes through ../ and through an absolute symlink land inside the image.
    const d = new LlbDef();
    const src = d.local('context');
    const files = d.add(
      fileChain(null, src, [
        copy('/', '/', { dirCopyContents: true }),
        mkfile(`${up}${canary}/pwned-dotdot`, 'x'),
        mkfile('/esc/pwned-symlink', 'x'),
        mkdir(`${up}/${canary}/pwned-dir`),
      ]),
    );
    const out = fresh('evil-out');
    await client.solve({ definition: d.definition(files), locals: { context: ctx }, outputs: [{ type: 'local', dest: out }] });
    assert.equal(snapshot(canary), before);
    assert.deepEqual(readdirSync(canary), ['secret.txt']);
    // Resolved inside the build's root: the absolute symlink was followed there, and ../ stopped at /.
    assert.equal(readFileSync(join(out, canary.slice(1), 'pwned-dotdot'), 'utf8'), 'x');
    assert.equal(readFileSync(join(out, canary.slice(1), 'pwned-symlink'), 'utf8'), 'x');
    assert.ok(statSync(join(out, canary.slice(1), 'pwned-dir')).isDirectory());

    // Reads through ../ and the symlink find nothing of the host's.
    for (const from of [`${up}${canary}/secret.txt`, '/esc/secret.txt']) {
      const r = new LlbDef();
      const s = r.local('context');
      const f = r.add(fileChain(null, s, [copy(from, '/stolen.txt', { allowWildcard: false })]));
      const msg = await solveError(client.solve({ definition: r.definition(f), locals: { context: ctx }, outputs: [{ type: 'local', dest: fresh('stolen') }] }));
      assert.doesNotMatch(msg, /\n/);
      assert.match(msg, /not found|no such file/i);
    }
    assert.equal(snapshot(canary), before);

    // Exec mounts: a bind whose selector climbs out of the local dir stays at the dir's root; a tmpfs
    // whose dest climbs out of the rootfs lands inside it (and the dir's absolute symlink points there,
    // inside the container). The command sees nothing of the host's canary and writes nothing to it.
    const execWith = (script: string, extra: Record<string, unknown>[]) => {
      const e = new LlbDef();
      const op = execOp(e.image(base), script);
      (op.inputs as unknown[]).push(e.local('context'));
      (op.exec as { mounts: unknown[] }).mounts.push(...extra);
      return e.definition(e.add(op));
    };
    const out2 = fresh('evil-exec');
    await client.solve({
      definition: execWith(`cat /m/ok.txt > /leak.txt; cat /m/esc/secret.txt >> /leak.txt 2>&1; echo x > ${canary}/pwned-exec; ls ${canary} > /listing.txt`, [
        { input: 1, dest: '/m', selector: up, output: -1, readonly: true },
        { input: -1, dest: `${up}${canary}`, output: -1, mountType: 4 },
      ]),
      locals: { context: ctx },
      outputs: [{ type: 'local', dest: out2 }],
    });
    assert.match(readFileSync(join(out2, 'leak.txt'), 'utf8'), /^ok\ncat: can't open '\/m\/esc\/secret\.txt': No such file or directory\n$/);
    assert.equal(readFileSync(join(out2, 'listing.txt'), 'utf8'), 'pwned-exec\n');
    // A selector naming the host's dir through ../ is a dir the local source does not have.
    const msg = await solveError(
      client.solve({ definition: execWith('cat /m/secret.txt', [{ input: 1, dest: '/m', selector: `${up}${canary}`, output: -1, readonly: true }]), locals: { context: ctx }, outputs: [{ type: 'local', dest: fresh('x') }] }),
    );
    assert.doesNotMatch(msg, /\n|canary-secret/);
    assert.match(msg, /No such file or directory/);
    assert.equal(snapshot(canary), before);
    assert.deepEqual(readdirSync(canary), ['secret.txt']);
  } finally {
    rmSync(canary, { recursive: true, force: true });
  }
});

test('malformed and unsupported definitions end the solve with one line naming the op', async () => {
  const cases: { def: { def: Buffer[]; metadata?: Record<string, unknown> }; want: RegExp }[] = [];
  // Bytes that are not a pb.Op.
  cases.push({ def: { def: [Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])] }, want: /^LLB definition: op 0 is not a valid pb\.Op message/ });
  // An input naming an op that is not there.
  {
    const d = new LlbDef();
    const bogus = { digest: `sha256:${'ab'.repeat(32)}`, index: 0 };
    const f = d.add(fileChain(bogus, null, [mkfile('/x', 'x')]));
    cases.push({ def: d.definition(f), want: /^LLB definition: file op \w+ uses "sha256:abab[a-f]*", which is not an op of the definition$/ });
  }
  // An output the op does not have.
  {
    const d = new LlbDef();
    const img = d.image(base);
    cases.push({ def: d.definition({ ...img, index: 3 }), want: /^LLB definition: the terminal op uses output 3 of source "docker-image:\/\/.*busybox:latest" \(\w+\), which has 1 output\(s\)$/ });
  }
  // A mount naming an input index the op does not have.
  {
    const d = new LlbDef();
    const img = d.image(base);
    const op = execOp(img, 'true');
    (op.exec as { mounts: unknown[] }).mounts.push({ input: 7, dest: '/m', output: -1 });
    cases.push({ def: d.definition(d.add(op)), want: /^exec "sh -c true" \(\w+\): mount 1 \("\/m"\): input 7 is not one of the op's 1 inputs$/ });
  }
  // A second rootfs spelled "//", and a mount with no destination.
  for (const [extra, want] of [
    [{ input: 0, dest: '//', output: 1 }, /^exec "sh -c true" \(\w+\): more than one rootfs mount \(dest "\/"\)$/],
    [{ input: -1, dest: '', output: -1, mountType: 4 }, /^exec "sh -c true" \(\w+\): mount 1 \(""\): a mount without a destination$/],
  ] as const) {
    const d = new LlbDef();
    const op = execOp(d.image(base), 'true');
    (op.exec as { mounts: unknown[] }).mounts.push(extra);
    cases.push({ def: d.definition(d.add(op)), want });
  }
  // Sources and ops kiln does not take.
  {
    const d = new LlbDef();
    const git = d.add({ source: { identifier: 'git://github.com/moby/buildkit.git#master' } });
    cases.push({ def: d.definition(git), want: /^source "git:\/\/github.com\/moby\/buildkit.git#master" \(\w+\): git sources are not supported by this builder/ });
  }
  {
    const d = new LlbDef();
    cases.push({ def: d.definition(d.add({ source: { identifier: 'docker-image://Not/A:Ref:x' } })), want: /^source "docker-image:\/\/Not\/A:Ref:x" \(\w+\): invalid reference format/ });
  }
  {
    const d = new LlbDef();
    cases.push({ def: d.definition(d.add({ source: { identifier: 'local://two\nlines' } })), want: /^source "local:\/\/two\\nlines" \(\w+\): a local source needs a name without control characters$/ });
  }
  {
    const d = new LlbDef();
    cases.push({ def: d.definition(d.add({ source: { identifier: 'no scheme\nat all' } })), want: /^source "no scheme\\nat all" \(\w+\): a source without a scheme is not supported by this builder/ });
  }
  {
    const d = new LlbDef();
    const a = d.image(base);
    const diff = d.add({ inputs: [a, a], diff: { lower: { input: 0 }, upper: { input: 1 } } });
    cases.push({ def: d.definition(diff), want: /^diff op \w+: diff ops are not supported by this builder$/ });
  }
  // A file action that is not part of one chain.
  {
    const d = new LlbDef();
    const a = d.image(base);
    const op = fileChain(a, null, [mkfile('/a', 'a'), mkfile('/b', 'b')]);
    (op.file as { actions: { input: number }[] }).actions[1]!.input = 0;
    cases.push({ def: d.definition(d.add(op)), want: /^file op \w+: action 1 \(mkfile\): acts on input 0, not on the action before it/ });
  }
  // A result taken from an exec mount of an image (kiln takes the rootfs or a writable mount of scratch).
  {
    const d = new LlbDef();
    const op = execOp(d.image(base), 'echo > /out/x');
    (op.exec as { mounts: unknown[] }).mounts.push({ input: 0, dest: '/out', output: 1 });
    const run = d.add(op);
    cases.push({ def: d.definition({ ...run, index: 1 }), want: /^exec "sh -c echo > \/out\/x" \(\w+\): output 1 \(mount "\/out"\) is used, but only the rootfs and writable mounts of scratch can be results on this builder$/ });
  }
  // Host networking the client was not granted.
  {
    const d = new LlbDef();
    const op = execOp(d.image(base), 'true');
    (op.exec as { network: number }).network = 1;
    cases.push({ def: d.definition(d.add(op)), want: /^network mode "host" needs the network\.host entitlement/ });
  }
  // More ops than the builder takes: refused before any is decoded into a graph.
  {
    const d = new LlbDef();
    let last = d.add(fileChain(null, null, [mkfile('/0', '0')]));
    for (let i = 1; i <= 10_000; i++) last = d.add(fileChain(last, null, [mkfile(`/${i}`, '')]));
    cases.push({ def: d.definition(last), want: /^LLB definition: 10002 ops is more than this builder takes \(10000\)$/ });
  }
  // The last op is not a terminal op.
  {
    const d = new LlbDef();
    d.image(base);
    cases.push({ def: { def: d.def }, want: /^LLB definition: the last op must be the terminal op/ });
  }
  for (const c of cases) {
    const msg = await solveError(client.solve({ definition: c.def, outputs: [{ type: 'local', dest: fresh('bad') }] }));
    assert.doesNotMatch(msg, /\n/, msg);
    assert.match(msg, c.want);
  }
  // The builder is still there and answers the next build.
  const d = new LlbDef();
  const ok = d.add(fileChain(null, null, [mkfile('/fine.txt', 'fine\n')]));
  const out = fresh('after');
  await client.solve({ definition: d.definition(ok), outputs: [{ type: 'local', dest: out }] });
  assert.equal(readFileSync(join(out, 'fine.txt'), 'utf8'), 'fine\n');
});

test('mutated op bytes (file, exec and source ops: flipped, cut, inserted) are translated or refused in one line, never a crash', () => {
  const d = new LlbDef();
  const img = d.image('registry.example/library/busybox:latest');
  const src = d.local('context', { 'local.excludepatterns': '["*.log"]' });
  const run = d.add(execOp(img, 'echo hi > /x', [{ input: src, dest: '/ctx' }]));
  const valid = d.definition(run);
  const terminal = codec<Record<string, unknown>>('pb.Op');
  const file = terminal.encode(fileChain(run, src, [mkdir('/a'), mkfile('/a/b', 'b'), copy('/in', '/a/'), { rm: { path: '/a/c', allowNotFound: true } }]));
  // Each of these, mutated, becomes the result: a file op, an exec op, a local source op.
  const targets = [file, terminal.encode(execOp(img, 'echo hi > /x', [{ input: src, dest: '/ctx' }])), terminal.encode({ source: { identifier: 'local://context', attrs: { 'local.includepatterns': '["a","b/c"]' } } })];
  // A deterministic generator, so a failure names a case that can be run again.
  let seed = 0x2545f491;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  let translated = 0;
  let refused = 0;
  for (let i = 0; i < 4500; i++) {
    const bytes = Buffer.from(targets[i % targets.length]!);
    let m: Buffer;
    switch (rand(3)) {
      case 0:
        bytes[rand(bytes.length)] ^= 1 << rand(8);
        m = bytes;
        break;
      case 1:
        m = bytes.subarray(0, rand(bytes.length));
        break;
      default: {
        const at = rand(bytes.length);
        m = Buffer.concat([bytes.subarray(0, at), Buffer.from([rand(256)]), bytes.subarray(at)]);
      }
    }
    const digest = `sha256:${createHash('sha256').update(m).digest('hex')}`;
    const def = { def: [...valid.def.slice(0, -1), m, terminal.encode({ inputs: [{ digest, index: 0 }] })] };
    try {
      translateDefinition(decodeDefinition(def));
      translated++;
    } catch (err) {
      assert.ok(isUserFacing(err), `case ${i}: ${(err as Error).stack}`);
      assert.doesNotMatch((err as Error).message, /\n/, `case ${i}`);
      refused++;
    }
  }
  assert.ok(translated > 100 && refused > 100, `translated ${translated}, refused ${refused}`);
});
