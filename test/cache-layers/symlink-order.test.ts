// A layer's symlinks are made by the fsops helper without waiting for each one (extract.ts). The tar's
// order must still decide the tree exactly as if each entry were applied before the next: a later entry
// that replaces, hides, links to or climbs through a symlink sees it, owners land on the link itself, and
// a symlink the kernel refuses fails the unpack with nothing left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { unpackLayer } from '../../cache/layers/unpack.js';
import { OCI_LAYER } from '../../base/oci/mediatypes.js';
import { makeCanary, tarOf, type Entry } from '../security/crafted.js';
import { tempDir } from './tree.js';

async function unpack(entries: Entry[]): Promise<{ dest: string; parent: string; result: Promise<unknown> }> {
  const parent = join(tempDir(), 'snapshots');
  mkdirSync(parent);
  const dest = join(parent, 'layer');
  const result = unpackLayer(Readable.from([await tarOf(entries)]), dest, { mediaType: OCI_LAYER });
  await result.catch(() => undefined);
  return { dest, parent, result };
}

test('later entries see the symlinks before them: replaced, re-pointed, hard-linked, whited out, owned', async () => {
  const many: Entry[] = Array.from({ length: 300 }, (_, i) => ({ name: `bin/l${i}`, type: 'symlink', linkname: '/bin/busybox', uid: 1000 + (i % 3), gid: 2000 }));
  const { dest, result } = await unpack([
    { name: 'bin', type: 'dir' },
    ...many,
    { name: 'bin/l7', type: 'symlink', linkname: '/bin/other' }, // same name, new target
    { name: 'bin/l8', data: 'a file now\n' }, // a file replaces a symlink
    { name: 'bin/l9', type: 'dir' }, // a dir replaces a symlink
    { name: 'bin/l9/inside', data: 'x' },
    { name: 'bin/hl', type: 'hardlink', linkname: 'bin/l10' }, // a hard link to a symlink
    { name: 'bin/.wh.l11', type: 'file' }, // this layer's whiteout of its own symlink
    { name: 'd', type: 'dir' },
    { name: 'd/s', type: 'symlink', linkname: 'target' },
    { name: 'd', data: 'd is a file now' }, // replaces the dir holding an unanswered symlink
  ]);
  await result;
  assert.equal(readlinkSync(join(dest, 'bin/l0')), '/bin/busybox');
  assert.equal(readlinkSync(join(dest, 'bin/l299')), '/bin/busybox');
  assert.equal(readlinkSync(join(dest, 'bin/l7')), '/bin/other');
  assert.equal(lstatSync(join(dest, 'bin/l7')).uid, 0, 'the replacing entry decides the owner');
  assert.ok(lstatSync(join(dest, 'bin/l8')).isFile());
  assert.ok(lstatSync(join(dest, 'bin/l9')).isDirectory());
  assert.ok(existsSync(join(dest, 'bin/l9/inside')));
  const hl = lstatSync(join(dest, 'bin/hl'));
  assert.ok(hl.isSymbolicLink());
  assert.equal(hl.ino, lstatSync(join(dest, 'bin/l10')).ino);
  assert.ok(lstatSync(join(dest, 'bin/l11')).isCharacterDevice(), 'a whiteout in overlay form');
  assert.ok(lstatSync(join(dest, 'd')).isFile());
  for (const i of [0, 1, 2, 100, 299]) {
    const st = lstatSync(join(dest, `bin/l${i}`));
    assert.deepEqual([st.uid, st.gid], [1000 + (i % 3), 2000], `owner of bin/l${i} (on the link, not its target)`);
    assert.equal(st.mtimeMs, 1_000_000_000_000, `mtime of bin/l${i}`);
  }
  assert.equal(readdirSync(join(dest, 'bin')).length, 300 + 1);
});

test('an entry through a symlink the helper has not answered yet is refused; the canary is untouched', async () => {
  const canary = makeCanary();
  const before = await canary.snapshot();
  for (const entries of [
    [{ name: 'a', type: 'symlink', linkname: canary.dir }, { name: 'a/x', data: 'owned\n' }],
    [{ name: 'p/q', type: 'symlink', linkname: canary.dir }, { name: 'p/q/sub/y', type: 'dir' }],
    [{ name: 'l', type: 'symlink', linkname: canary.dir }, { name: 'l/.wh.x', type: 'file' }],
    [{ name: 'h', type: 'symlink', linkname: join(canary.dir, 'x') }, { name: 'hx', type: 'hardlink', linkname: 'h/../x' }],
  ] as Entry[][]) {
    const { dest, parent, result } = await unpack(entries);
    await assert.rejects(result, /symlink|not an earlier file|points outside/, JSON.stringify(entries));
    assert.ok(!existsSync(dest));
    assert.deepEqual(readdirSync(parent), [], 'no temp dir left');
  }
  assert.deepEqual(await canary.snapshot(), before);
});

test('a symlink the kernel refuses fails the unpack in one line and leaves nothing', async () => {
  const { dest, parent, result } = await unpack([
    { name: 'ok', type: 'symlink', linkname: 'fine' },
    { name: 'bad', type: 'symlink', linkname: 'x'.repeat(5000) }, // longer than PATH_MAX: ENAMETOOLONG
    { name: 'after', data: 'x' },
  ]);
  await assert.rejects(result, (err: Error) => {
    assert.doesNotMatch(err.message, /\n/);
    assert.match(err.message, /too long|ENAMETOOLONG/);
    return true;
  });
  assert.ok(!existsSync(dest));
  assert.deepEqual(readdirSync(parent), []);
});
