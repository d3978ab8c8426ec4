// Fetches a tenant or a Dockerfile controls: `ADD http://…` on kiln serve cannot reach the builder's own
// loopback addresses (by IP, by a name that resolves there, or through a redirect hop) unless the
// operator allows it; a server that trickles or stalls fails the fetch after the configured limits; a
// registry stand-in that sends a blob larger than its descriptor is cut off. Servers are on 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { writeContext } from '../helpers/build.js';
import { kiln, kilnAsync, tempRoot } from '../helpers/kiln.js';
import { serve, clientEnv } from '../daemon/serve-helpers.js';
import { builderLocalReason } from '../../base/oci/registry/address-guard.js';
import { hostPlatform, normalizePlatform } from '../../base/oci/platform.js';

let work: string;
let root: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'kiln-http-fetch-'));
  root = tempRoot();
});
after(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

/** An HTTP server on 127.0.0.1 with its request log. */
async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; hits: string[]; sent: () => number; close(): Promise<void> }> {
  const hits: string[] = [];
  let sent = 0;
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const write = res.write.bind(res);
    res.write = ((chunk: Buffer | string, ...rest: never[]) => {
      sent += Buffer.byteLength(chunk);
      return write(chunk, ...rest);
    }) as typeof res.write;
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    sent: () => sent,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const lastLine = (s: string) => s.trim().split('\n').at(-1) ?? '';

test('the builder-local address ranges: loopback, link-local, unspecified, IPv4-mapped forms', () => {
  for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '169.254.169.254', 'fe80::1', 'febf::1', '0.0.0.0', '::', '::ffff:127.0.0.1', '::ffff:7f00:1', '[::1]', '::ffff:169.254.169.254']) {
    assert.ok(builderLocalReason(ip), ip);
  }
  for (const ip of ['93.184.216.34', '2606:2800:220:1::1', 'fec0::1', '1.2.3.4', '::ffff:1.2.3.4']) assert.equal(builderLocalReason(ip), undefined, ip);
});

test('kiln serve: ADD http:// to the builder\'s loopback is refused (IP, name, redirect hop); --allow-local-fetch allows it', async () => {
  const secret = await httpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('builder-internal-secret\n');
  });
  const redirector = await httpServer((req, res) => {
    res.writeHead(302, { location: `http://127.0.0.1:${secret.port}/secret.txt` });
    res.end();
  });
  const sock = join(work, 'k.sock');
  const deny = await serve(['--addr', `unix://${sock}`, '--allow-local-fetch-origin', `127.0.0.1:${redirector.port}`]);
  const env = clientEnv();
  try {
    assert.equal(kiln(root, ['builder', 'create', 'shared', '--addr', `unix://${sock}`, '--use'], { env }).status, 0);
    for (const [url, shown] of [
      [`http://127.0.0.1:${secret.port}/secret.txt`, '127.0.0.1'],
      [`http://localhost:${secret.port}/secret.txt`, 'localhost (127.0.0.1|::1)'],
      [`http://0.0.0.0:${secret.port}/secret.txt`, '0.0.0.0'],
      [`http://[::ffff:127.0.0.1]:${secret.port}/secret.txt`, '::ffff:7f00:1'],
      // The allowed origin redirects to a refused one: the hop is checked.
      [`http://127.0.0.1:${redirector.port}/go`, '127.0.0.1'],
    ]) {
      const ctx = writeContext({ Dockerfile: `FROM scratch\nADD ${url} /secret.txt\n` });
      const out = join(work, `out-${secret.hits.length}-${Math.random().toString(16).slice(2)}`);
      const r = await kilnAsync(root, ['build', '--progress', 'plain', '-o', `type=local,dest=${out}`, ctx], { env }).done;
      assert.equal(r.status, 1, `${url}: ${r.stderr}`);
      assert.match(lastLine(r.stderr), new RegExp(`refusing to connect to ${shown.replace(/\./g, '\\.').replace(/ \((.*)\)$/, ' \\(($1)\\)')}: (a loopback address of the builder|the unspecified address, this host) \\(kiln serve --allow-local-fetch allows it\\)$`), url);
      assert.ok(!existsSync(join(out, 'secret.txt')));
    }
    assert.deepEqual(secret.hits, [], 'the builder never asked the local server');
    assert.equal(redirector.hits.length, 1, 'the allowed origin was asked, its redirect refused');
  } finally {
    await deny.stop();
  }
  const allow = await serve(['--addr', `unix://${sock}`, '--allow-local-fetch']);
  try {
    const ctx = writeContext({ Dockerfile: `FROM scratch\nADD http://localhost:${secret.port}/secret.txt /secret.txt\n` });
    const out = join(work, 'out-allowed');
    const r = await kilnAsync(root, ['build', '--progress', 'plain', '-o', `type=local,dest=${out}`, ctx], { env }).done;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(out, 'secret.txt'), 'utf8'), 'builder-internal-secret\n');
  } finally {
    await allow.stop();
    await secret.close();
    await redirector.close();
  }
});

test('ADD http://: a server that trickles below the minimum rate, or stalls, fails the build in seconds', { timeout: 60_000 }, async () => {
  const trickle = await httpServer((req, res) => {
    res.writeHead(200, { 'content-length': '100000' });
    if (req.url === '/stall') return res.write('x');
    const timer = setInterval(() => (res.writableEnded || res.destroyed ? clearInterval(timer) : res.write('x')), 50);
    res.on('close', () => clearInterval(timer));
  });
  const limits = { KILN_FETCH_MIN_RATE: '1000', KILN_FETCH_MIN_RATE_WINDOW_MS: '1000', KILN_FETCH_IDLE_TIMEOUT_MS: '1500' };
  try {
    // Local kiln build (the user's own machine): loopback is allowed, the limits still hold.
    const slow = writeContext({ Dockerfile: `FROM scratch\nADD http://127.0.0.1:${trickle.port}/slow /slow\n` });
    const t0 = Date.now();
    const r = await kilnAsync(tempRoot(), ['build', '--progress', 'plain', '-o', `type=local,dest=${join(work, 'slow-out')}`, slow], { env: limits }).done;
    assert.equal(r.status, 1, r.stderr);
    assert.match(lastLine(r.stderr), new RegExp(`http://127\\.0\\.0\\.1:${trickle.port}/slow: transfer slower than 1000 bytes/s \\(\\d+ bytes in 1\\.\\ds; KILN_FETCH_MIN_RATE sets the minimum\\)$`));
    assert.ok(Date.now() - t0 < 20_000);

    const stall = writeContext({ Dockerfile: `FROM scratch\nADD http://127.0.0.1:${trickle.port}/stall /stall\n` });
    const s = await kilnAsync(tempRoot(), ['build', '--progress', 'plain', '-o', `type=local,dest=${join(work, 'stall-out')}`, stall], { env: limits }).done;
    assert.equal(s.status, 1, s.stderr);
    assert.match(lastLine(s.stderr), new RegExp(`failed to load http://127\\.0\\.0\\.1:${trickle.port}/stall: .*timeout`, 'i'));
  } finally {
    await trickle.close();
  }
});

/** A registry stand-in serving one image whose config or layer misbehaves. */
async function standInRegistry(mode: 'endless-config' | 'long-layer' | 'slow-layer') {
  const layer = Buffer.from('not really a tar, never unpacked');
  const layerDigest = `sha256:${createHash('sha256').update(layer).digest('hex')}`;
  const p = normalizePlatform(hostPlatform());
  const config = Buffer.from(JSON.stringify({ architecture: p.architecture, os: p.os, rootfs: { type: 'layers', diff_ids: [layerDigest] }, config: {} }));
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const srv = await httpServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2') return res.end('{}');
    if (url.startsWith('/v2/evil/manifests/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': `sha256:${createHash('sha256').update(manifest).digest('hex')}` });
      return res.end(req.method === 'HEAD' ? undefined : manifest);
    }
    if (url === `/v2/evil/blobs/${configDigest}`) {
      if (mode !== 'endless-config') return res.end(config);
      // The config, then more and more: kiln must stop reading at the descriptor's size.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(config);
      const chunk = Buffer.alloc(1 << 20, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) if (srv.sent() > 200 << 20) return res.end();
        if (!res.destroyed) res.once('drain', pump);
      };
      return pump();
    }
    if (url === `/v2/evil/blobs/${layerDigest}`) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      if (mode === 'long-layer') return res.end(Buffer.concat([layer, Buffer.alloc(1 << 20, 0x41)]));
      const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write('x')), 50);
      return res.on('close', () => clearInterval(timer));
    }
    res.writeHead(404);
    res.end();
  });
  return srv;
}

test('registry stand-in: a config blob larger than its descriptor is cut off at its size; a longer layer and a trickling one fail', { timeout: 120_000 }, async () => {
  const endless = await standInRegistry('endless-config');
  try {
    const ctx = writeContext({ Dockerfile: `FROM 127.0.0.1:${endless.port}/evil\n` });
    const r = await kilnAsync(tempRoot(), ['build', '--progress', 'plain', ctx]).done;
    assert.equal(r.status, 1, r.stderr);
    assert.match(lastLine(r.stderr), new RegExp(`127\\.0\\.0\\.1:${endless.port}/evil@sha256:[0-9a-f]{64}: blob larger than its descriptor's size \\(\\d+ bytes\\)$`));
    assert.ok(endless.sent() < 32 << 20, `the client read on after the descriptor's size: ${endless.sent()} bytes sent`);
  } finally {
    await endless.close();
  }
  const long = await standInRegistry('long-layer');
  try {
    const ctx = writeContext({ Dockerfile: `FROM 127.0.0.1:${long.port}/evil\n` });
    const r = await kilnAsync(tempRoot(), ['build', '--progress', 'plain', '-o', `type=tar,dest=${join(work, 'long.tar')}`, ctx]).done;
    assert.equal(r.status, 1, r.stderr);
    assert.match(lastLine(r.stderr), /size mismatch for 127\.0\.0\.1:\d+\/evil@sha256:[0-9a-f]{64}: expected \d+ bytes, got \d+$/);
  } finally {
    await long.close();
  }
  const slow = await standInRegistry('slow-layer');
  try {
    const ctx = writeContext({ Dockerfile: `FROM 127.0.0.1:${slow.port}/evil\n` });
    const env = { KILN_FETCH_MIN_RATE: '1000', KILN_FETCH_MIN_RATE_WINDOW_MS: '1000' };
    const r = await kilnAsync(tempRoot(), ['build', '--progress', 'plain', '-o', `type=tar,dest=${join(work, 'slow.tar')}`, ctx], { env }).done;
    assert.equal(r.status, 1, r.stderr);
    assert.match(lastLine(r.stderr), /evil@sha256:[0-9a-f]{64}: transfer slower than 1000 bytes\/s/);
  } finally {
    await slow.close();
  }
});

