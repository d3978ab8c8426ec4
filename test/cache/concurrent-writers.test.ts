// Several CI runners exporting to one cache ref at once (issue 19, item 2): four kiln processes with
// separate state dirs build four different branches and export `mode=max` to one registry ref and one
// local directory at the same time. Afterwards a fresh state dir imports and runs no step of any of the
// four builds. Meanwhile a reader polls the cache and every manifest it reads names blobs that exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnAsync, tempRoot } from '../helpers/kiln.js';
import { kilnBuild, writeContext, errorLine } from '../helpers/build.js';
import { compact, defaultWriterId, type WriterEntry } from '../../cache/remote/writers.js';

const suite = buildSuite();
const rawjson = ['--progress', 'rawjson'];
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** The Dockerfile steps that ran (not served from a cache). */
function ran(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'vertex.started')
    .map((e) => String(e.name))
    .filter((n) => /\b(RUN|COPY)\b/.test(n));
}

/** The default writer id includes a CI branch variable; the 4 runners here stand for 4 machines. */
const noCiBranch = Object.fromEntries(['GITHUB_HEAD_REF', 'GITHUB_REF_NAME', 'CI_COMMIT_REF_NAME', 'BUILDKITE_BRANCH', 'CIRCLE_BRANCH', 'BRANCH_NAME'].map((v) => [v, '']));

/** Branch i: a step all branches share, then steps of its own. */
function branch(i: number): string {
  return writeContext({
    Dockerfile: [
      `FROM ${suite.base}`,
      'COPY common.txt /common.txt',
      'RUN cat /common.txt > /shared',
      `COPY branch.txt /branch.txt`,
      `RUN cat /shared /branch.txt > /out && echo step-${i} >> /out`,
      `RUN wc -c /out > /size-${i}`,
      '',
    ].join('\n'),
    'common.txt': 'common\n',
    'branch.txt': `branch ${i}\n`,
  });
}

// ---- a reader that checks what it reads, over HTTP, while writers write ----

async function get(url: string, accept?: string): Promise<{ status: number; body: Buffer }> {
  const r = await fetch(url, { headers: accept ? { accept } : {} });
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
}

/** Every manifest the registry cache names, and whether each blob it names exists. */
async function readRegistryCache(base: string, tag: string): Promise<{ manifests: any[]; missing: string[] }> {
  const root = await get(`${base}/manifests/${tag}`, `${OCI_INDEX}, ${OCI_MANIFEST}`);
  if (root.status === 404) return { manifests: [], missing: [] };
  assert.equal(root.status, 200);
  const doc = JSON.parse(root.body.toString());
  const manifests: any[] = [];
  const missing: string[] = [];
  const descs = doc.mediaType === OCI_INDEX ? doc.manifests : [null];
  for (const d of descs) {
    const m = d ? await get(`${base}/manifests/${d.digest}`, OCI_MANIFEST) : root;
    if (m.status !== 200) {
      missing.push(`manifest ${d.digest}: ${m.status}`);
      continue;
    }
    const manifest = JSON.parse(m.body.toString());
    manifests.push(manifest);
    for (const b of [manifest.config, ...manifest.layers]) {
      const r = await fetch(`${base}/blobs/${b.digest}`, { method: 'HEAD' });
      if (r.status !== 200) missing.push(`blob ${b.digest}: ${r.status}`);
    }
  }
  return { manifests, missing };
}

function readLocalCache(dir: string): { manifests: any[]; missing: string[] } {
  const blob = (d: string) => join(dir, 'blobs', 'sha256', d.slice(7));
  if (!existsSync(join(dir, 'index.json'))) return { manifests: [], missing: [] };
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const missing: string[] = [];
  const manifests: any[] = [];
  for (const top of index.manifests) {
    if (!existsSync(blob(top.digest))) {
      missing.push(`index.json names ${top.digest}`);
      continue;
    }
    const doc = JSON.parse(readFileSync(blob(top.digest), 'utf8'));
    for (const d of doc.mediaType === OCI_INDEX ? doc.manifests : [top]) {
      if (!existsSync(blob(d.digest))) {
        missing.push(`manifest ${d.digest}`);
        continue;
      }
      const m = JSON.parse(readFileSync(blob(d.digest), 'utf8'));
      manifests.push(m);
      for (const b of [m.config, ...m.layers]) if (!existsSync(blob(b.digest))) missing.push(`blob ${b.digest}`);
    }
  }
  return { manifests, missing };
}

async function recordsOfRegistry(base: string, manifests: any[]): Promise<string[][]> {
  return Promise.all(manifests.map(async (m) => JSON.parse((await get(`${base}/blobs/${m.config.digest}`)).body.toString()).records.map((r: any) => r.key)));
}
function recordsOfLocal(dir: string, manifests: any[]): string[][] {
  return manifests.map((m) => JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', m.config.digest.slice(7)), 'utf8')).records.map((r: any) => r.key));
}

function printCounts(what: string, perWriter: string[][]): void {
  const distinct = new Set(perWriter.flat()).size;
  console.log(`# ${what}: ${perWriter.length} writers, records per writer ${perWriter.map((r) => r.length).join('/')}, ${distinct} distinct records after the merge`);
}

test('4 writers export to one registry ref and one local dir at once: a fresh machine imports and runs no step of any of the 4 builds', async () => {
  const reg = suite.reg.host;
  const cacheRef = `${reg}/team/cache`;
  const localDir = mkdtempSync(join(tmpdir(), 'kiln-cache-shared-'));
  const contexts = [0, 1, 2, 3].map(branch);
  const roots = contexts.map(() => tempRoot());
  const readers = [tempRoot(), tempRoot()];
  const registryBase = `${suite.reg.url}/v2/team/cache`;
  try {
    // A reader polls both caches for as long as the writers run.
    let writing = true;
    const seen = { reads: 0, broken: [] as string[] };
    const reader = (async () => {
      while (writing) {
        const r = await readRegistryCache(registryBase, 'latest');
        const l = readLocalCache(localDir);
        seen.reads++;
        seen.broken.push(...r.missing, ...l.missing);
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    const writers = contexts.map((ctx, i) =>
      kilnAsync(roots[i]!, ['build', '--progress', 'plain', '--cache-to', `type=registry,ref=${cacheRef},mode=max`, '--cache-to', `type=local,dest=${localDir},mode=max`, ctx], { env: noCiBranch }).done,
    );
    const results = await Promise.all(writers);
    writing = false;
    await reader;
    for (const r of results) {
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /cache export to .* failed/);
    }
    assert.ok(seen.reads > 0);
    assert.deepEqual(seen.broken, [], 'a reader saw a manifest naming something missing');

    // The local index names all 4 writers (its merge holds a lock). In the registry each writer has its
    // own tag; the index names all 4 unless an update was lost in a race after its writer re-read it (no
    // CAS), which the writer tags make up for (checked below by overwriting the index).
    const local4 = readLocalCache(localDir);
    assert.equal(local4.manifests.length, 4, 'the local index names every writer');
    const tags = JSON.parse((await get(`${registryBase}/tags/list`)).body.toString()).tags as string[];
    const writerTags = tags.filter((t) => t.startsWith('latest.w.'));
    assert.equal(writerTags.length, 4, `one writer tag per writer: ${tags.join(' ')}`);
    const reg4 = await readRegistryCache(registryBase, 'latest');
    console.log(`# registry index names ${reg4.manifests.length} of 4 writers`);
    const byTag = await Promise.all(writerTags.map(async (t) => JSON.parse((await get(`${registryBase}/manifests/${t}`, OCI_MANIFEST)).body.toString())));
    printCounts('registry cache', await recordsOfRegistry(registryBase, byTag));
    printCounts('local cache', recordsOfLocal(localDir, local4.manifests));

    // A fresh state dir per carrier imports and, for each of the 4 builds, runs nothing.
    const from = [`type=registry,ref=${cacheRef}`, `type=local,src=${localDir}`];
    for (const [n, cacheFrom] of from.entries()) {
      for (const [i, ctx] of contexts.entries()) {
        const b = kilnBuild(readers[n]!, {}, ['--cache-from', cacheFrom, ...rawjson], { context: ctx });
        assert.equal(b.status, 0, b.stderr);
        assert.doesNotMatch(b.stderr, /cannot import cache/);
        assert.deepEqual(ran(b.stderr), [], `build ${i} from ${cacheFrom} ran steps`);
      }
    }

    // The registry has no compare-and-swap: an index update can be lost when two writers rewrite it at
    // once. Make that happen (an index naming one writer only): the writer tags still bring all four.
    const index = JSON.parse((await get(`${registryBase}/manifests/latest`, OCI_INDEX)).body.toString());
    index.manifests = index.manifests.slice(0, 1);
    const put = await fetch(`${registryBase}/manifests/latest`, { method: 'PUT', headers: { 'content-type': OCI_INDEX }, body: JSON.stringify(index) });
    assert.equal(put.status, 201);
    const afterLoss = tempRoot();
    readers.push(afterLoss);
    for (const [i, ctx] of contexts.entries()) {
      const b = kilnBuild(afterLoss, {}, ['--cache-from', `type=registry,ref=${cacheRef}`, ...rawjson], { context: ctx });
      assert.equal(b.status, 0, b.stderr);
      assert.deepEqual(ran(b.stderr), [], `build ${i} after a lost index update ran steps`);
    }
  } finally {
    for (const r of [...roots, ...readers, localDir, ...contexts]) rmSync(r, { recursive: true, force: true });
  }
});

test('compaction: keep-writers=2 keeps the newest two writers; the dropped one is gone from the index, its tag and the local dir', async () => {
  const reg = suite.reg.host;
  const cacheRef = `${reg}/team/compact`;
  const registryBase = `${suite.reg.url}/v2/team/compact`;
  const localDir = mkdtempSync(join(tmpdir(), 'kiln-cache-compact-'));
  const contexts = [0, 1, 2].map(branch);
  const root = tempRoot();
  const reader = tempRoot();
  try {
    for (const [i, ctx] of contexts.entries()) {
      const b = kilnBuild(root, {}, ['--cache-to', `type=registry,ref=${cacheRef},mode=max,writer=branch/${i},keep-writers=2`, '--cache-to', `type=local,dest=${localDir},mode=max,writer=branch/${i},keep-writers=2`], { context: ctx });
      assert.equal(b.status, 0, b.stderr);
      assert.match(b.stderr, new RegExp(`writer branch-${i}`));
    }
    const index = JSON.parse((await get(`${registryBase}/manifests/latest`, OCI_INDEX)).body.toString());
    assert.deepEqual(index.manifests.map((d: any) => d.annotations['io.kiln.cache.writer']), ['branch-2', 'branch-1']);
    const tags = JSON.parse((await get(`${registryBase}/tags/list`)).body.toString()).tags as string[];
    assert.deepEqual(tags.filter((t) => t.includes('.w.')).sort(), ['latest.w.branch-1', 'latest.w.branch-2']);
    assert.equal(readLocalCache(localDir).manifests.length, 2);
    // The newest writers' builds are cached; the dropped writer's own steps run again.
    for (const from of [`type=registry,ref=${cacheRef}`, `type=local,src=${localDir}`]) {
      const kept = kilnBuild(reader, {}, ['--cache-from', from, ...rawjson], { context: contexts[2] });
      assert.equal(kept.status, 0, kept.stderr);
      assert.deepEqual(ran(kept.stderr), []);
    }
    const dropped = kilnBuild(tempRoot(), {}, ['--cache-from', `type=registry,ref=${cacheRef}`, ...rawjson], { context: contexts[0] });
    assert.equal(dropped.status, 0, dropped.stderr);
    assert.ok(ran(dropped.stderr).some((n) => n.includes('step-0')), 'the dropped writer is not imported');

    // The local dir is bounded too: blobs nothing names any more go once they are an hour old.
    const blobDir = join(localDir, 'blobs', 'sha256');
    const before = readdirSync(blobDir);
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    for (const f of before) utimesSync(join(blobDir, f), hoursAgo, hoursAgo);
    const again = kilnBuild(root, {}, ['--cache-to', `type=local,dest=${localDir},mode=max,writer=branch/2,keep-writers=2`], { context: contexts[2] });
    assert.equal(again.status, 0, again.stderr);
    const named = new Set<string>();
    const indexJson = JSON.parse(readFileSync(join(localDir, 'index.json'), 'utf8'));
    for (const top of indexJson.manifests) {
      named.add(top.digest.slice(7));
      for (const d of JSON.parse(readFileSync(join(blobDir, top.digest.slice(7)), 'utf8')).manifests) {
        named.add(d.digest.slice(7));
        const m = JSON.parse(readFileSync(join(blobDir, d.digest.slice(7)), 'utf8'));
        for (const b of [m.config, ...m.layers]) named.add(b.digest.slice(7));
      }
    }
    const after = readdirSync(blobDir);
    assert.deepEqual([...after].sort(), [...named].sort(), 'exactly the blobs the index names are left');
    assert.ok(after.length < before.length, `compaction removed nothing (${before.length} blobs before, ${after.length} after)`);
    console.log(`# local compaction: ${before.length} blobs before, ${after.length} after`);
    const fromLocal = kilnBuild(tempRoot(), {}, ['--cache-from', `type=local,src=${localDir}`, ...rawjson], { context: contexts[1] });
    assert.equal(fromLocal.status, 0, fromLocal.stderr);
    assert.deepEqual(ran(fromLocal.stderr), []);

    const bad = kilnBuild(root, {}, ['--cache-to', `type=registry,ref=${cacheRef},keep-writers=0`], { context: contexts[0] });
    assert.notEqual(bad.status, 0);
    assert.match(errorLine(bad), /keep-writers must be a number from 1 to 1000/);
  } finally {
    for (const r of [root, reader, localDir, ...contexts]) rmSync(r, { recursive: true, force: true });
  }
});

test('merge rule: the newest manifest per writer, the writer just written always kept, then newest first up to keep-writers, none older than keep-age', () => {
  const e = (writer: string, hoursAgo: number, n = 0): WriterEntry => ({
    writer,
    created: new Date(Date.parse('2026-01-10T00:00:00Z') - hoursAgo * 3_600_000).toISOString(),
    desc: { mediaType: OCI_MANIFEST, digest: `sha256:${(writer + hoursAgo + n).padEnd(64, '0').replace(/[^a-f0-9]/g, 'a')}`, size: 1 },
  });
  const now = Date.parse('2026-01-10T00:00:00Z');
  const mine = e('me', 0);
  const existing = [e('a', 1), e('a', 5), e('b', 2), e('old', 24 * 30), e('me', 3), e('c', 4)];
  const { kept, dropped } = compact(existing, { keepWriters: 3, keepAgeMs: 14 * 86_400_000 }, now, mine);
  assert.deepEqual(kept.map((k) => `${k.writer}@${k.created.slice(11, 13)}`), ['me@00', 'a@23', 'b@22']);
  assert.deepEqual(dropped.map((k) => k.writer).sort(), ['a', 'c', 'me', 'old']);
});

test('default writer id: one per machine and state dir, prefixed by the CI branch so one runner keeps each branch it builds', () => {
  const a = defaultWriterId('/state/a', {});
  assert.match(a, /^m[0-9a-f]{12}$/);
  assert.notEqual(defaultWriterId('/state/b', {}), a);
  assert.equal(defaultWriterId('/state/a', { GITHUB_REF_NAME: 'feature/x' }), `feature-x.${a}`);
  assert.equal(defaultWriterId('/state/a', { GITHUB_HEAD_REF: 'pr-branch', GITHUB_REF_NAME: '12/merge' }), `pr-branch.${a}`);
  assert.notEqual(defaultWriterId('/state/a', { CI_COMMIT_REF_NAME: 'main' }), defaultWriterId('/state/a', { CI_COMMIT_REF_NAME: 'dev' }));
});
