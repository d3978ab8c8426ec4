// Transient failures between kiln and a real registry: 503s, connections cut mid-blob (resumed with Range
// or restarted), and what must not be retried.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../base/oci/registry/client.js';
import { CredentialStore } from '../../base/oci/registry/credentials.js';
import { parseReference } from '../../base/oci/reference.js';
import { parsePlatform } from '../../base/oci/platform.js';
import { fixtureDigests } from './fixture-digests.js';
import { startBearerProxy, startProxy, type Handler, type TestServer } from './proxy.js';

const fx = fixtureDigests();
const layer = fx.amd64.manifest.layers[0]!;
let reg: TestRegistry;
let work: string;
let client: RegistryClient;

before(async () => {
  reg = await startRegistry();
  pushBusybox(reg, 'busybox', 'latest');
  work = mkdtempSync(join(tmpdir(), 'kiln-oci-faults-'));
  client = new RegistryClient({ credentials: new CredentialStore(), retry: { attempts: 4, baseDelayMs: 20 } });
});

after(async () => {
  await client?.close();
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function withProxy(handler: Handler, fn: (p: TestServer) => Promise<void>): Promise<void> {
  const p = await startProxy(reg.url, handler);
  try {
    await fn(p);
  } finally {
    await p.stop();
  }
}

const sha256File = (p: string) => 'sha256:' + createHash('sha256').update(readFileSync(p)).digest('hex');
const isBlobGet = (url: string | undefined) => /\/blobs\/sha256:/.test(url ?? '');

test('a 503 on the first try is retried and succeeds', async () => {
  const failed = new Set<string>();
  await withProxy(
    (req, res, forward) => {
      if (!failed.has(req.url!)) {
        failed.add(req.url!);
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'try later' }] }));
        return;
      }
      forward();
    },
    async (p) => {
      const r = await client.resolveImage(parseReference(`${p.host}/busybox`), parsePlatform('linux/amd64'));
      assert.equal(r.manifestDigest, fx.amd64.manifestDigest);
      // index, manifest and config each failed once, then succeeded.
      assert.equal(p.seen.length, 6);
      const dest = join(work, 'after-503');
      await client.downloadBlob(parseReference(`${p.host}/busybox`), layer, dest);
      assert.equal(sha256File(dest), layer.digest);
    },
  );
});

test('a registry that keeps failing gives up after the configured attempts with the status in one line', async () => {
  await withProxy(
    (_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'maintenance' }] }));
    },
    async (p) => {
      await assert.rejects(client.getManifest(parseReference(`${p.host}/busybox`)), {
        message: `${p.host}/busybox:latest: registry ${p.host} returned 503 Service Unavailable: UNAVAILABLE: maintenance`,
        userFacing: true,
      });
      assert.equal(p.seen.length, 4);
    },
  );
});

test('4xx answers are not retried', async () => {
  await withProxy(
    (_req, res, forward) => forward(),
    async (p) => {
      await assert.rejects(client.getManifest(parseReference(`${p.host}/busybox:missing`)), /not found in registry/);
      assert.equal(p.seen.length, 1);
    },
  );
  await withProxy(
    (_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_INVALID', message: 'bad request' }] }));
    },
    async (p) => {
      await assert.rejects(client.getManifest(parseReference(`${p.host}/busybox`)), {
        message: `${p.host}/busybox:latest: registry ${p.host} returned 400 Bad Request: MANIFEST_INVALID: bad request`,
      });
      assert.equal(p.seen.length, 1);
    },
  );
});

test('a connection reset mid-blob resumes with a Range request and the result verifies', async () => {
  let cut = false;
  await withProxy(
    (req, _res, forward) => {
      if (isBlobGet(req.url) && !cut) {
        cut = true;
        forward({ cutAfterBytes: 100_000 });
        return;
      }
      forward();
    },
    async (p) => {
      const dest = join(work, 'resumed');
      const progress: number[] = [];
      await client.downloadBlob(parseReference(`${p.host}/busybox`), layer, dest, (n) => progress.push(n));
      assert.equal(sha256File(dest), layer.digest);
      const gets = p.seen.filter((s) => isBlobGet(s.url));
      assert.equal(gets.length, 2);
      assert.equal(gets[0]!.range, undefined);
      assert.equal(gets[1]!.range, 'bytes=100000-', 'the second request asks only for what is missing');
      assert.ok(progress.includes(100_000));
      assert.equal(progress.at(-1), layer.size);
    },
  );
});

test('a reset mid-blob against a server that ignores Range restarts from zero and verifies', async () => {
  let cuts = 0;
  await withProxy(
    (req, _res, forward) => {
      if (isBlobGet(req.url)) {
        // Cut twice, and never honour Range.
        if (cuts < 2) {
          cuts++;
          forward({ cutAfterBytes: 50_000 * cuts, stripRange: true });
          return;
        }
        forward({ stripRange: true });
        return;
      }
      forward();
    },
    async (p) => {
      const dest = join(work, 'restarted');
      await client.downloadBlob(parseReference(`${p.host}/busybox`), layer, dest);
      assert.equal(sha256File(dest), layer.digest);
      assert.equal(readFileSync(dest).length, layer.size);
      const gets = p.seen.filter((s) => isBlobGet(s.url));
      assert.equal(gets.length, 3);
      assert.equal(gets[1]!.range, 'bytes=50000-');
    },
  );
});

test('a blob whose connection is always cut fails with one line and leaves no file', async () => {
  await withProxy(
    (req, _res, forward) => forward(isBlobGet(req.url) ? { cutAfterBytes: 1000, stripRange: true } : {}),
    async (p) => {
      const dest = join(work, 'never');
      await assert.rejects(client.downloadBlob(parseReference(`${p.host}/busybox`), layer, dest), (err: Error & { userFacing?: boolean }) => {
        assert.equal(err.userFacing, true);
        assert.match(err.message, new RegExp(`^connection to registry ${p.host} lost: .* \\(after 4 attempts\\)$`));
        return true;
      });
      assert.equal(existsSync(dest), false);
      assert.equal(p.seen.filter((s) => isBlobGet(s.url)).length, 4);
    },
  );
});

test('a server that sends more bytes than the descriptor says is refused', async () => {
  const dest = join(work, 'short-descriptor');
  await assert.rejects(
    client.downloadBlob(parseReference(`${reg.host}/busybox`), { ...layer, size: layer.size - 10 }, dest),
    { message: `size mismatch for ${reg.host}/busybox@${layer.digest}: expected ${layer.size - 10} bytes, got ${layer.size}` },
  );
  assert.equal(existsSync(dest), false);
});

test('503 behind Bearer auth: the retried request reuses the cached token', async () => {
  let failedOnce = false;
  const front = await startBearerProxy(reg.url, {
    user: 'u',
    password: 'p',
    handler: (req, res, forward) => {
      if (!failedOnce && req.url?.includes('/manifests/')) {
        failedOnce = true;
        res.writeHead(503);
        res.end();
        return;
      }
      forward();
    },
  });
  const authed = new RegistryClient({ credentials: new CredentialStore({ [front.host]: { username: 'u', password: 'p' } }), retry: { baseDelayMs: 10 } });
  try {
    const r = await authed.resolveImage(parseReference(`${front.host}/busybox`), parsePlatform('linux/arm64'));
    assert.equal(r.manifestDigest, fx.arm64.manifestDigest);
    assert.equal(front.tokenRequests.length, 1);
  } finally {
    await authed.close();
    await front.stop();
  }
});

test('a chunked upload cut part-way resumes in the same session from what the registry holds', async () => {
  const blob = Buffer.alloc(20 * 1024 * 1024);
  for (let i = 0; i < blob.length; i += 4096) blob.writeUInt32BE((i * 2654435761) >>> 0, i);
  const digest = 'sha256:' + createHash('sha256').update(blob).digest('hex');
  let patches = 0;
  await withProxy(
    (req, res, forward) => {
      // The second chunk's connection is reset before the registry sees it.
      if (req.method === 'PATCH' && ++patches === 2) {
        req.resume();
        res.socket?.destroy();
        return;
      }
      forward({ keepHost: true });
    },
    async (p) => {
      const ref = parseReference(`${p.host}/uploads/resumed`);
      const r = await client.uploadBlob(ref, { mediaType: 'application/octet-stream', digest, size: blob.length }, { bytes: blob });
      assert.equal(r.how, 'uploaded');
      const methods = p.seen.filter((s) => s.url.includes('/blobs/uploads/')).map((s) => s.method);
      assert.deepEqual(methods, ['POST', 'PATCH', 'PATCH', 'GET', 'PATCH', 'PATCH', 'PUT'], 'one session: the first chunk is not sent again');
    },
  );
  // The registry checked the digest when the upload was closed; it now has the blob.
  assert.equal((await client.uploadBlob(parseReference(`${reg.host}/uploads/resumed`), { mediaType: 'application/octet-stream', digest, size: blob.length }, { bytes: blob })).how, 'skipped');
});
