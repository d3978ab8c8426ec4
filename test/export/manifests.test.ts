import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { writeImageManifests } from '../../src/export/manifests.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_MANIFEST,
} from '../../base/oci/mediatypes.js';
import { parseImageConfig, parseManifest } from '../../base/oci/manifest.js';
import type { ImageIndex } from '../../base/oci/types.js';
import { makeFixture, type Fixture } from './request-fixture.js';

let fx: Fixture;
before(async () => {
  fx = await makeFixture();
});
after(() => rmSync(fx.work, { recursive: true, force: true }));

test('one platform: the root is the OCI manifest, with config and layers in the content store', () => {
  const w = writeImageManifests(fx.single, fx.content);
  assert.equal(w.root.mediaType, OCI_MANIFEST);
  assert.equal(w.root.platform, undefined);
  assert.equal(w.manifests[0]!.platform!.architecture, 'amd64');
  const parsed = parseManifest(fx.content.readBytes(w.root.digest));
  assert.equal(parsed.kind, 'manifest');
  if (parsed.kind !== 'manifest') return;
  assert.equal(parsed.manifest.config.mediaType, OCI_CONFIG);
  assert.equal(parsed.manifest.config.digest, w.configs[0]!.digest);
  assert.deepEqual(
    parsed.manifest.layers.map((l) => [l.mediaType, l.digest, l.size]),
    fx.amd64.layers.map((l) => [OCI_LAYER_GZIP, l.digest, l.size]),
  );
  const config = parseImageConfig(fx.content.readBytes(w.configs[0]!.digest));
  assert.deepEqual(config.rootfs.diff_ids, fx.amd64.layers.map((l) => l.diffId));
  assert.equal(config.config?.WorkingDir, '/opt/app');
});

test('serialisation is deterministic: same request, same digests; label order does not matter', () => {
  const a = writeImageManifests(fx.single, fx.content);
  const b = writeImageManifests(fx.single, fx.content);
  assert.equal(a.root.digest, b.root.digest);
  const labels = fx.amd64.config.config!.Labels!;
  const reordered = { ...fx.amd64, config: { ...fx.amd64.config, config: { ...fx.amd64.config.config, Labels: { 'org.example.a': labels['org.example.a']!, 'org.example.b': labels['org.example.b']! } } } };
  const c = writeImageManifests({ ...fx.single, images: [reordered] }, fx.content);
  assert.equal(c.root.digest, a.root.digest);
  // A real change changes the digest.
  const changed = { ...fx.amd64, config: { ...fx.amd64.config, config: { ...fx.amd64.config.config, WorkingDir: '/srv' } } };
  assert.notEqual(writeImageManifests({ ...fx.single, images: [changed] }, fx.content).root.digest, a.root.digest);
});

test('two platforms give an index listing both, with their platforms', () => {
  const w = writeImageManifests(fx.multi, fx.content);
  assert.equal(w.root.mediaType, OCI_INDEX);
  const index = JSON.parse(fx.content.readBytes(w.root.digest).toString()) as ImageIndex;
  assert.equal(index.mediaType, OCI_INDEX);
  assert.deepEqual(
    index.manifests.map((m) => [m.mediaType, m.digest, m.platform]),
    [
      [OCI_MANIFEST, w.manifests[0]!.digest, { architecture: 'amd64', os: 'linux' }],
      [OCI_MANIFEST, w.manifests[1]!.digest, { architecture: 'arm64', os: 'linux', variant: 'v8' }],
    ],
  );
  assert.notEqual(w.configs[0]!.digest, w.configs[1]!.digest);
});

test('oci-mediatypes=false writes Docker schema 2 types throughout', () => {
  const w = writeImageManifests({ ...fx.multi, ociMediaTypes: false }, fx.content);
  assert.equal(w.root.mediaType, DOCKER_MANIFEST_LIST);
  const m = JSON.parse(fx.content.readBytes(w.manifests[0]!.digest).toString());
  assert.equal(m.mediaType, DOCKER_MANIFEST);
  assert.equal(m.config.mediaType, DOCKER_CONFIG);
  assert.deepEqual(m.layers.map((l: { mediaType: string }) => l.mediaType), [DOCKER_LAYER_GZIP, DOCKER_LAYER_GZIP]);
});

test('annotations land on the manifest and the index; SOURCE_DATE_EPOCH clamps config times', () => {
  const w = writeImageManifests(
    { ...fx.multi, annotations: { index: { 'org.opencontainers.image.title': 'multi' }, manifest: { 'org.example.m': 'yes' } }, sourceDateEpoch: 86400 },
    fx.content,
  );
  const index = JSON.parse(fx.content.readBytes(w.root.digest).toString()) as ImageIndex;
  assert.deepEqual(index.annotations, { 'org.opencontainers.image.title': 'multi' });
  const m = JSON.parse(fx.content.readBytes(w.manifests[1]!.digest).toString());
  assert.deepEqual(m.annotations, { 'org.example.m': 'yes' });
  const config = parseImageConfig(fx.content.readBytes(w.configs[0]!.digest));
  assert.equal(config.created, '1970-01-02T00:00:00Z');
  // The fixture's own history entry (1970-01-01) is older than the epoch and stays as it was.
  assert.deepEqual(config.history!.map((h) => h.created), ['1970-01-01T00:00:00Z', '1970-01-02T00:00:00Z']);
});

test('inconsistent requests fail with one clear line', () => {
  const broken = { ...fx.amd64, layers: fx.amd64.layers.slice(0, 1) };
  assert.throws(() => writeImageManifests({ ...fx.single, images: [broken] }, fx.content), {
    message: 'image for linux/amd64: config lists 2 diff_ids but the image has 1 layers',
  });
  assert.throws(() => writeImageManifests({ ...fx.multi, images: [fx.amd64, fx.amd64] }, fx.content), { message: 'two images for platform linux/amd64 in one export' });
  assert.throws(() => writeImageManifests({ ...fx.single, annotations: { manifest: { a: 'b' } }, ociMediaTypes: false }, fx.content), (err: Error & { userFacing?: boolean }) => {
    assert.equal(err.userFacing, true);
    assert.match(err.message, /manifest annotations need OCI media types/);
    return true;
  });
});
