// The GC limit is a hard cap: the state dir never takes more than KILN_GC_KEEP_STORAGE plus one build's
// own new data, sampled every 100 ms while builds run, also with concurrent builds on `kiln serve`
// (GC runs while they run and leaves what they use). BuildKit's reserved/min-free knobs keep their meaning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kilnAsync, tempRoot } from '../helpers/kiln.js';
import { serve, clientEnv, kilnClientAsync } from '../daemon/serve-helpers.js';
import { allowedBytes, gcPolicyFromEnv } from '../../cache/gc-policy.js';

const MiB = 1024 * 1024;

/** Bytes under `dir` as du --apparent-size counts them (each inode once), skipping `skip` names at the top. */
function treeBytes(dir: string, skip: string[] = []): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (p: string, top: boolean) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return; // removed while we walk (GC)
    }
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    total += st.size;
    if (!st.isDirectory()) return;
    let names: string[] = [];
    try {
      names = readdirSync(p);
    } catch {
      return;
    }
    for (const n of names) if (!(top && skip.includes(n))) walk(join(p, n), false);
  };
  walk(dir, true);
  return total;
}

/** Samples `measure()` every 100 ms until stopped; returns the maximum seen. */
function sampler(measure: () => number): { stop(): number } {
  let max = measure();
  const timer = setInterval(() => (max = Math.max(max, measure())), 100);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, measure());
    },
  };
}

/** A context whose one big file is new content each time (the COPY makes a new layer of `size` bytes). */
function bigContext(parent: string, i: number, size: number, data: Buffer): { dir: string; sha: string } {
  const dir = join(parent, `ctx-${i}`);
  mkdirSync(dir, { recursive: true });
  const content = Buffer.concat([Buffer.from(`build ${i} `.padEnd(32, '.')), data.subarray(0, size - 32)]);
  writeFileSync(join(dir, 'big'), content);
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY big /big\n');
  return { dir, sha: createHash('sha256').update(content).digest('hex') };
}

test('30 builds of changing 50 MB contexts under a 200 MB cap: the state never exceeds cap + one build', { timeout: 900_000 }, async () => {
  const root = tempRoot();
  const work = tempRoot('kiln-cap-');
  const data = randomBytes(50 * MiB);
  const cap = 200 * MiB;
  // One build's own new data: its 50 MB layer, plus its db entries and history record.
  const oneBuild = 50 * MiB + 1 * MiB;
  try {
    const s = sampler(() => treeBytes(root));
    for (let i = 0; i < 30; i++) {
      const { dir } = bigContext(work, i, 50 * MiB, data);
      const r = await kilnAsync(root, ['build', '--progress', 'plain', dir], { env: { KILN_GC_KEEP_STORAGE: '200MB' } }).done;
      assert.equal(r.status, 0, r.stderr);
      rmSync(dir, { recursive: true, force: true });
    }
    const max = s.stop();
    const end = treeBytes(root);
    console.log(`disk cap (sequential): cap ${cap / MiB} MiB, max state size ${(max / MiB).toFixed(1)} MiB, at the end ${(end / MiB).toFixed(1)} MiB`);
    assert.ok(max > 3 * 50 * MiB, `the cache filled up to the cap (max ${max})`);
    assert.ok(max <= cap + oneBuild, `max ${(max / MiB).toFixed(1)} MiB > cap + one build ${((cap + oneBuild) / MiB).toFixed(1)} MiB`);
    assert.ok(end <= cap, `after the last build GC brought the state under the cap: ${(end / MiB).toFixed(1)} MiB`);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});

test('kiln serve --gc-keep-storage: 3 concurrent builds are correct and the cap holds while GC runs during them', { timeout: 900_000 }, async () => {
  const work = tempRoot('kiln-cap-');
  const size = 20 * MiB;
  const cap = 200 * MiB;
  // One build's own new data: its layer and, for the local export, the layer's blob (random data does
  // not compress), plus its db entries and history record.
  const oneBuild = 2 * size + MiB;
  const data = randomBytes(size);
  const server = await serve(['--addr', `unix://${join(work, 'k.sock')}`, '--gc-keep-storage', '200MB']);
  const env = clientEnv();
  try {
    const build = async (i: number) => {
      const { dir, sha } = bigContext(work, i, size, data);
      const out = join(work, `out-${i}`);
      const r = await kilnClientAsync(tempRoot(), ['build', '--progress', 'plain', '--builder', `unix://${join(work, 'k.sock')}`, '-o', `type=local,dest=${out}`, dir], env).done;
      assert.equal(r.status, 0, r.stderr);
      assert.equal(createHash('sha256').update(readFileSync(join(out, 'big'))).digest('hex'), sha, `build ${i} exported its own file`);
    };
    // The cache state of the one tenant; synced context files (sync/) have their own limit (--tenant-disk).
    const tenantState = () => {
      const tenants = join(server.root, 'tenants');
      let n = 0;
      try {
        for (const t of readdirSync(tenants)) n += treeBytes(join(tenants, t), ['sync']);
      } catch {
        // no tenant yet
      }
      return n;
    };
    const s = sampler(tenantState);
    // Fill the cache up to the cap, then three builds at once: GC must make room while they run.
    for (let i = 0; i < 6; i++) await build(i);
    await Promise.all([6, 7, 8].map((i) => build(i)));
    const max = s.stop();
    console.log(`disk cap (kiln serve, 3 concurrent builds): cap ${cap / MiB} MiB, max state size ${(max / MiB).toFixed(1)} MiB`);
    assert.ok(max > cap - oneBuild, `the cache filled up to the cap (max ${max})`);
    assert.ok(max <= cap + oneBuild, `max ${(max / MiB).toFixed(1)} MiB > cap + one build ${((cap + oneBuild) / MiB).toFixed(1)} MiB`);
    assert.ok(tenantState() <= cap, 'under the cap once the builds are done');
  } finally {
    await server.stop();
    rmSync(server.root, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
});

test('GC knobs keep BuildKit meaning: max used space, min free space, reserved space; bad values are one clear line', () => {
  const disk = { total: 1000 * MiB, free: 300 * MiB };
  const policy = (env: NodeJS.ProcessEnv) => gcPolicyFromEnv(env);
  // maxUsedSpace (and its older name keepStorage) caps the cache.
  assert.equal(allowedBytes(policy({ KILN_GC_MAX_USED_SPACE: '200MB' }), 500 * MiB, disk), 200 * MiB);
  assert.equal(allowedBytes(policy({ KILN_GC_KEEP_STORAGE: '200MB' }), 500 * MiB, disk), 200 * MiB);
  // minFreeSpace: 400 MB free wanted, 300 free: 100 MB of the 500 MB cache must go.
  assert.equal(allowedBytes(policy({ KILN_GC_MIN_FREE_SPACE: '400MB' }), 500 * MiB, disk), 400 * MiB);
  assert.equal(allowedBytes(policy({ KILN_GC_MIN_FREE_SPACE: '40%' }), 500 * MiB, disk), 400 * MiB);
  // reservedSpace: never below it, whatever the others say.
  assert.equal(allowedBytes(policy({ KILN_GC_MAX_USED_SPACE: '100MB', KILN_GC_RESERVED_SPACE: '250MB' }), 500 * MiB, disk), 250 * MiB);
  assert.equal(allowedBytes(policy({ KILN_GC_MIN_FREE_SPACE: '900MB', KILN_GC_RESERVED_SPACE: '10%' }), 500 * MiB, disk), 100 * MiB);
  // The default: 20 GB; KILN_GC_KEEP_STORAGE=0 alone turns GC off.
  assert.equal(allowedBytes(policy({}), 500 * MiB, disk), 20 * 1024 * MiB);
  assert.equal(allowedBytes(policy({ KILN_GC_KEEP_STORAGE: '0' }), 500 * MiB, disk), Infinity);
  assert.throws(() => policy({ KILN_GC_MIN_FREE_SPACE: 'lots' }), { message: 'invalid KILN_GC_MIN_FREE_SPACE "lots": expected a size like 10GB or 512MB, a percentage of the disk like 10%, or 0' });
});
