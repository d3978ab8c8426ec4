// Overlay whiteouts and opaque dirs ⇄ OCI `.wh.` entries, in both directions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, createReadStream, createWriteStream, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeLayerTar } from '../../cache/layers/diff.js';
import { unpackLayer } from '../../cache/layers/unpack.js';
import { FsOps } from '../../cache/layers/fsops.js';
import { TarReader } from '../../cache/layers/tar-reader.js';
import type { TarHeader } from '../../cache/layers/tar-header.js';
import { ChunkedOutput, TarWriter } from '../../cache/layers/tar-writer.js';
import { OCI_LAYER } from '../../base/oci/mediatypes.js';
import { describeTree, tempDir } from './tree.js';

function entriesOf(tar: Buffer): TarHeader[] {
  const reader = new TarReader();
  const out: TarHeader[] = [];
  for (const ev of reader.feed(tar)) if (ev.kind === 'entry') out.push(ev.header);
  reader.end();
  return out;
}

function isWhiteoutDevice(path: string): boolean {
  const st = lstatSync(path);
  return st.isCharacterDevice() && st.rdev === 0;
}

test('an upperdir with whiteouts and an opaque dir packs to .wh. entries and unpacks back to overlay form', async () => {
  const work = tempDir();
  try {
    const upper = join(work, 'upper');
    mkdirSync(join(upper, 'dir'), { recursive: true });
    mkdirSync(join(upper, 'op'));
    writeFileSync(join(upper, 'keep'), 'kept');
    writeFileSync(join(upper, 'op', 'new'), 'only this is visible in op/');
    const ops = FsOps.start();
    try {
      await ops.mknod(join(upper, 'gone'), constants.S_IFCHR, 0, 0);
      await ops.mknod(join(upper, 'dir', 'gone2'), constants.S_IFCHR, 0, 0);
      await ops.lsetxattr(join(upper, 'op'), 'trusted.overlay.opaque', Buffer.from('y'));
      await ops.lsetxattr(join(upper, 'dir'), 'trusted.overlay.origin', Buffer.from([0, 0xfb, 1]));
    } finally {
      await ops.close();
    }

    const tarPath = join(work, 'layer.tar');
    const { diffId } = await writeLayerTar(upper, createWriteStream(tarPath));
    const entries = entriesOf(readFileSync(tarPath));
    assert.deepEqual(
      entries.map((e) => `${e.type} ${e.name}`),
      ['dir dir/', 'file dir/.wh.gone2', 'file .wh.gone', 'file keep', 'dir op/', 'file op/.wh..wh..opq', 'file op/new'],
    );
    for (const e of entries) assert.deepEqual([...e.xattrs.keys()].filter((k) => k.startsWith('trusted.overlay.')), [], e.name);
    // GNU tar reads it as a plain tar with marker files.
    assert.match(execFileSync('tar', ['-tf', tarPath], { encoding: 'utf8' }), /^op\/\.wh\.\.wh\.\.opq$/m);

    const dst = join(work, 'snapshot');
    await unpackLayer(createReadStream(tarPath), dst, { mediaType: OCI_LAYER, expectedDiffId: diffId });
    assert.ok(isWhiteoutDevice(join(dst, 'gone')));
    assert.ok(isWhiteoutDevice(join(dst, 'dir', 'gone2')));
    assert.ok(!existsSync(join(dst, '.wh.gone')));
    assert.ok(!existsSync(join(dst, 'op', '.wh..wh..opq')));
    const tree = await describeTree(dst);
    assert.equal(tree['op']!.xattrs['trusted.overlay.opaque'], Buffer.from('y').toString('hex'));
    // overlay's bookkeeping xattrs (origin) are not layer content
    assert.deepEqual(tree['dir']!.xattrs, {});
    const want = await describeTree(upper);
    delete want['dir']!.xattrs['trusted.overlay.origin'];
    assert.deepEqual(tree, want);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('an OCI layer made by another tool: .wh. files become whiteouts, aufs metadata is skipped', async () => {
  const work = tempDir();
  try {
    const tree = join(work, 'tree');
    mkdirSync(join(tree, 'etc', 'conf.d'), { recursive: true });
    writeFileSync(join(tree, 'etc', '.wh.motd'), '');
    writeFileSync(join(tree, 'etc', 'conf.d', '.wh..wh..opq'), '');
    writeFileSync(join(tree, 'etc', 'conf.d', 'only'), 'x');
    mkdirSync(join(tree, '.wh..wh.plnk'));
    writeFileSync(join(tree, '.wh..wh.plnk', '123.456'), 'aufs hardlink store');
    const tarPath = join(work, 'layer.tar');
    execFileSync('tar', ['--format=posix', '-cf', tarPath, '-C', tree, '.']);

    const dst = join(work, 'snapshot');
    await unpackLayer(createReadStream(tarPath), dst, { mediaType: OCI_LAYER });
    assert.ok(isWhiteoutDevice(join(dst, 'etc', 'motd')));
    assert.ok(!existsSync(join(dst, 'etc', '.wh.motd')));
    assert.ok(!existsSync(join(dst, '.wh..wh.plnk')));
    const got = await describeTree(dst, { mtimes: false });
    assert.equal(got['etc/conf.d']!.xattrs['trusted.overlay.opaque'], Buffer.from('y').toString('hex'));
    assert.deepEqual(Object.keys(got), ['etc', 'etc/conf.d', 'etc/conf.d/only', 'etc/motd']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a layer cannot smuggle in overlay xattrs (redirect, opaque) through SCHILY.xattr records', async () => {
  const work = tempDir();
  try {
    const chunks: Buffer[] = [];
    const out = new ChunkedOutput((c) => void chunks.push(Buffer.from(c)));
    const tar = new TarWriter(out);
    const base = { uid: 0, gid: 0, uname: '', gname: '', size: 0, mtime: { sec: 1, nsec: 0 }, linkname: '', devmajor: 0, devminor: 0 };
    tar.writeHeader({
      ...base,
      name: 'd/',
      type: 'dir',
      mode: 0o755,
      xattrs: new Map([
        ['trusted.overlay.redirect', Buffer.from('/etc')],
        ['trusted.overlay.opaque', Buffer.from('y')],
        ['user.ok', Buffer.from('kept')],
      ]),
    });
    tar.finish();
    await out.end();
    const tarPath = join(work, 'layer.tar');
    writeFileSync(tarPath, Buffer.concat(chunks));
    const dst = join(work, 'snapshot');
    await unpackLayer(createReadStream(tarPath), dst, { mediaType: OCI_LAYER });
    const got = await describeTree(dst);
    assert.deepEqual(got['d']!.xattrs, { 'user.ok': Buffer.from('kept').toString('hex') });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
