// `docker buildx build --cache-to/--cache-from type=local` on kiln (docker-sid's buildx 0.29, remote driver):
// the cache directory is the client's, reached through the content store buildx serves on its session.
// A cache exported by one kiln server lets a fresh one run no step; what lands in the directory is an OCI
// layout whose blobs match their digests; a tampered cache is refused, not trusted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeContext } from '../helpers/build.js';
import { buildx, buildxSuite, DOCKER } from './buildx-harness.js';
import { serve } from '../daemon/serve-helpers.js';

const s = buildxSuite();
const skip = s.peer.ok ? false : s.peer.reason;

/** A fresh kiln server (its own empty state) with a buildx builder on it; `run` builds on it. */
async function freshBuilder(name: string) {
  const dir = join(s.dir, name);
  mkdirSync(dir);
  const sock = join(dir, 'bk.sock');
  const server = await serve(['--addr', `unix://${join(dir, 'k.sock')}`, '--buildkit-addr', `unix://${sock}`]);
  const builder = `kiln-test-${randomBytes(4).toString('hex')}`;
  execFileSync(DOCKER, ['buildx', 'create', '--driver', 'remote', '--name', builder, `unix://${sock}`], { stdio: 'ignore' });
  return {
    run: (args: string[]) => buildx(['build', '--builder', builder, '--progress', 'plain', ...args]),
    async stop() {
      spawnSync(DOCKER, ['buildx', 'rm', '--force', builder], { stdio: 'ignore', timeout: 60_000 });
      await server.stop();
      rmSync(server.root, { recursive: true, force: true });
    },
  };
}

test('--cache-to type=local,mode=max writes an OCI layout in the client dir; a fresh kiln server with --cache-from type=local runs no step', { skip }, async () => {
  const marker = randomBytes(4).toString('hex');
  const ctx = writeContext({
    Dockerfile: `FROM ${s.base} AS a\nRUN echo step-a-${marker} && echo a-${marker} > /a\nFROM ${s.base}\nCOPY --from=a /a /a\nRUN echo step-b-${marker} && echo b > /b\n`,
  });
  const cacheDir = join(s.dir, 'cache-local');
  const first = await buildx(['build', '--builder', s.builder, '--progress', 'plain', '--cache-to', `type=local,dest=${cacheDir},mode=max`, '-o', 'type=cacheonly', ctx]);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, new RegExp(`#\\d+ [0-9.]+ step-b-${marker}`));
  assert.match(first.stderr, /exporting cache to client directory .*\n(#\d+ [0-9.]+ .*\n)*#\d+ DONE/);

  // The client's dir: an OCI layout, index.json naming the cache as "latest", every blob what its name says.
  assert.deepEqual(JSON.parse(readFileSync(join(cacheDir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const index = JSON.parse(readFileSync(join(cacheDir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const latest = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'latest');
  assert.ok(latest, JSON.stringify(index));
  const blobs = readdirSync(join(cacheDir, 'blobs', 'sha256'));
  assert.ok(blobs.includes(latest.digest.slice('sha256:'.length)));
  assert.ok(blobs.length >= 5, `config, manifests and the layers of both RUN steps: ${blobs.length} blobs`);
  for (const hex of blobs) assert.equal(createHash('sha256').update(readFileSync(join(cacheDir, 'blobs', 'sha256', hex))).digest('hex'), hex);

  const fresh = await freshBuilder('fresh');
  try {
    const out = join(s.dir, 'out-local-cache');
    const second = await fresh.run(['--cache-from', `type=local,src=${cacheDir}`, '-o', `type=local,dest=${out}`, ctx]);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, new RegExp(`RUN echo step-a-${marker} && echo a-${marker} > /a\\n#\\d+ CACHED`));
    assert.match(second.stderr, new RegExp(`RUN echo step-b-${marker} && echo b > /b\\n#\\d+ CACHED`));
    assert.doesNotMatch(second.stderr, new RegExp(`#\\d+ [0-9.]+ step-[ab]-${marker}`), 'a RUN step ran on the fresh server');
    assert.equal(readFileSync(join(out, 'a'), 'utf8'), `a-${marker}\n`);
    assert.equal(readFileSync(join(out, 'b'), 'utf8'), 'b\n');
  } finally {
    await fresh.stop();
  }
});

test('--cache-from type=local with a tampered blob: the cache is not used, the steps run, the build succeeds', { skip }, async () => {
  const marker = randomBytes(4).toString('hex');
  const ctx = writeContext({ Dockerfile: `FROM ${s.base}\nRUN echo tamper-${marker} && echo t-${marker} > /t\n` });
  const cacheDir = join(s.dir, 'cache-tamper');
  const first = await buildx(['build', '--builder', s.builder, '--progress', 'plain', '--cache-to', `type=local,dest=${cacheDir},mode=max`, '-o', 'type=cacheonly', ctx]);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /exporting cache to client directory .*\n#\d+ [0-9.]+ \d+ blobs, \d+ bytes sent\n#\d+ DONE/, first.stderr);
  // Every blob but the index and manifests (JSON documents) gets other bytes under the same name.
  const bad = join(s.dir, 'cache-tampered');
  cpSync(cacheDir, bad, { recursive: true });
  let tampered = 0;
  for (const hex of readdirSync(join(bad, 'blobs', 'sha256'))) {
    const p = join(bad, 'blobs', 'sha256', hex);
    const data = readFileSync(p);
    if (data[0] === 0x7b) continue; // '{': a manifest, index or config
    writeFileSync(p, Buffer.concat([data, Buffer.from('tampered')]));
    tampered++;
  }
  assert.ok(tampered >= 1);
  const fresh = await freshBuilder('tamper');
  try {
    const out = join(s.dir, 'out-tampered');
    const r = await fresh.run(['--cache-from', `type=local,src=${bad}`, '-o', `type=local,dest=${out}`, ctx]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /cannot import cache: .*sha256:[a-f0-9]{64}/, r.stderr);
    assert.match(r.stderr, new RegExp(`#\\d+ [0-9.]+ tamper-${marker}`), `the RUN step ran:\n${r.stderr}`);
    assert.equal(readFileSync(join(out, 't'), 'utf8'), `t-${marker}\n`);
  } finally {
    await fresh.stop();
  }
});
