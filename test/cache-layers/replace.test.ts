// A layer's entries land in a new, empty snapshot dir, so the unpack checks what is at a path only when
// an earlier entry of the same tar may have made something there (apply.ts `placed`). Every way a path
// can come to exist first (an implicit parent, a hard link, a whiteout, a dir removed and made again)
// must still be seen and replaced, exactly as the tar's order says, and nothing lands outside through a
// symlink an earlier entry made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { unpackLayer } from '../../cache/layers/unpack.js';
import { OCI_LAYER } from '../../base/oci/mediatypes.js';
import { makeCanary, tarOf, type Entry } from '../security/crafted.js';
import { tempDir } from './tree.js';

async function unpack(entries: Entry[]): Promise<string> {
  const parent = join(tempDir(), 'snapshots');
  mkdirSync(parent);
  const dest = join(parent, 'layer');
  await unpackLayer(Readable.from([await tarOf(entries)]), dest, { mediaType: OCI_LAYER });
  return dest;
}

test('paths an earlier entry made (implicitly or not) are replaced; a dir made again starts empty', async () => {
  const dest = await unpack([
    { name: 'a/b/f', data: 'under an implicit dir\n' }, // a and a/b are made as parents
    { name: 'a/b', data: 'a/b is a file now\n' }, // replaces the implicit dir and what is in it
    { name: 'a', type: 'dir', mode: 0o700 }, // the implicit dir, now named: kept, its mode set
    { name: 'x/y', data: 'first\n' },
    { name: 'x/z', type: 'hardlink', linkname: 'x/y' },
    { name: 'x/z', data: 'second\n' }, // replaces the hard link, not the file it shares an inode with
    { name: '.wh.w', type: 'file' }, // overlay whiteout: a 0/0 char device at w
    { name: 'w', data: 'w is back\n' }, // replaces the whiteout device
    { name: 'r/s/t', data: 'old\n' },
    { name: 'r', data: 'r is a file\n' }, // removes r/s/t with its dirs
    { name: 'r', type: 'dir' }, // a new, empty r
    { name: 'r/s/t', data: 'new\n' }, // made again below the new r
    { name: 'q', type: 'symlink', linkname: 'nowhere' },
    { name: 'q', type: 'dir' }, // replaces the symlink
    { name: 'q/inside', data: 'in q\n' },
  ]);
  assert.equal(readFileSync(join(dest, 'a/b'), 'utf8'), 'a/b is a file now\n');
  assert.equal(lstatSync(join(dest, 'a')).mode & 0o7777, 0o700);
  assert.equal(readFileSync(join(dest, 'x/y'), 'utf8'), 'first\n');
  assert.equal(readFileSync(join(dest, 'x/z'), 'utf8'), 'second\n');
  assert.equal(lstatSync(join(dest, 'x/y')).nlink, 1, 'the hard link was removed, not written through');
  assert.ok(lstatSync(join(dest, 'w')).isFile());
  assert.equal(readFileSync(join(dest, 'r/s/t'), 'utf8'), 'new\n');
  assert.deepEqual(readdirSync(join(dest, 'r')), ['s']);
  assert.ok(lstatSync(join(dest, 'q')).isDirectory());
  assert.equal(readFileSync(join(dest, 'q/inside'), 'utf8'), 'in q\n');
  assert.deepEqual(readdirSync(dest).sort(), ['a', 'q', 'r', 'w', 'x']);
});

test('the same path twice in a row: the last entry wins, for every type', async () => {
  const dest = await unpack([
    { name: 'f', data: 'one\n' },
    { name: 'f', data: 'two\n' },
    { name: 'd', type: 'dir', mode: 0o755 },
    { name: 'd', type: 'dir', mode: 0o711 },
    { name: 'l', type: 'symlink', linkname: 'one' },
    { name: 'l', type: 'symlink', linkname: 'two' },
    { name: 'p', type: 'fifo' },
    { name: 'p', data: 'p is a file\n' },
  ]);
  assert.equal(readFileSync(join(dest, 'f'), 'utf8'), 'two\n');
  assert.equal(lstatSync(join(dest, 'd')).mode & 0o7777, 0o711);
  assert.ok(lstatSync(join(dest, 'l')).isSymbolicLink());
  assert.ok(lstatSync(join(dest, 'p')).isFile());
});

test('symlinks to a dir outside, replaced by dirs and files of the same name: every entry lands inside; the canary is untouched', async () => {
  const canary = makeCanary();
  const before = await canary.snapshot();
  const dest = await unpack([
    { name: 'a', type: 'symlink', linkname: canary.dir },
    { name: 'a', type: 'dir' }, // replaces the symlink: a real dir, not the canary
    { name: 'a/x', data: 'inside\n' },
    { name: 'b', type: 'symlink', linkname: `${canary.dir}/x` },
    { name: 'b', data: 'b replaces the link, not its target\n' },
    { name: 'c/d', type: 'symlink', linkname: canary.dir },
    { name: 'c', data: 'c replaces the dir holding the link\n' },
    { name: 'c', type: 'dir' },
    { name: 'c/d', type: 'dir' }, // made again below the new c: not through the old link
    { name: 'c/d/sub', data: 'inside too\n' },
  ]);
  assert.equal(readFileSync(join(dest, 'a/x'), 'utf8'), 'inside\n');
  assert.ok(lstatSync(join(dest, 'a')).isDirectory());
  assert.equal(readFileSync(join(dest, 'b'), 'utf8'), 'b replaces the link, not its target\n');
  assert.ok(lstatSync(join(dest, 'c/d')).isDirectory());
  assert.equal(readFileSync(join(dest, 'c/d/sub'), 'utf8'), 'inside too\n');
  assert.deepEqual(await canary.snapshot(), before);
});
