import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layoutBlobPath, readLayoutBlob, readOciLayout, resolveLayoutImage } from '../../base/oci/layout.js';
import { parsePlatform } from '../../base/oci/platform.js';
import { DigestMismatchError, sha256Digest } from '../../base/oci/digest.js';
import { OCI_INDEX } from '../../base/oci/mediatypes.js';
import { fixtureDigests } from './fixture-digests.js';

const fx = fixtureDigests();
let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'kiln-oci-layout-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

/** A private copy of the fixture layout that a test may damage. */
function copyLayout(name: string): string {
  const dir = join(work, name);
  cpSync(fx.layout, dir, { recursive: true });
  return dir;
}

test('readOciLayout lists tags from org.opencontainers.image.ref.name', async () => {
  const layout = await readOciLayout(fx.layout);
  assert.deepEqual([...layout.tags.keys()], ['latest']);
  assert.equal(layout.tags.get('latest')!.digest, fx.indexDigest);
  assert.equal(layout.tags.get('latest')!.mediaType, OCI_INDEX);
  assert.equal(layoutBlobPath(fx.layout, fx.indexDigest), join(fx.layout, 'blobs', 'sha256', fx.indexDigest.slice(7)));
});

test('resolveLayoutImage follows index.json through the nested index to each platform', async () => {
  for (const [spec, arch] of [['linux/amd64', 'amd64'], ['linux/arm64', 'arm64'], ['linux/arm64/v8', 'arm64']] as const) {
    for (const tag of ['latest', undefined]) {
      const r = await resolveLayoutImage(fx.layout, tag, parsePlatform(spec));
      assert.equal(r.indexDigest, fx.indexDigest, `${spec} ${tag}`);
      assert.equal(r.manifestDigest, fx[arch].manifestDigest, `${spec} ${tag}`);
      assert.equal(r.configDigest, fx[arch].manifest.config.digest);
      assert.equal(sha256Digest(r.configBytes), r.configDigest);
      assert.equal(r.config.architecture, arch);
    }
  }
  await assert.rejects(resolveLayoutImage(fx.layout, 'latest', parsePlatform('linux/ppc64le')), {
    message: `no image for ${fx.layout}:latest matches platform linux/ppc64le; available: linux/amd64, linux/arm64/v8`,
  });
});

test('a full reference as ref.name is found by its tag; an unknown tag lists the known ones', async () => {
  const dir = copyLayout('fullref');
  const idx = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  idx.manifests[0].annotations['org.opencontainers.image.ref.name'] = 'docker.io/library/busybox:1.36';
  writeFileSync(join(dir, 'index.json'), JSON.stringify(idx));
  const r = await resolveLayoutImage(dir, '1.36', parsePlatform('linux/amd64'));
  assert.equal(r.manifestDigest, fx.amd64.manifestDigest);
  await assert.rejects(resolveLayoutImage(dir, 'nope', parsePlatform('linux/amd64')), {
    message: `tag "nope" not found in OCI layout ${dir}; tags: docker.io/library/busybox:1.36`,
  });
});

test('several untagged platform manifests in index.json act as the image index', async () => {
  const dir = copyLayout('flat');
  const inner = readFileSync(layoutBlobPath(dir, fx.indexDigest), 'utf8');
  writeFileSync(join(dir, 'index.json'), inner);
  const r = await resolveLayoutImage(dir, undefined, parsePlatform('linux/arm64'));
  assert.equal(r.manifestDigest, fx.arm64.manifestDigest);
  assert.equal(r.indexDigest, undefined);
});

test('blobs are verified on read: a corrupted config is a digest error, a missing blob is named', async () => {
  const dir = copyLayout('corrupt');
  const cfg = fx.arm64.manifest.config;
  const p = layoutBlobPath(dir, cfg.digest);
  const b = readFileSync(p);
  b[5] ^= 0x20;
  writeFileSync(p, b);
  await assert.rejects(resolveLayoutImage(dir, 'latest', parsePlatform('linux/arm64')), (err: Error) => {
    assert.ok(err instanceof DigestMismatchError);
    assert.match(err.message, new RegExp(`expected ${cfg.digest}, got sha256:`));
    return true;
  });
  // amd64 is intact
  assert.equal((await resolveLayoutImage(dir, 'latest', parsePlatform('linux/amd64'))).config.architecture, 'amd64');
  rmSync(layoutBlobPath(dir, fx.amd64.manifestDigest));
  await assert.rejects(resolveLayoutImage(dir, 'latest', parsePlatform('linux/amd64')), {
    message: `blob ${fx.amd64.manifestDigest} is missing from OCI layout ${dir}`,
  });
  await assert.rejects(readLayoutBlob(dir, { ...fx.amd64.manifest.layers[0]!, size: 3 }), /size mismatch/);
});

test('a directory that is not an OCI layout is reported clearly', async () => {
  await assert.rejects(readOciLayout(work), { message: `${work} is not an OCI image layout (no oci-layout file)` });
  const dir = copyLayout('badversion');
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
  await assert.rejects(readOciLayout(dir), /unsupported OCI layout version "2.0.0"/);
});
