// The registry client against a real registry (Debian's docker-registry on 127.0.0.1).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../base/oci/registry/client.js';
import { CredentialStore } from '../../base/oci/registry/credentials.js';
import { parseReference } from '../../base/oci/reference.js';
import { parsePlatform } from '../../base/oci/platform.js';
import { DigestMismatchError, sha256Digest } from '../../base/oci/digest.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../../base/oci/mediatypes.js';
import { fixtureDigests } from './fixture-digests.js';
import { startProxy, type TestServer } from './proxy.js';

const fx = fixtureDigests();
let reg: TestRegistry;
let client: RegistryClient;
let work: string;

before(async () => {
  reg = await startRegistry();
  pushBusybox(reg, 'busybox', 'latest');
  work = mkdtempSync(join(tmpdir(), 'kiln-oci-test-'));
  client = new RegistryClient({ credentials: new CredentialStore(), retry: { baseDelayMs: 10 } });
});

after(async () => {
  await client?.close();
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

const sha256File = (p: string) => 'sha256:' + createHash('sha256').update(readFileSync(p)).digest('hex');

test('getManifest by tag returns the index bytes, digest and media type', async () => {
  const m = await client.getManifest(parseReference(`${reg.host}/busybox:latest`));
  assert.equal(m.digest, fx.indexDigest);
  assert.equal(sha256Digest(m.bytes), fx.indexDigest);
  assert.equal(m.mediaType, OCI_INDEX);
  assert.equal(m.parsed.kind, 'index');
});

test('getManifest by digest returns the verified platform manifest', async () => {
  const ref = parseReference(`${reg.host}/busybox@${fx.arm64.manifestDigest}`);
  const m = await client.getManifest(ref);
  assert.equal(m.digest, fx.arm64.manifestDigest);
  assert.equal(m.mediaType, OCI_MANIFEST);
  assert.deepEqual(JSON.parse(m.bytes.toString()), fx.arm64.manifest);
  // A digest that the registry does not have is "not found", with the digest named.
  const missing = 'sha256:' + '0'.repeat(64);
  await assert.rejects(client.getManifest(parseReference(`${reg.host}/busybox@${missing}`)), {
    message: `${reg.host}/busybox@${missing}: not found in registry`,
  });
});

for (const spec of ['linux/arm64', 'linux/arm64/v8', 'linux/aarch64']) {
  test(`resolveImage follows the index to the ${spec} manifest`, async () => {
    const r = await client.resolveImage(parseReference(`${reg.host}/busybox`), parsePlatform(spec));
    assert.equal(r.indexDigest, fx.indexDigest);
    assert.equal(r.indexMediaType, OCI_INDEX);
    assert.equal(r.manifestDigest, fx.arm64.manifestDigest);
    assert.equal(sha256Digest(r.manifestBytes), r.manifestDigest);
    assert.equal(r.configDigest, fx.arm64.manifest.config.digest);
    assert.equal(sha256Digest(r.configBytes), r.configDigest);
    assert.equal(r.config.architecture, 'arm64');
    assert.equal(r.config.variant, 'v8');
    assert.deepEqual(r.config.config?.Cmd, ['sh']);
    assert.equal(r.config.rootfs.diff_ids.length, 1);
    assert.deepEqual(r.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  });
}

test('resolveImage picks amd64, and lists the platforms when none matches', async () => {
  const r = await client.resolveImage(parseReference(`${reg.host}/busybox:latest`), parsePlatform('linux/amd64'));
  assert.equal(r.manifestDigest, fx.amd64.manifestDigest);
  assert.equal(r.config.architecture, 'amd64');
  assert.equal(r.manifestDescriptor.platform?.architecture, 'amd64');
  await assert.rejects(client.resolveImage(parseReference(`${reg.host}/busybox:latest`), parsePlatform('linux/s390x')), {
    message: `no image for ${reg.host}/busybox:latest matches platform linux/s390x; available: linux/amd64, linux/arm64/v8`,
  });
});

test('resolveImage by a platform manifest digest needs no index', async () => {
  const r = await client.resolveImage(parseReference(`${reg.host}/busybox@${fx.amd64.manifestDigest}`), parsePlatform('linux/amd64'));
  assert.equal(r.indexDigest, undefined);
  assert.equal(r.manifestDigest, fx.amd64.manifestDigest);
  assert.equal(r.manifestDescriptor.digest, fx.amd64.manifestDigest);
  assert.equal(r.manifestDescriptor.size, r.manifestBytes.length);
});

test('Docker schema 2 manifest lists and manifests resolve too', async () => {
  execFileSync('skopeo', ['copy', '-q', '--all', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${fx.layout}:latest`, `docker://${reg.host}/dockerbox:v2`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const r = await client.resolveImage(parseReference(`${reg.host}/dockerbox:v2`), parsePlatform('linux/arm64'));
  assert.equal(r.indexMediaType, DOCKER_MANIFEST_LIST);
  assert.equal(r.manifestMediaType, DOCKER_MANIFEST);
  assert.equal(r.manifest.layers[0]!.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  assert.equal(r.config.architecture, 'arm64');
  // Same layer content as the OCI image.
  assert.equal(r.manifest.layers[0]!.digest, fx.arm64.manifest.layers[0]!.digest);
});

test('downloadBlob streams a layer to a file whose sha256 matches, reporting progress', async () => {
  const ref = parseReference(`${reg.host}/busybox`);
  for (const arch of ['amd64', 'arm64'] as const) {
    const layer = fx[arch].manifest.layers[0]!;
    const dest = join(work, `layer-${arch}`);
    const progress: number[] = [];
    await client.downloadBlob(ref, layer, dest, (n) => progress.push(n));
    assert.equal(sha256File(dest), layer.digest);
    assert.equal(readFileSync(dest).length, layer.size);
    assert.equal(progress.at(-1), layer.size);
    assert.ok(progress.every((n, i) => i === 0 || n >= progress[i - 1]!), 'progress never goes backwards');
  }
});

test('getBlob returns small blobs verified', async () => {
  const cfg = fx.amd64.manifest.config;
  const bytes = await client.getBlob(parseReference(`${reg.host}/busybox`), cfg.digest);
  assert.equal(bytes.length, cfg.size);
  assert.equal(JSON.parse(bytes.toString()).architecture, 'amd64');
  await assert.rejects(client.getBlob(parseReference(`${reg.host}/busybox`), 'sha256:' + 'f'.repeat(64)), {
    message: `${reg.host}/busybox@sha256:${'f'.repeat(64)}: blob not found in registry`,
  });
  await assert.rejects(client.getBlob(parseReference(`${reg.host}/busybox`), 'md5:abcd'), /unsupported digest algorithm md5/);
});

test('unknown tag, unknown repository and unreachable registry give one-line errors', async () => {
  await assert.rejects(client.getManifest(parseReference(`${reg.host}/busybox:nope`)), {
    name: 'NotFoundError',
    message: `${reg.host}/busybox:nope: not found in registry`,
    userFacing: true,
  });
  await assert.rejects(client.resolveImage(parseReference(`${reg.host}/nope`), parsePlatform('linux/amd64')), {
    message: `${reg.host}/nope:latest: not found in registry`,
    userFacing: true,
  });
  const started = Date.now();
  await assert.rejects(client.getManifest(parseReference('127.0.0.1:1/x')), (err: Error & { userFacing?: boolean }) => {
    assert.match(err.message, /^cannot reach registry 127\.0\.0\.1:1: connect ECONNREFUSED/);
    assert.equal(err.userFacing, true);
    assert.ok(!err.message.includes('\n'));
    return true;
  });
  assert.ok(Date.now() - started < 5000, 'a refused connection is reported without long retries');
});

test('a corrupted blob in the registry is rejected with the digest error and nothing is left behind', async () => {
  // A registry of its own: blobs are shared by every repository of a registry.
  const bad = await startRegistry();
  try {
    pushBusybox(bad, 'busybox', 'latest');
    const ref = parseReference(`${bad.host}/busybox`);
    const flip = (digest: string) => {
      const hex = digest.slice(7);
      const p = join(bad.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
      const b = readFileSync(p);
      b[Math.floor(b.length / 2)] ^= 0xff;
      writeFileSync(p, b);
    };
    const layer = fx.amd64.manifest.layers[0]!;
    const cfg = fx.amd64.manifest.config;
    flip(layer.digest);
    flip(cfg.digest);

    const dest = join(work, 'corrupt-layer');
    await assert.rejects(client.downloadBlob(ref, layer, dest), (err: Error) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.match(err.message, new RegExp(`expected ${layer.digest}, got sha256:[0-9a-f]{64}$`));
      return true;
    });
    assert.equal(existsSync(dest), false, 'the partial file is deleted');

    await assert.rejects(client.getBlob(ref, cfg.digest), (err: Error) => err instanceof DigestMismatchError && err.message.includes(`expected ${cfg.digest}`));
    await assert.rejects(client.resolveImage(ref, parsePlatform('linux/amd64')), DigestMismatchError);
    // The untouched arm64 image still resolves.
    const ok = await client.resolveImage(ref, parsePlatform('linux/arm64'));
    assert.equal(ok.manifestDigest, fx.arm64.manifestDigest);
  } finally {
    await bad.stop();
  }
});

test('malformed, schema 1 and mislabelled manifests', async () => {
  const bodies: Record<string, { type: string; body: string }> = {
    '/v2/busybox/manifests/garbage': { type: OCI_MANIFEST, body: '{"schemaVersion":2,"config":' },
    '/v2/busybox/manifests/nolayers': { type: OCI_MANIFEST, body: JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: fx.amd64.manifest.config }) },
    '/v2/busybox/manifests/schema1': {
      type: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
      body: JSON.stringify({ schemaVersion: 1, name: 'busybox', tag: 'schema1', fsLayers: [], history: [] }),
    },
  };
  bodies[`/v2/busybox/manifests/${fx.amd64.manifestDigest}`] = {
    type: OCI_MANIFEST,
    body: readFileSync(join(fx.layout, 'blobs/sha256', fx.arm64.manifestDigest.slice(7)), 'utf8'),
  };
  let proxy: TestServer | undefined;
  proxy = await startProxy(reg.url, (req, res, forward) => {
    const fake = bodies[req.url ?? ''];
    if (fake) {
      res.writeHead(200, { 'content-type': fake.type });
      res.end(fake.body);
      return;
    }
    if (req.url === '/v2/busybox/manifests/mislabelled') {
      // The real index bytes under a useless Content-Type: the body's own mediaType decides.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(readFileSync(join(fx.layout, 'blobs/sha256', fx.indexDigest.slice(7))));
      return;
    }
    forward();
  });
  try {
    const host = proxy.host;
    await assert.rejects(client.getManifest(parseReference(`${host}/busybox:garbage`)), (err: Error & { userFacing?: boolean }) => {
      assert.match(err.message, new RegExp(`^malformed manifest for ${host}/busybox:garbage: not valid JSON`));
      assert.equal(err.userFacing, true);
      assert.ok(!err.message.includes('\n'));
      return true;
    });
    await assert.rejects(client.getManifest(parseReference(`${host}/busybox:nolayers`)), {
      message: `malformed manifest for ${host}/busybox:nolayers: layers is not an array`,
    });
    await assert.rejects(client.getManifest(parseReference(`${host}/busybox:schema1`)), /busybox:schema1: Docker schema 1 manifests are not supported/);
    const m = await client.getManifest(parseReference(`${host}/busybox:mislabelled`));
    assert.equal(m.mediaType, OCI_INDEX);
    assert.equal(m.digest, fx.indexDigest);
    // Bytes that do not hash to the digest asked for are refused.
    await assert.rejects(client.getManifest(parseReference(`${host}/busybox@${fx.amd64.manifestDigest}`)), (err: Error) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.message, `digest mismatch for manifest ${host}/busybox@${fx.amd64.manifestDigest}: expected ${fx.amd64.manifestDigest}, got ${fx.arm64.manifestDigest}`);
      return true;
    });
  } finally {
    await proxy.stop();
  }
});
