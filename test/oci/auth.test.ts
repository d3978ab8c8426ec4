// Registry authentication: htpasswd Basic auth on the real registry, and the Bearer token flow through a
// token-demanding front, with credentials from a temporary DOCKER_CONFIG.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../base/oci/registry/client.js';
import { CredentialStore } from '../../base/oci/registry/credentials.js';
import { parseReference } from '../../base/oci/reference.js';
import { parsePlatform } from '../../base/oci/platform.js';
import { fixtureDigests } from './fixture-digests.js';
import { startBearerProxy, startProxy } from './proxy.js';

const fx = fixtureDigests();
const creds = { user: 'kiln', password: 's3cret-pw' };
let secured: TestRegistry; // htpasswd
let open: TestRegistry; // no auth, behind the Bearer front
let work: string;
const clients: RegistryClient[] = [];

before(async () => {
  [secured, open] = await Promise.all([startRegistry({ auth: creds }), startRegistry()]);
  pushBusybox(secured, 'busybox', 'latest', creds);
  pushBusybox(open, 'busybox', 'latest');
  work = mkdtempSync(join(tmpdir(), 'kiln-oci-auth-'));
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all([secured?.stop(), open?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

/** A DOCKER_CONFIG directory holding `auths`, and a client reading it through $DOCKER_CONFIG. */
function clientWithConfig(name: string, auths: Record<string, unknown>): { client: RegistryClient; configFile: string } {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths }));
  const saved = process.env.DOCKER_CONFIG;
  process.env.DOCKER_CONFIG = dir;
  try {
    const client = new RegistryClient({ retry: { baseDelayMs: 10 } });
    clients.push(client);
    return { client, configFile: join(dir, 'config.json') };
  } finally {
    if (saved === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = saved;
  }
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('htpasswd registry: credentials from DOCKER_CONFIG config.json are used', async () => {
  for (const [name, auths] of [
    ['auth-field', { [secured.host]: { auth: b64(`${creds.user}:${creds.password}`) } }],
    ['http-key', { [`http://${secured.host}`]: { username: creds.user, password: creds.password } }],
    ['https-key-with-path', { [`https://${secured.host}/v2/`]: { auth: b64(`${creds.user}:${creds.password}`) } }],
  ] as const) {
    const { client } = clientWithConfig(name, auths);
    const r = await client.resolveImage(parseReference(`${secured.host}/busybox`), parsePlatform('linux/arm64'));
    assert.equal(r.manifestDigest, fx.arm64.manifestDigest, name);
    const dest = join(work, `layer-${name}`);
    await client.downloadBlob(parseReference(`${secured.host}/busybox`), r.manifest.layers[0]!, dest);
    assert.equal('sha256:' + createHash('sha256').update(readFileSync(dest)).digest('hex'), r.manifest.layers[0]!.digest);
  }
});

test('htpasswd registry: no or wrong credentials fail with one clear line', async () => {
  const none = clientWithConfig('none', { 'other.example.com': { auth: b64('a:b') } });
  await assert.rejects(none.client.getManifest(parseReference(`${secured.host}/busybox`)), {
    name: 'UnauthorizedError',
    message: `${secured.host}/busybox:latest: unauthorized: authentication required (no credentials for ${secured.host} in ${none.configFile})`,
    userFacing: true,
  });
  const wrong = clientWithConfig('wrong', { [secured.host]: { auth: b64(`${creds.user}:nope`) } });
  await assert.rejects(wrong.client.resolveImage(parseReference(`${secured.host}/busybox`), parsePlatform('linux/amd64')), {
    name: 'UnauthorizedError',
    message: `${secured.host}/busybox:latest: unauthorized: authentication required (credentials for ${secured.host} from ${wrong.configFile} were rejected)`,
  });
});

test('Bearer token flow: token fetched with basic credentials, cached per scope, requests forwarded', async () => {
  const front = await startBearerProxy(open.url, creds);
  try {
    const { client } = clientWithConfig('bearer', { [front.host]: { auth: b64(`${creds.user}:${creds.password}`) } });
    const ref = parseReference(`${front.host}/busybox`);
    const r = await client.resolveImage(ref, parsePlatform('linux/amd64'));
    assert.equal(r.indexDigest, fx.indexDigest);
    assert.equal(r.manifestDigest, fx.amd64.manifestDigest);
    const dest = join(work, 'bearer-layer');
    await client.downloadBlob(ref, r.manifest.layers[0]!, dest);
    assert.equal('sha256:' + createHash('sha256').update(readFileSync(dest)).digest('hex'), r.manifest.layers[0]!.digest);
    await client.resolveImage(ref, parsePlatform('linux/arm64'));

    // One token for the repository's pull scope served every request after the first challenge.
    assert.equal(front.tokenRequests.length, 1);
    const t = front.tokenRequests[0]!;
    assert.equal(t.searchParams.get('service'), 'test');
    assert.deepEqual(t.searchParams.getAll('scope'), ['repository:busybox:pull']);
    const unauthorised = front.seen.filter((s) => s.url.startsWith('/v2/') && !s.authorization);
    assert.equal(unauthorised.length, 1, 'only the very first request goes out anonymous');
  } finally {
    await front.stop();
  }
});

test('Bearer token flow: parallel first requests share one token request', async () => {
  const front = await startBearerProxy(open.url, creds);
  try {
    const { client } = clientWithConfig('bearer-parallel', { [front.host]: { auth: b64(`${creds.user}:${creds.password}`) } });
    const ref = parseReference(`${front.host}/busybox`);
    const blobs = [fx.amd64.manifest.config, fx.arm64.manifest.config, ...fx.amd64.manifest.layers, ...fx.arm64.manifest.layers];
    const got = await Promise.all(blobs.map((d) => client.getBlob(ref, d.digest)));
    assert.deepEqual(got.map((b) => b.length), blobs.map((d) => d.size));
    assert.equal(front.tokenRequests.length, 1);
  } finally {
    await front.stop();
  }
});

test('Bearer token flow for a push: writes ask for a pull,push token; blobs (monolithic and chunked) and the manifest land', async () => {
  const front = await startBearerProxy(open.url, { ...creds, handler: (_req, _res, forward) => forward({ keepHost: true }) });
  try {
    const { client } = clientWithConfig('bearer-push', { [front.host]: { auth: b64(`${creds.user}:${creds.password}`) } });
    const ref = parseReference(`${front.host}/team/pushed:v1`);
    const small = Buffer.from('a small blob pushed with a bearer token\n');
    const large = Buffer.alloc(17 * 1024 * 1024, 'k');
    const desc = (b: Buffer) => ({ mediaType: 'application/octet-stream', digest: 'sha256:' + createHash('sha256').update(b).digest('hex'), size: b.length });
    assert.equal((await client.uploadBlob(ref, desc(small), { bytes: small })).how, 'uploaded');
    assert.equal((await client.uploadBlob(ref, desc(large), { bytes: large })).how, 'uploaded');
    const config = Buffer.from('{}');
    await client.uploadBlob(ref, { ...desc(config), mediaType: 'application/vnd.oci.empty.v1+json' }, { bytes: config });
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { ...desc(config), mediaType: 'application/vnd.oci.empty.v1+json' }, layers: [desc(small), desc(large)] }));
    await client.putManifest(ref, 'v1', manifest, 'application/vnd.oci.image.manifest.v1+json');
    const scopes = front.tokenRequests.map((u) => u.searchParams.getAll('scope').join(' '));
    assert.ok(scopes.includes('repository:team/pushed:pull,push'), scopes.join(' | '));
    // Every write went through the front with a push token (the front refuses others), and it is all there.
    assert.ok(front.seen.some((r) => r.method === 'PATCH'), 'the large blob went in chunks');
    const back = await (await fetch(`${open.url}/v2/team/pushed/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).text();
    assert.equal(back, manifest.toString());
  } finally {
    await front.stop();
  }
});

test('Bearer token flow: missing or wrong credentials are refused by the token server', async () => {
  const front = await startBearerProxy(open.url, creds);
  try {
    const none = clientWithConfig('bearer-none', {});
    await assert.rejects(none.client.getManifest(parseReference(`${front.host}/busybox`)), {
      message: `${front.host}/busybox:latest: unauthorized: incorrect username or password (no credentials for ${front.host} in ${none.configFile})`,
    });
    const wrong = clientWithConfig('bearer-wrong', { [front.host]: { username: creds.user, password: 'bad' } });
    await assert.rejects(wrong.client.getManifest(parseReference(`${front.host}/busybox`)), {
      name: 'UnauthorizedError',
      message: `${front.host}/busybox:latest: unauthorized: incorrect username or password (credentials for ${front.host} from ${wrong.configFile} were rejected)`,
    });
  } finally {
    await front.stop();
  }
});

test('a cross-origin blob redirect is followed without the Authorization header', async () => {
  // "Storage" on another origin serves the blob straight from the registry and records what it was sent.
  const storage = await startProxy(open.url, (_req, _res, forward) => forward());
  const front = await startBearerProxy(open.url, {
    ...creds,
    handler: (req, res, forward) => {
      if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '')) {
        res.writeHead(307, { location: `${storage.url}${req.url}` });
        res.end();
        return;
      }
      forward();
    },
  });
  try {
    const { client } = clientWithConfig('redirect', { [front.host]: { auth: b64(`${creds.user}:${creds.password}`) } });
    const ref = parseReference(`${front.host}/busybox`);
    const r = await client.resolveImage(ref, parsePlatform('linux/arm64'));
    const dest = join(work, 'redirected-layer');
    await client.downloadBlob(ref, r.manifest.layers[0]!, dest);
    assert.equal('sha256:' + createHash('sha256').update(readFileSync(dest)).digest('hex'), r.manifest.layers[0]!.digest);
    const blobGets = storage.seen.filter((s) => s.url.includes('/blobs/'));
    assert.equal(blobGets.length, 2, 'config and layer came from storage');
    assert.ok(blobGets.every((s) => s.authorization === undefined), 'no Authorization leaked to the other origin');
    assert.ok(front.seen.some((s) => s.url.includes('/blobs/') && s.authorization?.startsWith('Bearer ')), 'the registry itself got the token');
  } finally {
    await front.stop();
    await storage.stop();
  }
});

test('credential store lookups: Docker Hub keys and spellings of host keys', () => {
  const c = new CredentialStore({
    'https://index.docker.io/v1/': { username: 'hub', password: '1' },
    'https://registry.example.com/v1/': { username: 'ex', password: '2' },
    'localhost:5000': { username: 'lo', password: '3' },
    'http://127.0.0.1:5001': { username: 'ip', password: '4' },
  });
  assert.equal(c.get('docker.io')?.username, 'hub');
  assert.equal(c.get('registry.example.com')?.username, 'ex');
  assert.equal(c.get('localhost:5000')?.username, 'lo');
  assert.equal(c.get('127.0.0.1:5001')?.username, 'ip');
  assert.equal(c.get('127.0.0.1:5000'), undefined);
  assert.equal(c.get('example.com'), undefined);
  assert.equal(new CredentialStore({ 'docker.io': { username: 'short', password: 'x' } }).get('docker.io')?.username, 'short');

  const dir = join(work, 'malformed');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), '{"auths": {');
  assert.throws(() => CredentialStore.fromDockerConfig({ configDir: dir }), (err: Error & { userFacing?: boolean }) =>
    err.userFacing === true && err.message.startsWith(`malformed ${join(dir, 'config.json')}`));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { 'h:1': { auth: b64('no-colon') } } }));
  assert.throws(() => CredentialStore.fromDockerConfig({ configDir: dir }), /auth is not base64 of user:password/);
  const empty = CredentialStore.fromDockerConfig({ configDir: join(work, 'does-not-exist') });
  assert.equal(empty.get('docker.io'), undefined);
});
