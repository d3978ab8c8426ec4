// The metadata database has one owner (cache/keyspace.ts): after `kiln prune --all` its key count does
// not grow with the number of past builds, and a database from an older or newer kiln is handled safely
// and said so in one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { State } from '../../cache/state.js';
import { runBuild } from '../../src/engine/build.js';
import { kiln, tempRoot } from '../helpers/kiln.js';

const DOCKERFILE = 'FROM scratch AS files\nCOPY f.txt sub/ /in/\nFROM scratch\nCOPY --from=files /in/f.txt /f.txt\nCOPY g.txt /g.txt\n';

/** `n` builds, each of a fresh context dir with changed files (old mtimes, so the stat index keeps them). */
async function builds(root: string, n: number, contexts: string, opts: { files?: number } = {}): Promise<Record<string, number>> {
  const state = await State.open({ root });
  try {
    const old = new Date(Date.now() - 60_000);
    for (let i = 0; i < n; i++) {
      const dir = join(contexts, String(i));
      mkdirSync(join(dir, 'sub'), { recursive: true });
      writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
      writeFileSync(join(dir, 'f.txt'), `build ${i}\n`);
      writeFileSync(join(dir, 'g.txt'), `g ${i % 7}\n`);
      writeFileSync(join(dir, 'sub', 'h.txt'), `h ${i % 3}\n`);
      // A large context (the size from which COPY remembers its selection with a context fingerprint).
      for (let j = 0; j < (opts.files ?? 0); j++) {
        writeFileSync(join(dir, 'sub', `many-${j}`), String(j));
        utimesSync(join(dir, 'sub', `many-${j}`), old, old);
      }
      for (const f of ['Dockerfile', 'f.txt', 'g.txt', 'sub/h.txt', 'sub', '.']) utimesSync(join(dir, f), old, old);
      // The context fingerprint trusts no tree with an inode changed (ctime) in the last two seconds.
      if (opts.files) await new Promise((r) => setTimeout(r, 2100));
      await runBuild(state, { targets: [{ contextDir: dir, dockerfile: { text: DOCKERFILE, name: 'Dockerfile', path: join(dir, 'Dockerfile') }, outputs: [] }] });
      // Half of the contexts are gone by the time of the prune, as CI checkouts are.
      if (i % 2 === 0) rmSync(dir, { recursive: true, force: true });
    }
    return await state.keys.counts();
  } finally {
    await state.close();
  }
}

async function prunedCounts(root: string): Promise<Record<string, number>> {
  const r = kiln(root, ['prune', '--all']);
  assert.equal(r.status, 0, r.stderr);
  const state = await State.open({ root });
  try {
    return await state.keys.counts();
  } finally {
    await state.close();
  }
}

const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);

test('kiln prune --all leaves as many db keys after 500 builds as after 5', { timeout: 600_000 }, async () => {
  const few = tempRoot();
  const many = tempRoot();
  const contexts = tempRoot('kiln-ctxs-');
  try {
    await builds(few, 5, join(contexts, 'few'));
    const fewAfter = await prunedCounts(few);
    const before = await builds(many, 500, join(contexts, 'many'));
    const after = await prunedCounts(many);
    console.log(`db keys after 500 builds: ${JSON.stringify(before)} (total ${total(before)})`);
    console.log(`db keys after 500 builds + prune --all: ${JSON.stringify(after)} (total ${total(after)}); after 5 builds + prune --all: ${JSON.stringify(fewAfter)} (total ${total(fewAfter)})`);
    // The memos did grow with the builds (each context is new), so the bound below is the collector's doing.
    for (const p of ['lastbuild/', 'statindex/', 'result/', 'content/']) assert.ok((before[p] ?? 0) >= 500, `${p} grew with the builds: ${before[p]}`);
    for (const [prefix, n] of Object.entries(after)) assert.ok(n <= (fewAfter[prefix] ?? 0) + 2, `${prefix}: ${n} keys after 500 builds + prune, ${fewAfter[prefix] ?? 0} after 5`);
    assert.ok(total(after) <= total(fewAfter) + 2, `total ${total(after)} vs ${total(fewAfter)}`);
    assert.ok(total(after) <= 5, `a pruned db holds only its schema version (and nothing per build): ${JSON.stringify(after)}`);
  } finally {
    rmSync(few, { recursive: true, force: true });
    rmSync(many, { recursive: true, force: true });
    rmSync(contexts, { recursive: true, force: true });
  }
});

test('a plain prune after builds keeps each memo only while a cache record of its day remains', async () => {
  const root = tempRoot();
  const contexts = tempRoot('kiln-ctxs-');
  try {
    const before = await builds(root, 4, contexts, { files: 600 });
    assert.deepEqual([before['lastbuild/'], before['statindex/'], before['selcache/']], [4, 4, 8], JSON.stringify(before));
    // Records from today remain (prune with a filter removes none), so today's memos stay, except those
    // whose context dir is gone (half of them).
    const r = kiln(root, ['prune', '--filter', 'until=1h']);
    assert.equal(r.status, 0, r.stderr);
    const state = await State.open({ root });
    try {
      const after = await state.keys.counts();
      assert.equal(after['lastbuild/'], before['lastbuild/'], 'explain records of kept builds stay');
      assert.equal(after['statindex/'], 2, 'stat indexes of removed context dirs go');
      assert.equal(after['selcache/'], 4, 'selection memos of removed context dirs go');
      assert.equal(after['result/'], before['result/']);
    } finally {
      await state.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(contexts, { recursive: true, force: true });
  }
});

async function writeRaw(root: string, entries: Record<string, unknown>): Promise<void> {
  mkdirSync(join(root, 'db'), { recursive: true });
  const db = new Level<string, unknown>(join(root, 'db'), { valueEncoding: 'json' });
  await db.open();
  for (const [k, v] of Object.entries(entries)) await db.put(k, v);
  await db.close();
}

test('a database from an older kiln has its derived indexes reset with a one-line notice; a newer one is refused', async () => {
  const older = tempRoot();
  const newer = tempRoot();
  try {
    // Old shapes: content/ held a bare digest, statindex/ a bare map; no schema key.
    await writeRaw(older, {
      'content/sha256:aa': 'sha256:bb',
      'statindex/cc': { '/x': { stat: '1', hash: 'dd' } },
      'image/docker.io/library/kept:latest': { name: 'docker.io/library/kept:latest', digest: `sha256:${'e'.repeat(64)}`, mediaType: 'x', updated: '2020-01-01', platforms: [] },
    });
    const r = kiln(older, ['du']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^kiln: the metadata database at .*\/db is from an older kiln \(schema 1\); reset 2 derived index entries \(images and build cache kept\)$/m);
    const again = kiln(older, ['du']);
    assert.doesNotMatch(again.stderr, /older kiln/, 'the notice is shown once');
    const state = await State.open({ root: older });
    try {
      assert.deepEqual(await state.keys.counts(), { 'image/': 1, 'meta/': 1 });
    } finally {
      await state.close();
    }

    await writeRaw(newer, { 'meta/schema': 99, 'content/x': { digest: 'sha256:bb', used: '2020-01-01' } });
    const refused = kiln(newer, ['du']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr.trim().split('\n').at(-1)!, /kiln state at .* was written by a newer kiln \(database schema 99; this kiln knows \d+\): use that kiln, or set KILN_ROOT to another dir/);
    await writeRaw(newer, {});
    const untouched = new Level<string, unknown>(join(newer, 'db'), { valueEncoding: 'json' });
    await untouched.open();
    assert.deepEqual(await untouched.get('content/x'), { digest: 'sha256:bb', used: '2020-01-01' }, 'a newer database is left as it was');
    await untouched.close();
  } finally {
    rmSync(older, { recursive: true, force: true });
    rmSync(newer, { recursive: true, force: true });
  }
});
