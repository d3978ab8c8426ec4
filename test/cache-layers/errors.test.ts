// Bad layers fail with one clear, user-facing line and leave nothing at the destination; hostile paths
// never write outside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { unpackLayer } from '../../cache/layers/unpack.js';
import { tarOf as craftedTar, type Entry } from '../security/crafted.js';
import { isUserFacing } from '../../base/errors.js';
import { OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD } from '../../base/oci/mediatypes.js';
import { busyboxAmd64Layer, describeTree, tempDir, zstdStoredFrame } from './tree.js';

const tarOf = (entries: Entry[]) => craftedTar(entries, 1000);

/** Unpacks `data` into work/dest and returns the error it must fail with; checks nothing was left behind. */
async function failingUnpack(work: string, data: Buffer, opts: { mediaType: string; expectedDiffId?: string }): Promise<Error> {
  const parent = join(work, 'snapshots');
  mkdirSync(parent, { recursive: true });
  const dest = join(parent, 'dest');
  const err = await unpackLayer(Readable.from([data]), dest, opts).then(
    () => assert.fail('unpack should have failed'),
    (e: Error) => e,
  );
  assert.ok(isUserFacing(err), `user-facing error expected, got ${err.stack}`);
  assert.doesNotMatch(err.message, /\n/);
  assert.ok(!existsSync(dest), 'no destDir after a failed unpack');
  assert.deepEqual(readdirSync(parent), [], 'no temp dir left beside destDir');
  return err;
}

test('corrupt or truncated gzip, and a wrong diffID, fail clearly and leave no destDir', async () => {
  const layer = busyboxAmd64Layer();
  const blob = readFileSync(layer.blob);
  const work = tempDir();
  try {
    const corrupt = Buffer.from(blob);
    for (let i = 0; i < 64; i++) corrupt[Math.floor(blob.length / 2) + i] ^= 0x5a;
    let err = await failingUnpack(work, corrupt, { mediaType: layer.mediaType, expectedDiffId: layer.diffId });
    assert.match(err.message, /^layer sha256:[0-9a-f]{64}: gzip data is corrupt \(.+\)$/);

    err = await failingUnpack(work, blob.subarray(0, blob.length >> 1), { mediaType: layer.mediaType, expectedDiffId: layer.diffId });
    assert.match(err.message, /gzip data is corrupt \(unexpected end of file\)/);

    const wrong = 'sha256:' + '0'.repeat(64);
    err = await failingUnpack(work, blob, { mediaType: layer.mediaType, expectedDiffId: wrong });
    assert.equal(err.name, 'DigestMismatchError');
    assert.ok(err.message.includes(wrong) && err.message.includes(layer.diffId), err.message);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('media type and data must agree; unknown types and broken tars are refused', async () => {
  const work = tempDir();
  try {
    const tar = await tarOf([{ name: 'f', data: 'x' }]);
    assert.match((await failingUnpack(work, gzipSync(tar), { mediaType: OCI_LAYER })).message, /media type says uncompressed tar but the data is gzip/);
    assert.match((await failingUnpack(work, tar, { mediaType: OCI_LAYER_GZIP })).message, /media type says gzip but the data is not compressed/);
    assert.match((await failingUnpack(work, tar, { mediaType: 'application/json' })).message, /unsupported layer media type "application\/json"/);
    assert.match((await failingUnpack(work, tar.subarray(0, 700), { mediaType: OCI_LAYER })).message, /tar archive is truncated/);
    const bad = Buffer.from(tar);
    bad[10] ^= 1; // header checksum no longer matches
    assert.match((await failingUnpack(work, bad, { mediaType: OCI_LAYER })).message, /invalid tar header at byte 0: header checksum mismatch/);
    assert.match((await failingUnpack(work, Buffer.from('not zstd at all'), { mediaType: OCI_LAYER_ZSTD })).message, /media type says zstd/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('zstd layers unpack (pure-JS decoder) and verify their diffID', async () => {
  const work = tempDir();
  try {
    const tar = await tarOf([{ name: 'etc/', type: 'dir' }, { name: 'etc/os-release', data: 'ID=kiln\n'.repeat(40000) }]);
    const dest = join(work, 'zstd');
    const r = await unpackLayer(Readable.from([zstdStoredFrame(tar)]), dest, { mediaType: OCI_LAYER_ZSTD });
    assert.equal(r.size, tar.length);
    assert.equal(readFileSync(join(dest, 'etc/os-release'), 'utf8'), 'ID=kiln\n'.repeat(40000));
    const truncated = zstdStoredFrame(tar).subarray(0, 1000);
    assert.match((await failingUnpack(work, truncated, { mediaType: OCI_LAYER_ZSTD })).message, /zstd data is corrupt|tar archive is truncated/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('path escapes (../x, /abs, a symlink parent, hardlinks out) never write outside destDir', async () => {
  const work = tempDir();
  try {
    const tag = randomBytes(6).toString('hex');
    const passwdBefore = { data: readFileSync('/etc/passwd'), mtime: statSync('/etc/passwd').mtimeMs };

    let err = await failingUnpack(work, await tarOf([{ name: `../escape-${tag}`, data: 'pwned' }]), { mediaType: OCI_LAYER });
    assert.match(err.message, /"\.\.\/escape-[0-9a-f]+" points outside the layer/);
    assert.ok(!existsSync(join(work, `escape-${tag}`)));
    err = await failingUnpack(work, await tarOf([{ name: `a/../../../escape-${tag}`, data: 'pwned' }]), { mediaType: OCI_LAYER });
    assert.match(err.message, /points outside the layer/);

    err = await failingUnpack(work, await tarOf([{ name: 'a', type: 'symlink', linkname: '/etc' }, { name: 'a/passwd', data: 'root::0:0::/:/bin/sh\n' }]), { mediaType: OCI_LAYER });
    assert.match(err.message, /"a\/passwd": parent a is a symlink, which unpacking does not follow/);

    err = await failingUnpack(work, await tarOf([{ name: 'a', type: 'symlink', linkname: '/etc' }, { name: 'h', type: 'hardlink', linkname: 'a/passwd' }]), { mediaType: OCI_LAYER });
    assert.match(err.message, /parent a is a symlink/);

    err = await failingUnpack(work, await tarOf([{ name: 'h', type: 'hardlink', linkname: '../../../etc/passwd' }]), { mediaType: OCI_LAYER });
    assert.match(err.message, /hardlink target "\.\.\/\.\.\/\.\.\/etc\/passwd" points outside the layer/);

    err = await failingUnpack(work, await tarOf([{ name: 'h', type: 'hardlink', linkname: 'never-written' }]), { mediaType: OCI_LAYER });
    assert.match(err.message, /hardlink "h" points to "never-written", which is not an earlier file of this layer/);

    // An absolute name is relative to the layer root (as containerd reads it), never to the host's /.
    const dest = join(work, 'abs');
    await unpackLayer(Readable.from([await tarOf([{ name: `/kiln-abs-${tag}`, data: 'inside' }, { name: 'l', type: 'symlink', linkname: '/etc' }, { name: 'l/', type: 'dir' }])]), dest, {
      mediaType: OCI_LAYER,
    });
    assert.ok(!existsSync(`/kiln-abs-${tag}`));
    assert.equal(readFileSync(join(dest, `kiln-abs-${tag}`), 'utf8'), 'inside');
    // A later dir entry replaces the symlink rather than following it.
    assert.ok(lstatSync(join(dest, 'l')).isDirectory());
    assert.deepEqual(Object.keys(await describeTree(dest)), [`kiln-abs-${tag}`, 'l']);

    assert.deepEqual(readFileSync('/etc/passwd'), passwdBefore.data);
    assert.equal(statSync('/etc/passwd').mtimeMs, passwdBefore.mtime);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('later entries replace earlier ones: file by dir, dir by file, file by symlink', async () => {
  const work = tempDir();
  try {
    const dest = join(work, 'replace');
    const tar = await tarOf([
      { name: 'x', data: 'file first' },
      { name: 'x/', type: 'dir' },
      { name: 'x/child', data: 'in dir' },
      { name: 'y/', type: 'dir' },
      { name: 'y/old', data: 'gone with y' },
      { name: 'y', data: 'now a file' },
      { name: 'z', data: 'z' },
      { name: 'z', type: 'symlink', linkname: 'x/child' },
      { name: 'w', data: 'v1' },
      { name: 'w', data: 'v2', mode: 0o600 },
    ]);
    writeFileSync(join(work, 'unused'), '');
    await unpackLayer(Readable.from([tar]), dest, { mediaType: OCI_LAYER });
    const t = await describeTree(dest);
    assert.equal(t['x']!.type, 'dir');
    assert.equal(readFileSync(join(dest, 'x/child'), 'utf8'), 'in dir');
    assert.equal(t['y']!.type, 'file');
    assert.equal(readFileSync(join(dest, 'y'), 'utf8'), 'now a file');
    assert.equal(t['z']!.link, 'x/child');
    assert.equal(readFileSync(join(dest, 'w'), 'utf8'), 'v2');
    assert.equal(t['w']!.mode, '600');
    assert.deepEqual(Object.keys(t), ['w', 'x', 'x/child', 'y', 'z']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
