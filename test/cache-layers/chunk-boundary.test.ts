// Layer tars are written in 1 MiB chunks that are hashed as they are handed on. A tree with thousands
// of entries puts header blocks at chunk boundaries: the diffID must still be the sha256 of exactly the
// bytes written, and the archive must read back entry for entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { writeLayerTar } from '../../cache/layers/diff.js';
import { TarReader } from '../../cache/layers/tar-reader.js';
import { tempDir } from './tree.js';

test('a layer tar of thousands of entries hashes to its diffID and reads back whole', async () => {
  const dir = tempDir();
  try {
    // Entry sizes vary (empty files: 3 blocks with their PAX header; small files: 4), so over ~3 MiB of
    // headers every position within a chunk is hit, the last block of a chunk included.
    const names: string[] = [];
    for (let i = 0; i < 6000; i++) {
      const rel = `d${i % 50}/f${i}`;
      mkdirSync(join(dir, `d${i % 50}`), { recursive: true });
      writeFileSync(join(dir, rel), i % 3 === 0 ? '' : 'x'.repeat(i % 700));
      names.push(rel);
    }
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
    const { diffId, size } = await writeLayerTar(dir, sink);
    const bytes = Buffer.concat(chunks);
    assert.equal(bytes.length, size);
    assert.ok(size > 3 * 1024 * 1024);
    assert.equal(diffId, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
    const seen: string[] = [];
    const reader = new TarReader();
    for (const ev of reader.feed(bytes)) if (ev.kind === 'entry' && ev.header.type === 'file') seen.push(ev.header.name);
    reader.end();
    assert.deepEqual(seen.sort(), names.sort());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
