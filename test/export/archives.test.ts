import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeDockerArchive } from '../../src/export/docker-archive.js';
import { writeOciArchive, writeOciLayoutDir } from '../../src/export/oci-archive.js';
import type { ExportRequest } from '../../src/export/types.js';
import { sha256Digest } from '../../base/oci/digest.js';
import { OCI_INDEX } from '../../base/oci/mediatypes.js';
import type { ImageIndex } from '../../base/oci/types.js';
import { makeFixture, type Fixture } from './request-fixture.js';

let fx: Fixture;
before(async () => {
  fx = await makeFixture();
});
after(() => rmSync(fx.work, { recursive: true, force: true }));

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function toFile(path: string, write: (out: NodeJS.WritableStream & import('node:stream').Writable) => Promise<unknown>): Promise<string> {
  const out = createWriteStream(path);
  try {
    await write(out);
  } catch (err) {
    await new Promise<void>((res) => out.destroy().once('close', () => res()));
    throw err;
  }
  return path;
}

function tarNames(path: string): string[] {
  return run('tar', ['-tf', path]).trim().split('\n');
}

test('type=oci tar: skopeo inspects and copies it; names are annotated as BuildKit does', async () => {
  const path = join(fx.work, 'image-oci.tar');
  let root = '';
  await toFile(path, async (out) => (root = (await writeOciArchive(fx.single, fx.content, out)).root.digest));
  const inspect = JSON.parse(run('skopeo', ['inspect', `oci-archive:${path}`]));
  assert.equal(inspect.Digest, root);
  assert.equal(inspect.Architecture, 'amd64');
  assert.deepEqual(inspect.Layers, fx.amd64.layers.map((l) => l.digest));
  assert.deepEqual(inspect.Labels, { 'org.example.a': '1', 'org.example.b': '2' });

  const dockerTar = join(fx.work, 'copied-docker.tar');
  run('skopeo', ['copy', '--quiet', `oci-archive:${path}`, `docker-archive:${dockerTar}:copied:v1`]);
  assert.ok(existsSync(dockerTar));
  assert.equal(JSON.parse(run('skopeo', ['inspect', `docker-archive:${dockerTar}`])).Layers.length, 2);

  const names = tarNames(path);
  assert.deepEqual(names.slice(0, 3), ['blobs/', 'blobs/sha256/', names[2]]);
  assert.ok(names.includes('oci-layout') && names.includes('index.json'));
  const dir = join(fx.work, 'oci-unpacked');
  run('mkdir', ['-p', dir]);
  run('tar', ['-xf', path, '-C', dir]);
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  assert.equal(index.mediaType, OCI_INDEX);
  assert.deepEqual(index.manifests[0]!.annotations, {
    'io.containerd.image.name': 'docker.io/library/kiln-export-test:latest',
    'org.opencontainers.image.ref.name': 'latest',
  });
  // Every blob is there, under its own digest.
  for (const f of readdirSync(join(dir, 'blobs', 'sha256'))) assert.equal(sha256Digest(readFileSync(join(dir, 'blobs', 'sha256', f))), `sha256:${f}`);
});

test('two exports of the same request are byte-identical tars (sorted, fixed mtimes)', async () => {
  for (const [kind, req] of [['oci', fx.multi], ['docker', fx.single]] as const) {
    const write = kind === 'oci' ? writeOciArchive : writeDockerArchive;
    const a = await toFile(join(fx.work, `${kind}-a.tar`), (out) => write(req, fx.content, out));
    const b = await toFile(join(fx.work, `${kind}-b.tar`), (out) => write(req, fx.content, out));
    assert.equal(sha256Digest(readFileSync(a)), sha256Digest(readFileSync(b)), kind);
    const listing = run('tar', ['--numeric-owner', '-tvf', a]).trim().split('\n');
    for (const line of listing) assert.match(line, / 0\/0 .* 1970-01-01 00:00 /, line);
    const names = tarNames(a);
    assert.deepEqual(names, [...names].sort());
  }
  // SOURCE_DATE_EPOCH sets the mtimes instead.
  const e = await toFile(join(fx.work, 'epoch.tar'), (out) => writeOciArchive({ ...fx.single, sourceDateEpoch: 1_600_000_000 }, fx.content, out));
  assert.match(run('tar', ['--utc', '-tvf', e]).split('\n')[0]!, / 2020-09-13 12:26 /);
});

test('type=oci dir: umoci unpacks the layout to the merged tree (whiteouts applied)', async () => {
  const layout = join(fx.work, 'layout');
  writeOciLayoutDir(fx.single, fx.content, layout);
  const bundle = join(fx.work, 'bundle');
  run('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  assert.ok(lstatSync(join(rootfs, 'bin', 'busybox')).isFile());
  assert.ok(existsSync(join(rootfs, 'etc', 'passwd')));
  assert.ok(!existsSync(join(rootfs, 'etc', 'group')), '/etc/group is whited out');
  assert.deepEqual(readdirSync(join(rootfs, 'usr', 'sbin')), ['newtool'], '/usr/sbin is opaque');
  assert.ok(readdirSync(join(rootfs, 'usr', 'bin')).length > 10, '/usr/bin keeps its applets');
  assert.equal(readFileSync(join(rootfs, 'opt', 'app', 'run.sh'), 'utf8'), '#!/bin/sh\necho hello from kiln\n');
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  assert.equal(config.process.cwd, '/opt/app');
});

test('a two-platform OCI tar holds the index with both platforms', async () => {
  const path = join(fx.work, 'multi-oci.tar');
  await toFile(path, (out) => writeOciArchive(fx.multi, fx.content, out));
  const raw = JSON.parse(run('skopeo', ['inspect', '--raw', `oci-archive:${path}`])) as ImageIndex;
  assert.equal(raw.mediaType, OCI_INDEX);
  assert.deepEqual(raw.manifests.map((m) => m.platform), [{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux', variant: 'v8' }]);
  for (const arch of ['amd64', 'arm64']) {
    const i = JSON.parse(run('skopeo', ['inspect', '--override-arch', arch, `oci-archive:${path}`]));
    assert.equal(i.Architecture, arch);
  }
});

test('type=docker tar: skopeo reads it; manifest.json names config, tags and layers', async () => {
  const path = join(fx.work, 'image-docker.tar');
  await toFile(path, (out) => writeDockerArchive({ ...fx.single, ociMediaTypes: false }, fx.content, out));
  const inspect = JSON.parse(run('skopeo', ['inspect', `docker-archive:${path}`]));
  assert.equal(inspect.Architecture, 'amd64');
  assert.equal(inspect.Layers.length, 2);
  const copy = join(fx.work, 'from-docker');
  run('skopeo', ['copy', '--quiet', `docker-archive:${path}`, `oci:${copy}:t`]);
  assert.ok(existsSync(join(copy, 'index.json')));

  const dir = join(fx.work, 'docker-unpacked');
  run('mkdir', ['-p', dir]);
  run('tar', ['-xf', path, '-C', dir]);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  assert.deepEqual(Object.keys(manifest[0]), ['Config', 'RepoTags', 'Layers']);
  assert.deepEqual(manifest[0].RepoTags, ['kiln-export-test:latest']);
  assert.deepEqual(manifest[0].Layers, fx.amd64.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`));
  assert.ok(existsSync(join(dir, 'oci-layout')) && existsSync(join(dir, 'index.json')));
});

test('the docker exporter rejects a multi-platform request as buildx does', async () => {
  const req: ExportRequest = fx.multi;
  const path = join(fx.work, 'never.tar');
  await assert.rejects(toFile(path, (out) => writeDockerArchive(req, fx.content, out)), (err: Error & { userFacing?: boolean }) => {
    assert.equal(err.message, 'docker exporter does not currently support exporting manifest lists');
    assert.equal(err.userFacing, true);
    return true;
  });
});
