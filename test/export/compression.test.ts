import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { compressLayer } from '../../src/export/compression.js';
import { compressionOfLayer, decompressLayer } from '../../cache/layers/decompress.js';
import { sha256Digest } from '../../base/oci/digest.js';
import { OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP } from '../../base/oci/mediatypes.js';
import { makeFixture, type Fixture } from './request-fixture.js';

let fx: Fixture;
before(async () => {
  fx = await makeFixture();
});
after(() => rmSync(fx.work, { recursive: true, force: true }));

/** sha256 of what the one decompressor (cache/layers/decompress.ts) makes of a blob of `mediaType`. */
async function diffIdOf(blob: Buffer, mediaType: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of decompressLayer(Readable.from([blob]), compressionOfLayer(mediaType), 'the layer')) h.update(chunk);
  return `sha256:${h.digest('hex')}`;
}

const tarDiffId = () => sha256Digest(readFileSync(fx.extraTar));

for (const [compression, mediaType, tool] of [
  ['gzip', OCI_LAYER_GZIP, ['gzip', '-dc']],
  ['zstd', OCI_LAYER_ZSTD, ['zstd', '-dcq']],
  ['none', OCI_LAYER, ['cat']],
] as const) {
  test(`${compression} layers round-trip: compress then decompress gives the same diffID`, async () => {
    const c = await compressLayer(fx.extraTar, fx.content, { compression });
    assert.equal(c.mediaType, mediaType);
    assert.equal(c.diffId, tarDiffId());
    const blob = fx.content.readBytes(c.digest);
    assert.equal(blob.length, c.size);
    assert.equal(await diffIdOf(blob, c.mediaType), c.diffId);
    // The standard tools read the blob too.
    const viaTool = execFileSync(tool[0], [...tool.slice(1), fx.content.path(c.digest)], { maxBuffer: 1 << 28 });
    assert.equal(sha256Digest(viaTool), c.diffId);
    // Compressing again gives the same blob.
    assert.equal((await compressLayer(fx.extraTar, fx.content, { compression })).digest, c.digest);
  });
}

test('a larger, multi-chunk layer (the busybox rootfs) round-trips through zstd and gzip', async () => {
  const busyboxLayer = fx.amd64.layers[0]!;
  const plain = execFileSync('gzip', ['-dc', fx.content.path(busyboxLayer.digest)], { maxBuffer: 1 << 28 });
  for (const compression of ['zstd', 'gzip'] as const) {
    const tmpTar = `${fx.work}/busybox-${compression}.tar`;
    writeFileSync(tmpTar, plain);
    const c = await compressLayer(tmpTar, fx.content, { compression, level: compression === 'zstd' ? 9 : 1 });
    assert.equal(c.diffId, busyboxLayer.diffId);
    assert.ok(plain.length > 2 << 20 && c.size < plain.length * 0.8, `${compression} compressed ${plain.length} to ${c.size}`);
    assert.equal(await diffIdOf(fx.content.readBytes(c.digest), c.mediaType), busyboxLayer.diffId);
  }
});

test('Docker media types on request; bad levels and unknown types are clear errors', async () => {
  const c = await compressLayer(fx.extraTar, fx.content, { compression: 'gzip', ociMediaTypes: false });
  assert.equal(c.mediaType, DOCKER_LAYER_GZIP);
  await assert.rejects(compressLayer(fx.extraTar, fx.content, { compression: 'gzip', level: 12 }), { message: 'invalid compression-level 12 for gzip: expected 0-9' });
  await assert.rejects(compressLayer(fx.extraTar, fx.content, { compression: 'zstd', level: 0 }), { message: 'invalid compression-level 0 for zstd: expected 1-22' });
  assert.throws(() => compressionOfLayer('application/vnd.oci.image.config.v1+json'), {
    message: 'unsupported layer media type "application/vnd.oci.image.config.v1+json"',
  });
});

test('corrupt zstd data is an error, not a short layer', async () => {
  const c = await compressLayer(fx.extraTar, fx.content, { compression: 'zstd' });
  const blob = Buffer.from(fx.content.readBytes(c.digest));
  await assert.rejects(diffIdOf(blob.subarray(0, blob.length - 7), OCI_LAYER_ZSTD));
  const gz = await compressLayer(fx.extraTar, fx.content, { compression: 'gzip' });
  await assert.rejects(diffIdOf(fx.content.readBytes(gz.digest).subarray(0, 100), OCI_LAYER_GZIP));
});
