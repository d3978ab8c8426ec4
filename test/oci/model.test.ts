// Digests and manifest parsing: the pieces every other part of kiln trusts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestMismatchError, parseDigest, sha256Digest, verifyBuffer, verifyingStream } from '../../base/oci/digest.js';
import { parseImageConfig, parseManifest } from '../../base/oci/manifest.js';
import {
  DOCKER_FOREIGN_LAYER,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_LAYER,
  OCI_LAYER_ZSTD,
  OCI_MANIFEST,
  isForeignLayerType,
  layerCompressionOf,
} from '../../base/oci/mediatypes.js';

const D1 = 'sha256:' + '1'.repeat(64);
const D2 = 'sha256:' + '2'.repeat(64);

test('parseDigest accepts sha256 only, with clear errors', () => {
  assert.deepEqual(parseDigest(D1), { algorithm: 'sha256', hex: '1'.repeat(64), digest: D1 });
  const bad: Array<[string, RegExp]> = [
    ['sha512:' + 'a'.repeat(128), /unsupported digest algorithm sha512 .*only sha256 is supported/],
    ['sha384:' + 'a'.repeat(96), /unsupported digest algorithm sha384/],
    ['sha256:' + 'A'.repeat(64), /sha256 needs 64 lowercase hex/],
    ['sha256:' + 'a'.repeat(63), /sha256 needs 64 lowercase hex/],
    ['sha256:', /invalid digest/],
    ['a'.repeat(64), /invalid digest .*expected sha256:<64 hex characters>/],
    ['', /invalid digest/],
  ];
  for (const [s, re] of bad) assert.throws(() => parseDigest(s, 'the test'), (e: Error & { userFacing?: boolean }) => re.test(e.message) && e.userFacing === true, s);
});

test('sha256Digest and verifyBuffer', () => {
  assert.equal(sha256Digest(''), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha256Digest(Buffer.from('abc')), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  verifyBuffer(Buffer.from('abc'), sha256Digest('abc'));
  assert.throws(() => verifyBuffer(Buffer.from('abd'), sha256Digest('abc'), 'my blob'), (e: Error) => {
    assert.ok(e instanceof DigestMismatchError);
    assert.equal(e.message, `digest mismatch for my blob: expected ${sha256Digest('abc')}, got ${sha256Digest('abd')}`);
    return true;
  });
  assert.throws(() => verifyBuffer(Buffer.from('abc'), sha256Digest('abc'), 'x', 4), /size mismatch for x: expected 4 bytes, got 3/);
});

async function through(data: Buffer[], expected: string, size?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(data),
    verifyingStream(expected, { size, what: 'stream' }),
    new Writable({
      write(chunk, _e, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

test('verifyingStream passes matching content through and fails on mismatch', async () => {
  const parts = [Buffer.from('hello '), Buffer.from('world')];
  const d = sha256Digest('hello world');
  assert.equal((await through(parts, d, 11)).toString(), 'hello world');
  await assert.rejects(through(parts, sha256Digest('hello there')), DigestMismatchError);
  await assert.rejects(through(parts, d, 5), /size mismatch for stream: expected 5 bytes/);
  await assert.rejects(through(parts, d, 12), /size mismatch for stream: expected 12 bytes, got 11/);
});

const desc = (mediaType: string, digest = D1, size = 10) => ({ mediaType, digest, size });

test('parseManifest recognises OCI and Docker manifests and indexes by their body', () => {
  const ociManifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: desc('application/vnd.oci.image.config.v1+json'), layers: [desc(OCI_LAYER_ZSTD, D2)] };
  const cases: Array<[object, string | undefined, 'index' | 'manifest', string]> = [
    [ociManifest, undefined, 'manifest', OCI_MANIFEST],
    [ociManifest, 'application/octet-stream', 'manifest', OCI_MANIFEST],
    [{ ...ociManifest, mediaType: undefined }, undefined, 'manifest', OCI_MANIFEST],
    [{ schemaVersion: 2, manifests: [desc(OCI_MANIFEST)] }, undefined, 'index', OCI_INDEX],
    [{ schemaVersion: 2, manifests: [] }, `${DOCKER_MANIFEST_LIST}; charset=utf-8`, 'index', DOCKER_MANIFEST_LIST],
    [{ schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: [{ ...desc(DOCKER_MANIFEST), platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }] }, 'application/json', 'index', DOCKER_MANIFEST_LIST],
    [{ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: desc('application/vnd.docker.container.image.v1+json'), layers: [desc(DOCKER_LAYER_GZIP), { ...desc(DOCKER_FOREIGN_LAYER), urls: ['https://x/y'] }] }, OCI_MANIFEST, 'manifest', DOCKER_MANIFEST],
  ];
  for (const [doc, ct, kind, mt] of cases) {
    const p = parseManifest(Buffer.from(JSON.stringify(doc)), { ref: 'r', contentType: ct });
    assert.equal(p.kind, kind, JSON.stringify(doc));
    assert.equal(p.mediaType, mt, JSON.stringify(doc));
  }
});

test('parseManifest rejects schema 1 and malformed documents in one line naming the ref', () => {
  const cases: Array<[string, RegExp]> = [
    ['{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}', /^reg\/x:y: Docker schema 1 manifests are not supported/],
    ['not json', /^malformed manifest for reg\/x:y: not valid JSON/],
    ['[]', /not a JSON object/],
    ['{"schemaVersion":3,"manifests":[]}', /unsupported schemaVersion 3/],
    ['{"schemaVersion":2}', /neither an image manifest nor an index/],
    [JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.artifact.foo', layers: [] }), /unsupported media type application\/vnd.oci.artifact.foo/],
    [JSON.stringify({ schemaVersion: 2, config: desc('c'), layers: {} }), /layers is not an array/],
    [JSON.stringify({ schemaVersion: 2, config: desc('c', 'sha256:xyz'), layers: [] }), /config: invalid digest "sha256:xyz"/],
    [JSON.stringify({ schemaVersion: 2, config: desc('c'), layers: [desc('l', 'md5:' + 'a'.repeat(32))] }), /layers\[0\]: unsupported digest algorithm md5/],
    [JSON.stringify({ schemaVersion: 2, config: desc('c'), layers: [{ ...desc('l'), size: -1 }] }), /layers\[0\] has an invalid size/],
    [JSON.stringify({ schemaVersion: 2, manifests: [{ ...desc(OCI_MANIFEST), platform: { os: 'linux' } }] }), /manifests\[0\]\.platform needs string os and architecture/],
    [JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], layers: [] }), /must not have config or layers/],
    [JSON.stringify({ schemaVersion: 2, config: desc('c'), layers: [] }).replace('{', '{"mediaType":"' + DOCKER_MANIFEST + '",').replace(/"config":\{[^}]*\},/, ''), /config is not an object/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseManifest(Buffer.from(text), { ref: 'reg/x:y' }),
      (e: Error & { userFacing?: boolean }) => re.test(e.message) && e.userFacing === true && !e.message.includes('\n'),
      text,
    );
  }
  assert.throws(() => parseManifest('{"schemaVersion":2,"config":{}}', { contentType: DOCKER_MANIFEST }), /config has no mediaType/);
});

test('parseImageConfig keeps Docker and OCI fields and checks rootfs', () => {
  const cfg = {
    architecture: 'arm64',
    os: 'linux',
    variant: 'v8',
    'os.version': '10.0',
    created: '2024-01-01T00:00:00Z',
    author: 'me',
    config: {
      Env: ['A=1'],
      Cmd: ['sh'],
      Entrypoint: ['/init'],
      WorkingDir: '/w',
      User: '1000:1000',
      ExposedPorts: { '80/tcp': {} },
      Volumes: { '/data': {} },
      Labels: { a: 'b' },
      StopSignal: 'SIGTERM',
      Healthcheck: { Test: ['CMD', 'true'], Interval: 30_000_000_000 },
      OnBuild: ['RUN x'],
      Shell: ['/bin/bash', '-c'],
      ArgsEscaped: true,
    },
    rootfs: { type: 'layers', diff_ids: [D1] },
    history: [{ created_by: 'x', empty_layer: true }],
    docker_version: '24.0',
  };
  const parsed = parseImageConfig(Buffer.from(JSON.stringify(cfg)));
  assert.deepEqual(parsed, cfg);
  const bad: Array<[object, RegExp]> = [
    [{ ...cfg, os: undefined }, /no os/],
    [{ ...cfg, architecture: '' }, /no architecture/],
    [{ ...cfg, rootfs: { type: 'foo', diff_ids: [] } }, /rootfs must be/],
    [{ ...cfg, rootfs: { type: 'layers', diff_ids: ['sha1:abc'] } }, /rootfs.diff_ids\[0\]/],
  ];
  for (const [doc, re] of bad) assert.throws(() => parseImageConfig(JSON.stringify(doc), { ref: 'img' }), re);
});

test('layer media types: compression and foreign layers', () => {
  assert.equal(layerCompressionOf(OCI_LAYER), 'none');
  assert.equal(layerCompressionOf(OCI_LAYER_ZSTD), 'zstd');
  assert.equal(layerCompressionOf(DOCKER_LAYER_GZIP), 'gzip');
  assert.equal(layerCompressionOf(DOCKER_FOREIGN_LAYER), 'gzip');
  assert.equal(layerCompressionOf('text/plain'), undefined);
  assert.equal(isForeignLayerType(DOCKER_FOREIGN_LAYER), true);
  assert.equal(isForeignLayerType(DOCKER_LAYER_GZIP), false);
});
