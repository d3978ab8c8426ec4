// Multi-stage builds (only the stages the target needs run; stages share work), outputs that other tools
// read (skopeo, umoci), and reproducible digests with SOURCE_DATE_EPOCH.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { kilnBuild } from '../helpers/build.js';

const suite = buildSuite();

const multiStage = () => [
  `FROM ${suite.base} AS base`,
  'RUN echo shared > /shared.txt',
  'FROM base AS broken',
  'RUN echo this stage must never run && exit 1',
  'FROM base AS build',
  'RUN mkdir -p /out && echo "built $(cat /shared.txt)" > /out/result.txt && ln -s result.txt /out/link',
  'FROM scratch AS final',
  'COPY --from=build /out/ /',
  'COPY --from=base /bin/busybox /bin/busybox',
].join('\n');

test('only the stages the target needs run; unused failing stages are skipped', () => {
  const dest = join(suite.outs, 'local');
  const r = kilnBuild(suite.root, { Dockerfile: multiStage() }, ['-o', `type=local,dest=${dest}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /must never run/);
  assert.equal(readFileSync(join(dest, 'result.txt'), 'utf8'), 'built shared\n');
  assert.equal(readlinkSync(join(dest, 'link')), 'result.txt');
  assert.ok(lstatSync(join(dest, 'bin/busybox')).isFile());
  assert.ok(!existsSync(join(dest, 'shared.txt')), 'scratch final stage has only what was copied');
});

test('--target builds an intermediate stage', () => {
  const r = kilnBuild(suite.root, { Dockerfile: multiStage() }, ['--target', 'build', '-t', 'kiln-test/target']);
  assert.equal(r.status, 0, r.stderr);
  const run = kiln(suite.root, ['run', '--rm', 'kiln-test/target', 'cat', '/out/result.txt', '/shared.txt']);
  assert.equal(run.stdout, 'built shared\nshared\n');
});

test('--print-graph prints the graph (json and dot) without building', () => {
  const r = kilnBuild(suite.root, { Dockerfile: multiStage() }, ['--print-graph']);
  assert.equal(r.status, 0, r.stderr);
  const def = JSON.parse(r.stdout);
  assert.ok(def.vertices.length >= 4);
  assert.ok(!def.vertices.some((v: any) => v.op.kind === 'exec' && v.op.args.join(' ').includes('must never run')));
  const dot = kilnBuild(suite.root, { Dockerfile: multiStage() }, ['--print-graph=dot']);
  assert.match(dot.stdout, /^digraph kiln \{/);
});

test('OCI and docker archives load in skopeo and umoci', () => {
  const ctx = { Dockerfile: `FROM ${suite.base}\nRUN echo oci > /from-run\nCMD ["cat", "/from-run"]\n` };
  const oci = join(suite.outs, 'img-oci.tar');
  const docker = join(suite.outs, 'img-docker.tar');
  let r = kilnBuild(suite.root, ctx, ['-t', 'kiln-test/archive:v1', '-o', `type=oci,dest=${oci}`]);
  assert.equal(r.status, 0, r.stderr);
  r = kilnBuild(suite.root, ctx, ['-t', 'kiln-test/archive:v1', '-o', `type=docker,dest=${docker}`]);
  assert.equal(r.status, 0, r.stderr);
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${oci}`], { encoding: 'utf8' }));
  assert.equal(inspect.Layers.length, 2);
  const dinspect = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${docker}`], { encoding: 'utf8' }));
  assert.equal(dinspect.Layers.length, 2);
  // umoci wants a layout dir: copy the archive into one with skopeo, then unpack it.
  const layout = join(suite.outs, 'layout');
  execFileSync('skopeo', ['copy', '-q', `oci-archive:${oci}`, `oci:${layout}:v1`]);
  const bundle = join(suite.outs, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:v1`, bundle], { stdio: 'ignore' });
  assert.equal(readFileSync(join(bundle, 'rootfs/from-run'), 'utf8'), 'oci\n');
  assert.ok(lstatSync(join(bundle, 'rootfs/bin/sh')).isSymbolicLink());
});

test('SOURCE_DATE_EPOCH makes two builds give the same manifest digest', () => {
  const files = { Dockerfile: `FROM ${suite.base}\nCOPY a.txt /a.txt\nRUN echo "$(cat /a.txt)" > /b.txt\n`, 'a.txt': 'same\n' };
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const one = kilnBuild(suite.root, files, ['--no-cache'], { env });
  const otherRoot = tempRoot();
  try {
    const two = kilnBuild(otherRoot, files, ['--no-cache'], { env });
    assert.equal(one.status, 0, one.stderr);
    assert.equal(two.status, 0, two.stderr);
    assert.ok(one.digest);
    assert.equal(one.digest, two.digest);
    assert.equal(one.config!.created, '2023-11-14T22:13:20Z');
  } finally {
    rmSync(otherRoot, { recursive: true, force: true });
  }
});

test('compression=zstd in --output: built layers are zstd; force-compression recompresses the base too', () => {
  const ctx = { Dockerfile: `FROM ${suite.base}\nRUN echo zstd > /z\n` };
  const layersOf = (archive: string) => {
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${archive}`], { encoding: 'utf8' }));
    return raw.layers.map((l: { mediaType: string }) => l.mediaType);
  };
  const plain = join(suite.outs, 'zstd.tar');
  let r = kilnBuild(suite.root, ctx, ['-o', `type=oci,dest=${plain},compression=zstd`]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(layersOf(plain), ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd']);
  const forced = join(suite.outs, 'zstd-forced.tar');
  r = kilnBuild(suite.root, ctx, ['-o', `type=oci,dest=${forced},compression=zstd,compression-level=9,force-compression=true`]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(layersOf(forced), ['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar+zstd']);
  // Each zstd blob decompresses (with Debian's zstd) to the tar its config's diff_id names.
  const dir = join(suite.outs, 'zstd-extract');
  execFileSync('mkdir', ['-p', dir]);
  execFileSync('tar', ['-xf', forced, '-C', dir]);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const blob = (d: string) => join(dir, 'blobs/sha256', d.slice(7));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8'));
  manifest.layers.forEach((l: { digest: string }, i: number) => {
    const sum = execFileSync('bash', ['-c', `zstd -dc < '${blob(l.digest)}' | sha256sum | cut -d' ' -f1`], { encoding: 'utf8' }).trim();
    assert.equal(`sha256:${sum}`, config.rootfs.diff_ids[i]);
  });
  const listing = execFileSync('bash', ['-c', `zstd -dc < '${blob(manifest.layers[1].digest)}' | tar -tv`], { encoding: 'utf8' });
  assert.match(listing, / z$/m);
});
