// kiln serve: registry credentials belong to the tenant. A private image on an htpasswd registry, the
// operator's DOCKER_CONFIG able to read and write it, two tenants (tokens): a tenant without credentials
// can neither pull it nor overwrite its tag; its own credentials (sent by its client from its own
// DOCKER_CONFIG) or the operator's store for that tenant work; the operator's own config serves tenants
// only with --operator-credentials.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushBusybox, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { writeContext } from '../helpers/build.js';
import { kiln, tempRoot } from '../helpers/kiln.js';
import { serve, clientEnv, kilnClient, type Served } from '../daemon/serve-helpers.js';

const owner = { user: 'team-a', password: 'team-a-secret-pw' };
let reg: TestRegistry;
let work: string;
let root: string;
let privateRef: string;
let privateDigest: string;

/** A docker config dir with credentials for the test registry (or none). */
function dockerConfig(name: string, creds?: { user: string; password: string }): string {
  const dir = join(work, 'docker', name);
  mkdirSync(dir, { recursive: true });
  const auths = creds ? { [reg.host]: { auth: Buffer.from(`${creds.user}:${creds.password}`).toString('base64') } } : {};
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths }));
  return dir;
}

/** The digest the registry holds for a tag (read with the owner's credentials). */
async function tagDigest(ref: string): Promise<string> {
  const [, repo, tag] = /^[^/]+\/(.+):([^:]+)$/.exec(ref)!;
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { authorization: `Basic ${Buffer.from(`${owner.user}:${owner.password}`).toString('base64')}`, accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(res.status, 200);
  return res.headers.get('docker-content-digest')!;
}

async function tagStatus(ref: string): Promise<number> {
  const [, repo, tag] = /^[^/]+\/(.+):([^:]+)$/.exec(ref)!;
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { authorization: `Basic ${Buffer.from(`${owner.user}:${owner.password}`).toString('base64')}`, accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' },
  });
  return res.status;
}

before(async () => {
  reg = await startRegistry({ auth: owner });
  privateRef = pushBusybox(reg, 'team-a/private', 'latest', owner);
  work = mkdtempSync(join(tmpdir(), 'kiln-tenant-creds-'));
  root = tempRoot();
  privateDigest = await tagDigest(privateRef);
});
after(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
  rmSync(root, { recursive: true, force: true });
});

/** Starts kiln serve whose operator DOCKER_CONFIG can read and write the private image; tenants alice and bob. */
async function serveWithOperatorCreds(name: string, extra: string[]): Promise<{ s: Served; client: (tenant: string, dockerConfigDir: string) => NodeJS.ProcessEnv }> {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokens'), 'alice:alice-token-123\nbob:bob-token-4567\n');
  const sock = join(dir, 'k.sock');
  const s = await serve(['--addr', `unix://${sock}`, '--token-file', join(dir, 'tokens'), ...extra], { env: { DOCKER_CONFIG: dockerConfig('operator', owner) } });
  const client = (tenant: string, dockerConfigDir: string) => {
    const env = clientEnv({ DOCKER_CONFIG: dockerConfigDir });
    writeFileSync(join(dir, `${tenant}.token`), `${tenant}-token-${tenant === 'alice' ? '123' : '4567'}\n`);
    const r = kiln(root, ['builder', 'create', 'shared', '--addr', `unix://${sock}`, '--token-file', join(dir, `${tenant}.token`), '--use'], { env });
    assert.equal(r.status, 0, r.stderr);
    return env;
  };
  return { s, client };
}

const lastLine = (s: string) => s.trim().split('\n').at(-1) ?? '';

test('a tenant without credentials cannot pull or overwrite another team\'s private image, though the operator\'s DOCKER_CONFIG could', async () => {
  const { s, client } = await serveWithOperatorCreds('default', []);
  try {
    const bobNone = client('bob', dockerConfig('bob-none'));
    const pull = writeContext({ Dockerfile: `FROM ${privateRef}\nRUN echo pulled-\$((6*7))\n` });
    const denied = kilnClient(root, ['build', '--progress', 'plain', pull], bobNone);
    assert.equal(denied.status, 1, denied.stderr);
    assert.match(lastLine(denied.stderr), /^kiln: Dockerfile:1: /);
    assert.ok(lastLine(denied.stderr).endsWith(`${privateRef}: unauthorized: authentication required (no credentials for ${reg.host} in the client's docker config)`), denied.stderr);
    assert.doesNotMatch(denied.stderr, /pulled-42/);

    // With its own credentials (its client's DOCKER_CONFIG), bob pulls.
    const bobOwn = client('bob', dockerConfig('bob-own', owner));
    const ok = kilnClient(root, ['build', '--progress', 'plain', pull], bobOwn);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /pulled-42/);
    // Wrong credentials are reported as rejected, naming where they came from.
    const bobWrong = client('bob', dockerConfig('bob-wrong', { user: owner.user, password: 'not-the-password' }));
    const wrong = kilnClient(root, ['build', '--progress', 'plain', '--pull', '--no-cache', pull], bobWrong);
    assert.equal(wrong.status, 1, wrong.stderr);
    assert.match(lastLine(wrong.stderr), /unauthorized: .*\(credentials for \S+ from the client's docker config were rejected\)$/);
    // A push by bob with no credentials fails with one line, and the tag keeps team A's image.
    const overwrite = writeContext({ Dockerfile: 'FROM scratch\nCOPY evil /evil\n', evil: 'bob was here\n' });
    const push = kilnClient(root, ['build', '--progress', 'plain', '-t', privateRef, '--push', overwrite], bobNone);
    assert.equal(push.status, 1, push.stderr);
    assert.match(lastLine(push.stderr), new RegExp(`^kiln: .*${reg.host.replace(/\./g, '\\.')}/team-a/private.*: unauthorized: authentication required \\(no credentials for ${reg.host.replace(/\./g, '\\.')} in the client's docker config\\)$`));
    assert.equal(await tagDigest(privateRef), privateDigest, 'the tag still names team A\'s image');
    // A cache export into team A's repository is refused the same way.
    const cacheRef = `${reg.host}/team-a/cache:latest`;
    const cache = kilnClient(root, ['build', '--progress', 'plain', '--cache-to', `type=registry,ref=${cacheRef},mode=max,ignore-error=false`, overwrite], bobNone);
    assert.equal(cache.status, 1, cache.stderr);
    assert.match(lastLine(cache.stderr), new RegExp(`^kiln: cache export to ${cacheRef.replace(/\./g, '\\.')} failed: .*unauthorized: authentication required \\(no credentials for \\S+ in the client's docker config\\)$`));
    assert.equal((await tagStatus(cacheRef)), 404, 'no cache was written to team A\'s registry');

  } finally {
    await s.stop();
  }
});

test('--tenant-credentials DIR serves DIR/TENANT/config.json to that tenant only; --operator-credentials opts every tenant into the operator\'s', async () => {
  const store = join(work, 'store');
  mkdirSync(join(store, 'alice'), { recursive: true });
  writeFileSync(join(store, 'alice', 'config.json'), JSON.stringify({ auths: { [reg.host]: { username: owner.user, password: owner.password } } }));
  const pull = writeContext({ Dockerfile: `FROM ${privateRef}\nRUN echo stored-\$((6*7))\n` });
  const { s, client } = await serveWithOperatorCreds('store', ['--tenant-credentials', store]);
  try {
    const alice = kilnClient(root, ['build', '--progress', 'plain', pull], client('alice', dockerConfig('alice-none')));
    assert.equal(alice.status, 0, alice.stderr);
    assert.match(alice.stderr, /stored-42/);
    const bob = kilnClient(root, ['build', '--progress', 'plain', pull], client('bob', dockerConfig('bob-none2')));
    assert.equal(bob.status, 1, bob.stderr);
    assert.ok(
      lastLine(bob.stderr).endsWith(`${privateRef}: unauthorized: authentication required (no credentials for ${reg.host} in the client's docker config or the builder's store for tenant bob)`),
      bob.stderr,
    );
    assert.doesNotMatch(bob.stderr, new RegExp(store.replace(/[/.]/g, '\\$&')), 'no builder path in the error');
  } finally {
    await s.stop();
  }
  const opted = await serveWithOperatorCreds('operator', ['--operator-credentials']);
  try {
    const bob = kilnClient(root, ['build', '--progress', 'plain', pull], opted.client('bob', dockerConfig('bob-none3')));
    assert.equal(bob.status, 0, bob.stderr);
  } finally {
    await opted.s.stop();
  }
});
