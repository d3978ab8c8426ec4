// The state dir: one owner at a time (a second kiln waits with a message, or gives up clearly), and the
// content store never exposes a torn or corrupt blob.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, rmSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { State } from '../../cache/state.js';
import { ContentStore, sha256Digest } from '../../cache/content-store.js';
import { kiln, kilnAsync, tempRoot } from '../helpers/kiln.js';
import { waitFor } from '../helpers/wait.js';

test('a second kiln process fails clearly when the state stays locked', async () => {
  const root = tempRoot();
  const state = await State.open({ root });
  try {
    const r = kiln(root, ['images'], { env: { KILN_LOCK_TIMEOUT: '1' } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /waiting for another kiln process \(pid \d+/);
    assert.match(r.stderr.trim().split('\n').at(-1)!, /in use by another kiln process \(pid \d+.*gave up after 1s/);
  } finally {
    await state.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a second kiln process waits and then proceeds when the state is released', async () => {
  const root = tempRoot();
  const state = await State.open({ root });
  const waiting = kilnAsync(root, ['images', '-q'], { env: { KILN_LOCK_TIMEOUT: '30' } });
  await waitFor(() => waiting.output().stderr.includes('waiting for another kiln process'), { timeoutMs: 30_000, what: 'the second process to wait for the lock' });
  await state.close();
  const r = await waiting.done;
  rmSync(root, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /waiting for another kiln process/);
});

test('content store: verified reads, atomic ingest, corrupt blobs detected', async () => {
  const root = tempRoot();
  try {
    const store = new ContentStore(root);
    const data = Buffer.from('{"hello":"kiln"}');
    const d = store.putBytes(data);
    assert.equal(d, sha256Digest(data));
    assert.deepEqual(store.readJSON(d), { hello: 'kiln' });
    assert.throws(() => store.putBytes(data, `sha256:${'0'.repeat(64)}`), /digest mismatch/);

    // A writer that fails leaves nothing behind.
    const other = sha256Digest('other');
    await assert.rejects(store.ingest(other, async (tmp) => {
      writeFileSync(tmp, 'oth');
      throw new Error('connection reset');
    }), /connection reset/);
    assert.equal(store.has(other), false);
    assert.deepEqual(readdirSync(store.ingestDir), []);

    // Wrong content with verify: rejected, not stored.
    await assert.rejects(store.ingest(other, async (tmp) => writeFileSync(tmp, 'not other'), { verify: true }), /digest mismatch/);
    assert.equal(store.has(other), false);
    await store.ingest(other, async (tmp) => writeFileSync(tmp, 'other'), { verify: true, size: 5 });
    assert.equal(store.readBytes(other).toString(), 'other');

    // Bit rot on disk is caught on read and while streaming.
    writeFileSync(store.path(d), '{"hello":"KILN"}');
    assert.throws(() => store.readBytes(d), /corrupt/);
    await assert.rejects(async () => {
      for await (const _ of store.openVerified(d)) void _;
    }, /corrupt/);
    assert.ok(existsSync(store.path(d)));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('state open clears temp files a killed process left behind', async () => {
  const root = tempRoot();
  try {
    (await State.open({ root })).close();
    const leftover = join(root, 'content', 'ingest', 'deadbeef-123-abcd');
    writeFileSync(leftover, 'partial');
    const state = await State.open({ root });
    assert.equal(existsSync(leftover), false);
    await state.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
