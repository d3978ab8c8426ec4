import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { compressLayer } from '../../src/export/compression.js';
import { platformDirName, writeRootfsDir, writeRootfsTar } from '../../src/export/rootfs.js';
import type { ExportImage, ExportRequest } from '../../src/export/types.js';
import { EXTRA_MTIME, makeFixture, type Fixture } from './request-fixture.js';

let fx: Fixture;
before(async () => {
  fx = await makeFixture();
});
after(() => rmSync(fx.work, { recursive: true, force: true }));

/** Every path under `dir`, relative, sorted. */
function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    out.push(relative(base, p));
    if (lstatSync(p).isDirectory()) out.push(...walk(p, base));
  }
  return out;
}

/** Asserts the merged amd64/arm64 tree of the fixture under `root`. */
function assertMerged(root: string, arch: 'amd64' | 'arm64', suidMode = 0o4755): void {
  const elf = readFileSync(join(root, 'bin', 'busybox')).subarray(0, 20);
  assert.equal(elf.readUInt16LE(18), arch === 'amd64' ? 62 : 183, 'ELF machine of bin/busybox');
  assert.equal(lstatSync(join(root, 'bin', 'busybox')).mode & 0o7777, 0o755);
  assert.equal(readlinkSync(join(root, 'bin', 'sh')), '/bin/busybox');
  assert.ok(existsSync(join(root, 'etc', 'passwd')));
  assert.ok(!existsSync(join(root, 'etc', 'group')), 'deleted by .wh.group');
  assert.ok(!existsSync(join(root, 'etc', '.wh.group')), 'whiteouts are not files of the result');
  assert.deepEqual(readdirSync(join(root, 'usr', 'sbin')), ['newtool'], 'opaque dir keeps only its own layer');
  assert.equal(lstatSync(join(root, 'tmp')).mode & 0o7777, 0o1777);
  const run = lstatSync(join(root, 'opt', 'app', 'run.sh'));
  assert.deepEqual([run.mode & 0o7777, run.uid, run.gid], [0o750, 1000, 1001]);
  assert.equal(Math.floor(run.mtimeMs / 1000), EXTRA_MTIME);
  const hard = lstatSync(join(root, 'opt', 'app', 'hard'));
  assert.equal(hard.ino, run.ino, 'hard link shares the inode');
  assert.equal(run.nlink, 2);
  assert.equal(readlinkSync(join(root, 'opt', 'app', 'link')), 'run.sh');
  assert.equal(lstatSync(join(root, 'opt', 'app', 'suid')).mode & 0o7777, suidMode);
  const app = lstatSync(join(root, 'opt', 'app'));
  assert.deepEqual([app.mode & 0o7777, app.uid, app.gid, Math.floor(app.mtimeMs / 1000)], [0o710, 1000, 1001, EXTRA_MTIME]);
}

test('type=local gives the merged tree: whiteouts applied, modes, owners, links and mtimes kept', async () => {
  const dir = join(fx.work, 'local');
  const kept = await writeRootfsDir(fx.single, fx.content, dir, { preserveSpecial: true });
  assertMerged(dir, 'amd64');
  assert.deepEqual(kept, { devicesSkipped: 0, specialBitsDropped: 0 });
  // By default the setuid bit does not leave the image.
  const plain = join(fx.work, 'local-default');
  const summary = await writeRootfsDir(fx.single, fx.content, plain);
  assertMerged(plain, 'amd64', 0o755);
  assert.equal(summary.specialBitsDropped, 1);
});

test('type=local with two platforms writes linux_amd64 and linux_arm64', async () => {
  const dir = join(fx.work, 'local-multi');
  await writeRootfsDir(fx.multi, fx.content, dir);
  assert.deepEqual(readdirSync(dir).sort(), ['linux_amd64', 'linux_arm64']);
  assertMerged(join(dir, 'linux_amd64'), 'amd64', 0o755);
  assertMerged(join(dir, 'linux_arm64'), 'arm64', 0o755);
  assert.equal(platformDirName({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux_arm_v7');
});

test('type=tar lists the same tree as type=local, with owners and a hard link entry', async () => {
  const local = join(fx.work, 'local-for-tar');
  await writeRootfsDir(fx.single, fx.content, local, { preserveSpecial: true });
  const tarPath = join(fx.work, 'rootfs.tar');
  await writeRootfsTar(fx.single, fx.content, createWriteStream(tarPath));
  const names = execFileSync('tar', ['-tf', tarPath], { encoding: 'utf8' }).trim().split('\n').map((n) => n.replace(/\/$/, ''));
  assert.deepEqual(names, walk(local));
  const listing = execFileSync('tar', ['--numeric-owner', '-tvf', tarPath], { encoding: 'utf8' });
  assert.match(listing, /^-rwxr-x--- 1000\/1001 .* opt\/app\/hard$/m);
  assert.match(listing, /^hrwxr-x--- 1000\/1001 .* opt\/app\/run\.sh link to opt\/app\/hard$/m);
  assert.match(listing, /^-rwsr-xr-x 0\/0 .* opt\/app\/suid$/m);
  assert.match(listing, /^lrwxrwxrwx 0\/0 .* bin\/sh -> \/bin\/busybox$/m);
  // Extracted again, it is the same tree.
  const back = join(fx.work, 'from-tar');
  mkdirSync(back);
  execFileSync('tar', ['--numeric-owner', '-xpf', tarPath, '-C', back]);
  assertMerged(back, 'amd64');
});

test('type=tar with two platforms puts each tree under its platform directory', async () => {
  const tarPath = join(fx.work, 'rootfs-multi.tar');
  await writeRootfsTar(fx.multi, fx.content, createWriteStream(tarPath));
  const names = execFileSync('tar', ['-tf', tarPath], { encoding: 'utf8' }).trim().split('\n');
  assert.equal(names[0], 'linux_amd64/');
  assert.ok(names.includes('linux_arm64/bin/busybox'));
  assert.ok(!names.some((n) => n.endsWith('etc/group')));
  assert.ok(names.every((n) => n.startsWith('linux_amd64/') || n.startsWith('linux_arm64/')));
});

test('a zstd layer is unpacked too (fzstd), and a wrong diffID is refused', async () => {
  const z = await compressLayer(fx.extraTar, fx.content, { compression: 'zstd' });
  const img: ExportImage = { ...fx.amd64, layers: [fx.amd64.layers[0]!, { ...fx.amd64.layers[1]!, digest: z.digest, size: z.size, mediaType: z.mediaType }] };
  const dir = join(fx.work, 'local-zstd');
  await writeRootfsDir({ images: [img], names: [] }, fx.content, dir);
  assertMerged(dir, 'amd64', 0o755);

  const lying: ExportRequest = { images: [{ ...img, layers: [img.layers[0]!, { ...img.layers[1]!, diffId: fx.amd64.layers[0]!.diffId }] }], names: [] };
  await assert.rejects(writeRootfsDir(lying, fx.content, join(fx.work, 'local-lying')), (err: Error) => {
    assert.match(err.message, new RegExp(`^layer 1 \\(${z.digest}\\) of the linux/amd64 image: uncompressed content is ${img.layers[1]!.diffId}, but the image config says diffID ${fx.amd64.layers[0]!.diffId}$`));
    return true;
  });
});

test('a layer entry pointing outside the root is refused and nothing is written outside', async () => {
  const src = join(fx.work, 'evil-src');
  mkdirSync(src);
  writeFileSync(join(src, 'escape'), 'x');
  const evilTar = join(fx.work, 'evil.tar');
  execFileSync('tar', ['-P', '--transform', 's,^escape,../escaped,', '-C', src, '-cf', evilTar, 'escape']);
  assert.match(execFileSync('tar', ['-Ptf', evilTar], { encoding: 'utf8' }), /^\.\.\/escaped$/m);
  const c = await compressLayer(evilTar, fx.content, { compression: 'gzip' });
  const img: ExportImage = { platform: { os: 'linux', architecture: 'amd64' }, config: { ...fx.amd64.config, rootfs: { type: 'layers', diff_ids: [c.diffId] } }, layers: [{ ...c }] };
  const dir = join(fx.work, 'jail', 'root');
  await assert.rejects(writeRootfsDir({ images: [img], names: [] }, fx.content, dir), { message: `layer 0 (${c.digest}) of the linux/amd64 image: entry "../escaped" points outside the image root` });
  assert.ok(!existsSync(join(fx.work, 'jail', 'escaped')));
});

test('a hard link through a symlink of a lower layer cannot reach files outside the root', async () => {
  const lower = join(fx.work, 'hl-lower');
  mkdirSync(lower);
  execFileSync('ln', ['-s', '/etc', join(lower, 'x')]);
  const lowerTar = join(fx.work, 'hl-lower.tar');
  execFileSync('tar', ['-C', lower, '-cf', lowerTar, 'x']);
  const upper = join(fx.work, 'hl-upper');
  mkdirSync(upper);
  writeFileSync(join(upper, 'a'), 'a');
  execFileSync('ln', [join(upper, 'a'), join(upper, 'b')]);
  const upperTar = join(fx.work, 'hl-upper.tar');
  // Only the hard link's target is renamed: entry b becomes a link to x/passwd.
  execFileSync('tar', ['--transform', 's,^a$,x/passwd,RSh', '-C', upper, '-cf', upperTar, 'a', 'b']);
  assert.match(execFileSync('tar', ['-tvf', upperTar], { encoding: 'utf8' }), /b link to x\/passwd/);
  const layers = await Promise.all([lowerTar, upperTar].map((t) => compressLayer(t, fx.content, { compression: 'gzip' })));
  const img: ExportImage = {
    platform: { os: 'linux', architecture: 'amd64' },
    config: { ...fx.amd64.config, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } },
    layers: layers.map((l) => ({ ...l })),
  };
  const dir = join(fx.work, 'hl-root');
  await assert.rejects(writeRootfsDir({ images: [img], names: [] }, fx.content, dir), {
    message: `layer 1 (${layers[1]!.digest}) of the linux/amd64 image: hardlink "b" points to "x/passwd", which is not an earlier file of this image`,
  });
  assert.ok(!existsSync(join(dir, 'b')));
});
