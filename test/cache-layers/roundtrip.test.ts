// A directory with every kind of entry and attribute a layer carries survives pack → unpack unchanged,
// and kiln's tars are read correctly by GNU tar (and GNU tar's by kiln).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, linkSync, lchownSync, chmodSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, chownSync } from 'node:fs';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { writeLayerTar, writeLayerTarGzip } from '../../cache/layers/diff.js';
import { unpackLayer } from '../../cache/layers/unpack.js';
import { FsOps } from '../../cache/layers/fsops.js';
import { OCI_LAYER, OCI_LAYER_GZIP } from '../../base/oci/mediatypes.js';
import { capabilityValue, describeTree, tempDir } from './tree.js';

let work: string;
let src: string;

const LONG_COMPONENT = 'n'.repeat(120);
const DEEP = `deep/${'x'.repeat(60)}/${'y'.repeat(60)}`;
const LONG_TARGET = `/${'t'.repeat(70)}/${'u'.repeat(70)}`;

async function makeRichTree(dir: string): Promise<void> {
  const p = (rel: string) => join(dir, rel);
  for (const d of ['bin', 'etc', 'home/user', 'shared', 'group', 'data', 'links', 'dev', DEEP, 'empty-dir']) mkdirSync(p(d), { recursive: true });
  writeFileSync(p('etc/hello.txt'), 'hello\n');
  writeFileSync(p('bin/su'), '#!/bin/sh\necho su\n');
  chmodSync(p('bin/su'), 0o4755);
  writeFileSync(p('bin/sg'), 'sg');
  chmodSync(p('bin/sg'), 0o2711);
  writeFileSync(p('bin/ping'), 'ping');
  chmodSync(p('bin/ping'), 0o755);
  chmodSync(p('shared'), 0o1777);
  chownSync(p('group'), 1000, 1000);
  chmodSync(p('group'), 0o2775);
  writeFileSync(p('home/user/file'), 'mine');
  chownSync(p('home/user/file'), 1000, 1000);
  chownSync(p('home/user'), 1000, 1000);
  chmodSync(p('home/user'), 0o700);
  writeFileSync(p('data/big-ids'), 'above tar-stream clamp');
  chownSync(p('data/big-ids'), 300000, 300000);
  writeFileSync(p('data/huge-ids'), 'above ustar octal');
  chownSync(p('data/huge-ids'), 3000000, 4000000);
  // 3 MiB + a bit: crosses the 1 MiB output chunks and a 512-byte block boundary.
  const big = Buffer.alloc(3 * 1024 * 1024 + 777);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  writeFileSync(p('data/big.bin'), big);
  writeFileSync(p('data/empty'), '');
  writeFileSync(p('data/h-a'), 'shared inode');
  linkSync(p('data/h-a'), p('data/h-b'));
  linkSync(p('etc/hello.txt'), p('links/hard-hello'));
  symlinkSync('../etc/hello.txt', p('links/rel'));
  symlinkSync(LONG_TARGET, p('links/long-target'));
  symlinkSync('/nonexistent', p('links/owned'));
  lchownSync(p('links/owned'), 1000, 1001);
  writeFileSync(p(`data/${LONG_COMPONENT}`), 'long name needs PAX path');
  writeFileSync(p(`${DEEP}/file`), 'long path split into ustar prefix');
  writeFileSync(p('data/unicodé-✓.txt'), 'non-ASCII name');
  const ops = FsOps.start();
  try {
    await ops.mknod(p('dev/fifo'), constants.S_IFIFO | 0o644, 0, 0);
    await ops.mknod(p('dev/null'), constants.S_IFCHR | 0o666, 1, 3);
    await ops.mknod(p('dev/loop0'), constants.S_IFBLK | 0o660, 7, 0);
    chmodSync(p('dev/fifo'), 0o644);
    chmodSync(p('dev/null'), 0o666);
    chownSync(p('dev/loop0'), 0, 6);
    chmodSync(p('dev/loop0'), 0o660);
    await ops.lsetxattr(p('bin/ping'), 'security.capability', capabilityValue());
    await ops.lsetxattr(p('etc/hello.txt'), 'user.kiln.note', Buffer.from('hi there'));
    await ops.lsetxattr(p('group'), 'user.binary', Buffer.from([0, 1, 0xfe, 0xff, 0x0a, 0x3d]));
    // Sub-second mtimes everywhere; dirs last so creating children does not move them again.
    const all = execFileSync('find', [dir, '-mindepth', '1', '-printf', '%d %P\n'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((l) => ({ depth: Number(l.slice(0, l.indexOf(' '))), rel: l.slice(l.indexOf(' ') + 1) }))
      .sort((a, b) => b.depth - a.depth);
    let i = 0;
    for (const { rel } of all) {
      i++;
      await ops.utimens(p(rel), { sec: 1600000000, nsec: 1 }, { sec: 1700000000 + i, nsec: (123456789 * i) % 1e9 });
    }
  } finally {
    await ops.close();
  }
}

before(async () => {
  work = tempDir();
  src = join(work, 'src');
  mkdirSync(src);
  await makeRichTree(src);
});

after(() => rmSync(work, { recursive: true, force: true }));

test('pack → unpack keeps every entry type and attribute (ids > 262143, binary xattrs, ns mtimes, hardlinks)', async () => {
  const tarPath = join(work, 'rich.tar');
  const packed = await writeLayerTar(src, createWriteStream(tarPath));
  const bytes = readFileSync(tarPath);
  assert.equal(packed.size, bytes.length);
  assert.equal(packed.diffId, 'sha256:' + createHash('sha256').update(bytes).digest('hex'));

  const dst = join(work, 'unpacked');
  const r = await unpackLayer(createReadStream(tarPath), dst, { mediaType: OCI_LAYER, expectedDiffId: packed.diffId });
  assert.deepEqual(r, packed);

  const want = await describeTree(src);
  const got = await describeTree(dst);
  assert.deepEqual(got, want);
  // Spot checks that the comparison above covered what matters.
  assert.equal(got['bin/su']!.mode, '4755');
  assert.equal(got['bin/ping']!.xattrs['security.capability'], capabilityValue().toString('hex'));
  assert.equal(got['data/huge-ids']!.uid, 3000000);
  assert.equal(got['data/big-ids']!.gid, 300000);
  assert.equal(got['data/h-b']!.sameInodeAs, 'data/h-a');
  assert.equal(got['links/hard-hello']!.sameInodeAs, 'etc/hello.txt');
  assert.equal(got['dev/null']!.type, 'char');
  assert.notEqual(BigInt(got['etc/hello.txt']!.mtimeNs!) % 1_000_000_000n, 0n);
});

test('GNU tar lists and extracts kiln layers with the same attributes', async () => {
  const tarPath = join(work, 'for-gnu.tar');
  await writeLayerTar(src, createWriteStream(tarPath));
  const listing = execFileSync('tar', ['-tvf', tarPath], { encoding: 'utf8' });
  assert.match(listing, /^-rwsr-xr-x 0\/0 .* bin\/su$/m);
  assert.match(listing, /^hrw-r--r-- .* links\/hard-hello link to etc\/hello.txt$/m);
  assert.match(listing, new RegExp(`^lrwxrwxrwx 1000/1001 .* links/owned -> /nonexistent$`, 'm'));
  assert.match(listing, /^crw-rw-rw- 0\/0 +1,3 .* dev\/null$/m);
  assert.match(listing, /^-rw-r--r-- 3000000\/4000000 .* data\/huge-ids$/m);
  assert.ok(listing.includes(`data/${LONG_COMPONENT}\n`));
  assert.ok(listing.includes(`links/long-target -> ${LONG_TARGET}\n`));

  const gnuDst = join(work, 'gnu-extracted');
  mkdirSync(gnuDst);
  execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', tarPath, '-C', gnuDst]);
  assert.deepEqual(await describeTree(gnuDst), await describeTree(src));
});

test('kiln unpacks what GNU tar writes (POSIX format with xattrs; GNU format long names, base-256 ids)', async () => {
  for (const format of ['posix', 'gnu']) {
    const tarPath = join(work, `gnu-${format}.tar`);
    execFileSync('tar', [`--format=${format}`, '--xattrs', '--xattrs-include=*', '--numeric-owner', '-cpf', tarPath, '-C', src, '.']);
    const dst = join(work, `from-gnu-${format}`);
    await unpackLayer(createReadStream(tarPath), dst, { mediaType: OCI_LAYER });
    const want = await describeTree(src, { mtimes: format === 'posix' });
    // (The GNU format has whole-second mtimes, so those are compared for POSIX only.)
    assert.deepEqual(await describeTree(dst, { mtimes: format === 'posix' }), want, `format ${format}`);
  }
});

test('gzip layer: digest and sizes describe the blob and the tar inside, and it unpacks to the same tree', async () => {
  const gzPath = join(work, 'rich.tar.gz');
  const r = await writeLayerTarGzip(src, gzPath);
  const blob = readFileSync(gzPath);
  assert.equal(r.compressedSize, blob.length);
  assert.equal(r.digest, 'sha256:' + createHash('sha256').update(blob).digest('hex'));
  assert.ok(r.size > r.compressedSize);
  assert.equal(execFileSync('gzip', ['-t', gzPath]).length, 0);
  const dst = join(work, 'from-gzip');
  const u = await unpackLayer(createReadStream(gzPath), dst, { mediaType: OCI_LAYER_GZIP, expectedDiffId: r.diffId });
  assert.equal(u.size, r.size);
  assert.deepEqual(await describeTree(dst), await describeTree(src));
  assert.equal(statSync(dst).mode & 0o777, 0o755);
});
