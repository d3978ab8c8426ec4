// The same tree gives the same layer bytes (so the same diffID and blob digest), whatever the inode
// numbers or creation order; with SOURCE_DATE_EPOCH, newer mtimes are clamped so rebuilds match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { isEmptyLayerDir, writeLayerTar, writeLayerTarGzip } from '../../cache/layers/diff.js';
import { FsOps, type Timespec } from '../../cache/layers/fsops.js';
import { TarReader } from '../../cache/layers/tar-reader.js';
import { tempDir } from './tree.js';

const FILES = ['b/2', 'a/1', 'a/10', 'a/9', 'c', 'Z', 'a-b'];

/** Builds the same tree, creating entries in the given order; mtimes from `mtimeOf` (or left as now). */
async function build(dir: string, order: string[], mtimeOf?: (rel: string) => Timespec): Promise<void> {
  for (const rel of order) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), `content of ${rel}`);
  }
  linkSync(join(dir, 'c'), join(dir, 'hard'));
  symlinkSync('a/1', join(dir, 'sym'));
  if (!mtimeOf) return;
  const ops = FsOps.start();
  try {
    for (const rel of [...order, 'hard', 'sym', 'a', 'b']) await ops.utimens(join(dir, rel), mtimeOf(rel), mtimeOf(rel));
  } finally {
    await ops.close();
  }
}

async function tarBytes(dir: string, sourceDateEpoch?: number): Promise<{ bytes: Buffer; diffId: string }> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  const { diffId } = await writeLayerTar(dir, sink, { sourceDateEpoch });
  return { bytes: Buffer.concat(chunks), diffId };
}

function mtimes(tar: Buffer): Record<string, Timespec> {
  const r = new TarReader();
  const out: Record<string, Timespec> = {};
  for (const ev of r.feed(tar)) if (ev.kind === 'entry') out[ev.header.name] = ev.header.mtime;
  r.end();
  return out;
}

test('same tree → same bytes, diffID and gzip digest, regardless of inodes and creation order', async () => {
  const work = tempDir();
  try {
    const fixed = (rel: string): Timespec => ({ sec: 1700000000 + rel.length, nsec: 250000000 });
    const a = join(work, 'a');
    const b = join(work, 'b');
    await build(a, FILES, fixed);
    await build(b, [...FILES].reverse(), fixed);
    const first = await tarBytes(a);
    const again = await tarBytes(a);
    const other = await tarBytes(b);
    assert.ok(first.bytes.equals(again.bytes));
    assert.ok(first.bytes.equals(other.bytes));
    assert.equal(first.diffId, other.diffId);
    // Byte order of names, dir by dir (like BuildKit): "Z" < "a" < "a-b"; "a/1" < "a/10" < "a/9".
    assert.deepEqual(Object.keys(mtimes(first.bytes)), ['Z', 'a/', 'a/1', 'a/10', 'a/9', 'a-b', 'b/', 'b/2', 'c', 'hard', 'sym']);

    const gz1 = await writeLayerTarGzip(a, join(work, 'a.tgz'));
    const gz2 = await writeLayerTarGzip(b, join(work, 'b.tgz'));
    assert.equal(gz1.digest, gz2.digest);
    assert.equal(gz1.diffId, first.diffId);
    assert.ok(readFileSync(join(work, 'a.tgz')).equals(readFileSync(join(work, 'b.tgz'))));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('sourceDateEpoch clamps newer mtimes (and only those), making rebuilds at different times identical', async () => {
  const work = tempDir();
  try {
    const epoch = 1600000000;
    const old: Timespec = { sec: 1000, nsec: 500 };
    const t1 = join(work, 't1');
    const t2 = join(work, 't2');
    await build(t1, FILES, (rel) => (rel === 'c' || rel === 'hard' ? old : { sec: 1700000000, nsec: 1 }));
    await build(t2, FILES, (rel) => (rel === 'c' || rel === 'hard' ? old : { sec: 1800000000 + rel.length, nsec: 999 }));

    assert.notEqual((await tarBytes(t1)).diffId, (await tarBytes(t2)).diffId);
    const c1 = await tarBytes(t1, epoch);
    const c2 = await tarBytes(t2, epoch);
    assert.equal(c1.diffId, c2.diffId);
    const m = mtimes(c1.bytes);
    assert.deepEqual(m['c'], old, 'older than the epoch: kept, to the nanosecond');
    assert.deepEqual(m['hard'], old, 'a hardlink entry carries its inode mtime');
    for (const name of ['Z', 'a/', 'a/1', 'sym', 'b/2']) assert.deepEqual(m[name], { sec: epoch, nsec: 0 }, name);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('isEmptyLayerDir: only a dir with nothing in it (sockets aside) is an empty layer', async () => {
  const work = tempDir();
  try {
    const d = join(work, 'upper');
    mkdirSync(d);
    assert.equal(isEmptyLayerDir(d), true);
    const empty = await tarBytes(d);
    assert.equal(empty.bytes.length, 1024, 'an empty layer is just the end-of-archive blocks');
    mkdirSync(join(d, 'x'));
    assert.equal(isEmptyLayerDir(d), false);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
