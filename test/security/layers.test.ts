// A malicious base image (served by a registry on 127.0.0.1) cannot touch host files: metadata a layer
// defers to its end (xattrs, times) is never applied through a parent that a later entry turned into a
// symlink, and the classic escapes (`../`, absolute names, symlink parents, hard links through symlinks)
// stay inside the layer. Canary dirs outside the state dir must come out byte-for-byte, time-for-time and
// xattr-for-xattr unchanged.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kilnBuildAsync, errorLine, type BuildOutcome } from '../helpers/build.js';
import { tempRoot } from '../helpers/kiln.js';
import { FsOps } from '../../cache/layers/fsops.js';
import { capabilityValue } from '../cache-layers/tree.js';
import { makeCanary, serveEvilImage, tarOf, type Entry } from './crafted.js';

const root = tempRoot();
const outs = mkdtempSync(join(tmpdir(), 'kiln-out-'));
const cleanup: string[] = [root, outs];
after(() => {
  for (const p of cleanup) rmSync(p, { recursive: true, force: true });
});

const M = { sec: 1_234_567_890, nsec: 123_456_789 };
const cap = capabilityValue();
const evilXattrs = () =>
  new Map([
    ['security.capability', cap],
    ['user.kiln', Buffer.from('set-by-layer')],
  ]);

let n = 0;
/** Builds FROM a one-layer image made of `entries`, exporting the rootfs to a local dir. */
async function buildFrom(entries: Entry[]): Promise<BuildOutcome & { dest: string }> {
  const reg = await serveEvilImage([await tarOf(entries)]);
  try {
    const dest = join(outs, `out-${n++}`);
    const r = await kilnBuildAsync(root, { Dockerfile: `FROM ${reg.ref}\nCOPY f /f\n`, f: 'f\n' }, ['-o', `type=local,dest=${dest}`]);
    assert.ok(reg.requests.some((u) => u.includes('/blobs/')), 'the layer was pulled from the test registry');
    return { ...r, dest };
  } finally {
    await reg.close();
  }
}

function assertOneLineFailure(r: BuildOutcome, pattern: RegExp): void {
  assert.notEqual(r.status, 0, 'the build must fail');
  assert.match(errorLine(r), pattern, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace: ${r.stderr}`);
}

/** The unpacked snapshot of the layer holding `rel` (kiln's state dir), for xattrs export does not carry. */
function snapshotWith(rel: string): string {
  const dir = join(root, 'snapshots', 'sha256');
  const hit = readdirSync(dir).find((h) => existsSync(join(dir, h, rel)));
  assert.ok(hit, `a snapshot holding ${rel}`);
  return join(dir, hit!);
}

test('deferred xattrs and mtimes of a pulled layer never land on host files through a later symlink parent', async () => {
  const canary = makeCanary();
  cleanup.push(canary.dir);
  const before = await canary.snapshot();
  // Relative form of the same escape: enough `..` to climb from any snapshot dir to / and back down.
  const climb = '../'.repeat(40) + canary.dir.slice(1);
  const r = await buildFrom([
    { name: 'ok/', type: 'dir', mtime: M },
    { name: 'ok/y', data: 'inside\n', mtime: M, xattrs: evilXattrs() },
    { name: 'a/', type: 'dir', mtime: M },
    { name: 'a/sub/', type: 'dir', mtime: M, xattrs: evilXattrs() },
    { name: 'a/x', data: 'evil\n', mtime: M, xattrs: evilXattrs() },
    { name: 'a', type: 'symlink', linkname: canary.dir },
    { name: 'r/', type: 'dir', mtime: M },
    { name: 'r/sub/', type: 'dir', mtime: M },
    { name: 'r/shadow', data: 'evil\n', mtime: M, xattrs: evilXattrs() },
    { name: 'r', type: 'symlink', linkname: climb },
  ]);
  assert.deepEqual(await canary.snapshot(), before, 'the canary dir outside the state dir is unchanged');
  // The layer itself is fine: the build succeeds, and its metadata is applied inside the root.
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readlinkSync(join(r.dest, 'a')), canary.dir);
  assert.equal(readlinkSync(join(r.dest, 'r')), climb);
  assert.equal(readFileSync(join(r.dest, 'ok/y'), 'utf8'), 'inside\n');
  assert.equal(Math.floor(lstatSync(join(r.dest, 'ok/y')).mtimeMs / 1000), M.sec);
  assert.equal(Math.floor(lstatSync(join(r.dest, 'ok')).mtimeMs / 1000), M.sec);
  const snap = snapshotWith('ok/y');
  const ops = FsOps.start();
  try {
    const x = await ops.llistxattrs(join(snap, 'ok/y'));
    assert.deepEqual(x.get('security.capability'), cap);
    assert.equal(x.get('user.kiln')?.toString(), 'set-by-layer');
    assert.equal(lstatSync(join(snap, 'ok/y'), { bigint: true }).mtimeNs, BigInt(M.sec) * 1_000_000_000n + BigInt(M.nsec));
  } finally {
    await ops.close();
  }
});

test('classic escapes in a pulled layer stay inside it: ../, absolute names, symlink parents, hard links through symlinks', async () => {
  const canary = makeCanary();
  cleanup.push(canary.dir);
  const before = await canary.snapshot();

  let r = await buildFrom([{ name: '../../../../../../../..' + canary.dir + '/x', data: 'pwned\n' }]);
  assertOneLineFailure(r, /^kiln: Dockerfile:1: .*layer sha256:[0-9a-f]{64}: entry ".*" points outside the layer$/);

  r = await buildFrom([
    { name: 'a', type: 'symlink', linkname: canary.dir },
    { name: 'a/x', data: 'pwned\n' },
  ]);
  assertOneLineFailure(r, /"a\/x": parent a is a symlink, which unpacking does not follow$/);

  r = await buildFrom([
    { name: 'lnk', type: 'symlink', linkname: canary.dir },
    { name: 'h', type: 'hardlink', linkname: 'lnk/shadow' },
  ]);
  assertOneLineFailure(r, /parent lnk is a symlink, which unpacking does not follow$/);

  // An absolute name is relative to the layer root; a later dir entry replaces a symlink, never follows it.
  r = await buildFrom([
    { name: canary.dir + '/x', data: 'inside the root\n' },
    { name: 'l', type: 'symlink', linkname: canary.dir },
    { name: 'l/', type: 'dir', mtime: M },
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(r.dest, canary.dir, 'x'), 'utf8'), 'inside the root\n');
  assert.ok(lstatSync(join(r.dest, 'l')).isDirectory());

  assert.deepEqual(await canary.snapshot(), before, 'the canary dir outside the state dir is unchanged');
});

test('a layer entry with a name component over 255 bytes fails with one clear line', async () => {
  const long = 'n'.repeat(300);
  const r = await buildFrom([
    { name: 'd/', type: 'dir' },
    { name: `d/${long}`, data: 'x' },
  ]);
  assertOneLineFailure(r, /^kiln: Dockerfile:1: .*layer sha256:[0-9a-f]{64}: entry "d\/n+…n+" has a name component longer than 255 bytes$/);
});
