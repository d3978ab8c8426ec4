// The stat index reuses a context file's content hash while its stat is unchanged, and notices every
// change to the content, even one that keeps the size and puts the mtime back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync, utimesSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { State } from '../../cache/state.js';
import { StatIndex } from '../../cache/stat-index.js';
import { tempRoot } from '../helpers/kiln.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('stat index: hits for unchanged files, re-reads changed ones, survives a reopen', async () => {
  const root = tempRoot();
  const ctx = tempRoot('kiln-ctx-');
  const state = await State.open({ root });
  try {
    const file = join(ctx, 'a.txt');
    writeFileSync(file, 'one');
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    let index = await StatIndex.load(state.db, ctx);
    assert.equal(index.hash(file), sha('one'));
    assert.equal(index.reads, 1);
    await index.save();

    index = await StatIndex.load(state.db, ctx);
    assert.equal(index.hash(file), sha('one'));
    assert.deepEqual([index.reads, index.hits], [0, 1], 'unchanged file: no read');

    // Same size, mtime put back: the ctime still moves, so the change is seen.
    writeFileSync(file, 'two');
    utimesSync(file, old, old);
    assert.equal(Math.round(statSync(file).mtimeMs), old.getTime());
    assert.equal(index.hash(file), sha('two'));
    assert.equal(index.reads, 1);

    // A file written just now is hashed but not indexed (it could change again within the same tick).
    const fresh = join(ctx, 'fresh.txt');
    writeFileSync(fresh, 'new');
    index.hash(fresh);
    index.hash(fresh);
    assert.equal(index.reads, 3);
  } finally {
    await state.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(ctx, { recursive: true, force: true });
  }
});
