// `ADD archive.tar` with hostile entries: whatever the tar says, nothing outside the image is read, linked
// or changed. The destination dir is the root of the extraction (as BuildKit's chrootarchive makes it):
// symlinks on the way to an entry, from the base image or from earlier entries, are followed inside it;
// hard links name entries extracted before them; whiteout names are refused. Canary dirs outside the
// state dir come out unchanged (content, link count, mtimes, xattrs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, writeContext, errorLine, type BuildOutcome } from '../helpers/build.js';
import { makeCanary, tarOf, type Entry } from './crafted.js';

const suite = buildSuite();
const M = { sec: 1_234_567_890, nsec: 0 };

let n = 0;
/** Builds `dockerfile` with `t.tar` (made of `entries`) in the context, exporting the rootfs locally. */
async function buildWithTar(dockerfile: string, entries: Entry[]): Promise<BuildOutcome & { dest: string }> {
  const context = writeContext({ Dockerfile: dockerfile });
  writeFileSync(join(context, 't.tar'), await tarOf(entries));
  const dest = join(suite.outs, `out-${n++}`);
  return { ...kilnBuild(suite.root, {}, ['-o', `type=local,dest=${dest}`], { context }), dest };
}

function assertOneLineFailure(r: BuildOutcome, pattern: RegExp): void {
  assert.notEqual(r.status, 0, `the build must fail: ${r.stderr}`);
  assert.match(errorLine(r), pattern, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace: ${r.stderr}`);
}

test('ADD: a hard link through an earlier symlink entry never links a host file into the image', async () => {
  const canary = makeCanary();
  const before = await canary.snapshot();
  const climb = '../'.repeat(30) + canary.dir.slice(1);
  for (const link of [canary.dir, climb]) {
    const r = await buildWithTar(`FROM ${suite.base}\nADD t.tar /\n`, [
      { name: 'lnk', type: 'symlink', linkname: link },
      { name: 'h', type: 'hardlink', linkname: 'lnk/shadow' },
    ]);
    assertOneLineFailure(r, /^kiln: Dockerfile:2: archive \/t\.tar: hard link "h" points to "lnk\/shadow", which is not a file extracted before it$/);
  }
  // A hard link climbing out of the destination is refused outright.
  const r = await buildWithTar(`FROM ${suite.base}\nADD t.tar /opt/\n`, [{ name: 'h', type: 'hardlink', linkname: '../../../..' + canary.dir + '/shadow' }]);
  assertOneLineFailure(r, /^kiln: Dockerfile:2: archive \/t\.tar: hard link "h" target ".*" points outside the destination$/);
  assert.deepEqual(await canary.snapshot(), before, 'the canary dir is unchanged (no extra link to its shadow)');
});

test('ADD: dir times are never set through a symlink a later entry put in place of a parent', async () => {
  const canary = makeCanary();
  const before = await canary.snapshot();
  const r = await buildWithTar(`FROM ${suite.base}\nADD t.tar /x/\n`, [
    { name: 'keep/', type: 'dir', mtime: M },
    { name: 'd/', type: 'dir', mtime: M },
    { name: 'd/sub/', type: 'dir', mtime: M },
    { name: 'd', type: 'symlink', linkname: canary.dir },
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(await canary.snapshot(), before, 'the canary dir is unchanged');
  assert.equal(readlinkSync(join(r.dest, 'x/d')), canary.dir);
  assert.equal(lstatSync(join(r.dest, 'x/keep')).mtimeMs, M.sec * 1000, 'dir times inside the root are still set');
});

test('ADD extracts through existing symlinks (absolute and relative) resolved inside the root, as BuildKit does', async () => {
  const canary = makeCanary();
  const before = await canary.snapshot();
  const r = await buildWithTar(
    [
      `FROM ${suite.base}`,
      // Debian-style: var/run -> /run (absolute), lib -> usr/lib (relative), and one pointing off the root.
      `RUN mkdir -p /run /usr/lib /var && ln -s /run /var/run && ln -s usr/lib /lib && ln -s ${canary.dir} /esc && ln -s /run /dirlink`,
      'ADD t.tar /',
      'ADD t.tar /opt/',
    ].join('\n'),
    [
      { name: 'var/run/app.pid', data: 'pid\n' },
      { name: 'lib/libx.so', data: 'lib\n' },
      { name: 'esc/x', data: 'inside the image\n' },
      // An earlier entry's symlink is followed inside the root too (/etc of the image, or /opt/etc).
      { name: 'cfg', type: 'symlink', linkname: '/etc' },
      { name: 'cfg/app.conf', data: 'conf\n' },
      // A dir entry AT an existing symlink replaces it (docker's archive.Unpack: remove unless both are dirs).
      { name: 'dirlink/', type: 'dir' },
      { name: 'dirlink/f', data: 'in a real dir\n' },
    ],
  );
  assert.equal(r.status, 0, r.stderr);
  const read = (p: string) => readFileSync(join(r.dest, p), 'utf8');
  assert.equal(read('run/app.pid'), 'pid\n');
  assert.equal(readlinkSync(join(r.dest, 'var/run')), '/run', 'the symlink is kept, not replaced by a dir');
  assert.equal(read('usr/lib/libx.so'), 'lib\n');
  assert.equal(readlinkSync(join(r.dest, 'lib')), 'usr/lib');
  assert.equal(read(join(canary.dir, 'x')), 'inside the image\n', 'a link off the root lands inside it');
  assert.equal(read('etc/app.conf'), 'conf\n');
  assert.ok(lstatSync(join(r.dest, 'dirlink')).isDirectory());
  assert.equal(read('dirlink/f'), 'in a real dir\n');
  assert.ok(!existsSync(join(r.dest, 'run/f')));
  // Below /opt/ the destination is the root: its entries go to /opt/var/run (a plain dir there), /opt/etc.
  assert.equal(read('opt/var/run/app.pid'), 'pid\n');
  assert.equal(read('opt/etc/app.conf'), 'conf\n');
  assert.ok(!existsSync(join(r.dest, 'opt/run')));
  assert.deepEqual(await canary.snapshot(), before, 'the canary dir is unchanged');
});

test('ADD: classic escapes stay inside the destination (../ refused, absolute names and symlink parents inside)', async () => {
  const canary = makeCanary();
  const before = await canary.snapshot();
  let r = await buildWithTar(`FROM ${suite.base}\nADD t.tar /opt/\n`, [{ name: '../../../..' + canary.dir + '/x', data: 'pwned\n' }]);
  assertOneLineFailure(r, /^kiln: Dockerfile:2: archive \/t\.tar: entry ".*" points outside the destination$/);

  r = await buildWithTar(`FROM ${suite.base}\nADD t.tar /opt/\n`, [
    { name: canary.dir + '/abs', data: 'absolute name\n' },
    { name: 'a', type: 'symlink', linkname: canary.dir },
    { name: 'a/x', data: 'through a symlink\n' },
    { name: 'up', type: 'symlink', linkname: '../../../../../..' },
    { name: 'up/top', data: 'climbing link\n' },
  ]);
  assert.equal(r.status, 0, r.stderr);
  const read = (p: string) => readFileSync(join(r.dest, p), 'utf8');
  assert.equal(read(join('opt', canary.dir, 'abs')), 'absolute name\n');
  assert.equal(read(join('opt', canary.dir, 'x')), 'through a symlink\n');
  assert.equal(read('opt/top'), 'climbing link\n', '.. in a link stops at the destination');
  assert.deepEqual(await canary.snapshot(), before, 'the canary dir is unchanged');
});

test('ADD: a tar entry named like a whiteout is refused with one line naming the Dockerfile line and the entry', async () => {
  for (const name of ['etc/.wh.passwd', '.wh..wh..opq', 'd/.wh.sub/f']) {
    const r = await buildWithTar(`FROM ${suite.base}\nADD t.tar /\n`, [{ name, data: 'x' }]);
    assertOneLineFailure(r, new RegExp(`^kiln: Dockerfile:2: archive \/t\\.tar: entry "${name.replace(/\./g, '\\.')}" is named like a whiteout \\(\\.wh\\.[^)]*\\)`));
  }
});

test('ADD: an entry name component over 255 bytes is one line without a host path', async () => {
  const r = await buildWithTar(`FROM ${suite.base}\nADD t.tar /\n`, [{ name: `d/${'n'.repeat(300)}`, data: 'x' }]);
  assertOneLineFailure(r, /^kiln: Dockerfile:2: archive \/t\.tar: entry "d\/n+…n+" has a name component longer than 255 bytes$/);
  assert.ok(!r.stderr.includes(suite.root), 'no state dir path in the error');
});

test('ADD: device nodes and fifos are made by the fsops helper; binary xattrs and ns mtimes are kept', async () => {
  const cap = Buffer.from('0100000200040080000000000000000000000000', 'hex');
  const context = writeContext({ Dockerfile: `FROM ${suite.base}\nADD t.tar /opt/\n` });
  writeFileSync(
    join(context, 't.tar'),
    await tarOf([
      { name: 'null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
      { name: 'disk', type: 'block', mode: 0o660, uid: 6, gid: 6, devmajor: 8, devminor: 16 },
      { name: 'pipe', type: 'fifo', mode: 0o600 },
      { name: 'ping', mode: 0o755, uid: 300_000, data: 'ping\n', mtime: { sec: 1_700_000_000, nsec: 123_456_789 }, xattrs: new Map([['security.capability', cap]]) },
    ]),
  );
  const dest = join(suite.outs, `out-${n++}.tar`);
  const r = kilnBuild(suite.root, {}, ['-o', `type=tar,dest=${dest}`], { context });
  assert.equal(r.status, 0, r.stderr);
  const { TarReader } = await import('../../cache/layers/tar-reader.js');
  const reader = new TarReader();
  const headers = new Map<string, import('../../cache/layers/tar-header.js').TarHeader>();
  for (const ev of reader.feed(readFileSync(dest))) if (ev.kind === 'entry') headers.set(ev.header.name, ev.header);
  const pick = (name: string) => {
    const h = headers.get(name);
    assert.ok(h, `${name} is in the image`);
    return h;
  };
  const nul = pick('opt/null');
  assert.deepEqual([nul.type, nul.devmajor, nul.devminor, nul.mode], ['char', 1, 3, 0o666]);
  const disk = pick('opt/disk');
  assert.deepEqual([disk.type, disk.devmajor, disk.devminor, disk.mode, disk.uid, disk.gid], ['block', 8, 16, 0o660, 6, 6]);
  assert.deepEqual([pick('opt/pipe').type, pick('opt/pipe').mode], ['fifo', 0o600]);
  const ping = pick('opt/ping');
  assert.equal(ping.uid, 300_000);
  assert.deepEqual(ping.mtime, { sec: 1_700_000_000, nsec: 123_456_789 });
  assert.deepEqual(ping.xattrs.get('security.capability'), cap);
});
