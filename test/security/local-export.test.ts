// `-o type=local` writes an untrusted image into a directory of the host, usually as root. By default no
// privilege leaves the image (no setuid/setgid bits, no device nodes, files owned by the sudo user), an
// explicit preserve-special=true keeps everything, type=tar stays a faithful archive, and nothing is ever
// written outside DEST: not through a symlink of the image, nor through one already in DEST. Canaries
// outside DEST are checked unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSuite } from '../helpers/suite.js';
import { kilnBuild, writeContext } from '../helpers/build.js';

const suite = buildSuite();

const SPECIAL_DOCKERFILE = (base: string) =>
  [
    `FROM ${base}`,
    'RUN cp /bin/busybox /suid && chmod 6755 /suid && mknod /hostmem c 1 1 && chmod 666 /hostmem && mknod /disk b 8 0 && mkfifo /fifo' +
      ' && mkdir /sticky && chmod 1777 /sticky && mkdir /shared && chmod 2775 /shared && echo plain > /plain && chown 1234:5678 /plain',
  ].join('\n') + '\n';

/** mode, uid, gid of a path (lstat). */
function meta(p: string): [number, number, number] {
  const st = lstatSync(p);
  return [st.mode & 0o7777, st.uid, st.gid];
}

let specialContext: string | undefined;
function buildSpecial(args: string[], env?: NodeJS.ProcessEnv) {
  specialContext ??= writeContext({ Dockerfile: SPECIAL_DOCKERFILE(suite.base) });
  return kilnBuild(suite.root, {}, args, { context: specialContext, env });
}

test('type=local drops setuid/setgid and skips device nodes by default, and under sudo writes files owned by the invoking user', () => {
  const dest = join(suite.outs, 'special-sudo');
  const r = buildSpecial(['-o', `type=local,dest=${dest}`], { SUDO_UID: '4321', SUDO_GID: '8765' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(meta(join(dest, 'suid')), [0o755, 4321, 8765], 'no setuid/setgid, owned by the sudo user');
  assert.equal(existsSync(join(dest, 'hostmem')), false, 'no character device');
  assert.equal(existsSync(join(dest, 'disk')), false, 'no block device');
  assert.ok(lstatSync(join(dest, 'fifo')).isFIFO(), 'a FIFO grants nothing: kept');
  assert.deepEqual(meta(join(dest, 'sticky')), [0o1777, 4321, 8765], 'sticky kept (a restriction, not a privilege)');
  assert.deepEqual(meta(join(dest, 'shared')), [0o2775, 4321, 8765], 'a directory keeps setgid (group inheritance)');
  assert.deepEqual(meta(join(dest, 'plain')), [0o644, 4321, 8765]);
  assert.equal(readFileSync(join(dest, 'plain'), 'utf8'), 'plain\n');
  assert.deepEqual(meta(join(dest, 'bin', 'busybox')).slice(1), [4321, 8765]);
  assert.equal(readlinkSync(join(dest, 'bin', 'sh')), '/bin/busybox');
  assert.deepEqual([lstatSync(join(dest, 'bin', 'sh')).uid, lstatSync(join(dest, 'bin', 'sh')).gid], [4321, 8765], 'symlinks too');
  assert.match(r.stderr, /WARNING: type=local: 2 device node\(s\) skipped, setuid\/setgid dropped from 1 file\(s\) \(preserve-special=true keeps them\)/);
});

test('type=local as plain root keeps the image owners but still drops special bits and devices', () => {
  const dest = join(suite.outs, 'special-root');
  const r = buildSpecial(['-o', `type=local,dest=${dest}`], { SUDO_UID: '', SUDO_GID: '' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(meta(join(dest, 'suid')), [0o755, 0, 0]);
  assert.deepEqual(meta(join(dest, 'plain')), [0o644, 1234, 5678]);
  assert.equal(existsSync(join(dest, 'hostmem')), false);
});

test('type=local,preserve-special=true keeps setuid bits, devices and the image owners; a bad value is one line', () => {
  const dest = join(suite.outs, 'special-kept');
  const r = buildSpecial(['-o', `type=local,dest=${dest},preserve-special=true`], { SUDO_UID: '4321', SUDO_GID: '8765' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(meta(join(dest, 'suid')), [0o6755, 0, 0]);
  const mem = lstatSync(join(dest, 'hostmem'));
  assert.ok(mem.isCharacterDevice());
  assert.deepEqual([mem.mode & 0o7777, mem.rdev], [0o666, 0x101]);
  assert.ok(lstatSync(join(dest, 'disk')).isBlockDevice());
  assert.deepEqual(meta(join(dest, 'plain')), [0o644, 1234, 5678]);
  assert.doesNotMatch(r.stderr, /device node\(s\) skipped/);
  const bad = buildSpecial(['-o', `type=local,dest=${join(suite.outs, 'special-bad')},preserve-special=yes`]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^kiln: invalid value "yes" for preserve-special in --output type=local: expected true or false$/m);
});

test('type=tar is an archive of the image as it is: setuid bits and devices are kept', () => {
  const out = join(suite.outs, 'special.tar');
  const r = buildSpecial(['-o', `type=tar,dest=${out}`], { SUDO_UID: '4321', SUDO_GID: '8765' });
  assert.equal(r.status, 0, r.stderr);
  const listing = execFileSync('tar', ['--numeric-owner', '-tvf', out], { encoding: 'utf8' });
  assert.match(listing, /^-rwsr-sr-x 0\/0 .* suid$/m);
  assert.match(listing, /^crw-rw-rw- 0\/0 +1,1 .* hostmem$/m);
  assert.match(listing, /^-rw-r--r-- 1234\/5678 .* plain$/m);
});

// ---- an image whose layer is crafted byte by byte, as a malicious registry would serve it ----

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A ustar header block (name ≤ 100 bytes). */
function tarHeader(name: string, type: '0' | '2' | '5', opts: { size?: number; linkname?: string; mode?: number } = {}): Buffer {
  const b = Buffer.alloc(512);
  const field = (s: string, off: number, len: number) => b.write(s, off, len, 'latin1');
  const octal = (v: number, off: number, len: number) => field(v.toString(8).padStart(len - 1, '0') + '\0', off, len);
  field(name, 0, 100);
  octal(opts.mode ?? (type === '5' ? 0o755 : 0o644), 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(opts.size ?? 0, 124, 12);
  octal(1_700_000_000, 136, 12);
  b.write(type, 156, 1, 'latin1');
  field(opts.linkname ?? '', 157, 100);
  field('ustar\u000000', 257, 8);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  field(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return b;
}

function tarFile(name: string, body: string): Buffer[] {
  const data = Buffer.from(body);
  return [tarHeader(name, '0', { size: data.length }), data, Buffer.alloc((512 - (data.length % 512)) % 512)];
}

/** An OCI layout with one linux image of the given uncompressed layer tars, tagged `latest`. */
function ociLayout(dir: string, layers: Buffer[]): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer) => {
    const hex = sha256(b);
    writeFileSync(join(dir, 'blobs', 'sha256', hex), b);
    return { digest: `sha256:${hex}`, size: b.length };
  };
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
  const layerDescs = layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(l) }));
  const config = put(Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layerDescs.map((l) => l.digest) } })));
  const manifest = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: layerDescs })));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, platform: { architecture: arch, os: 'linux' }, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }));
}

/** A directory outside every DEST, with one file; returns a check that nothing in it changed. */
function canary(): { dir: string; check: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-canary-'));
  writeFileSync(join(dir, 'keep'), 'canary\n');
  utimesSync(join(dir, 'keep'), 1_000_000_000, 1_000_000_000);
  return {
    dir,
    check: () => {
      assert.deepEqual(readdirSync(dir), ['keep'], 'nothing was added next to the canary');
      assert.equal(readFileSync(join(dir, 'keep'), 'utf8'), 'canary\n');
      const st = lstatSync(join(dir, 'keep'));
      assert.deepEqual([st.mtimeMs, st.mode & 0o7777, st.uid], [1_000_000_000_000, 0o644, 0]);
    },
  };
}

test('type=local never writes through a symlink: not one of the image, not one already in DEST', () => {
  const c = canary();
  try {
    // Layer 1 plants symlinks to the canary; layer 2 writes below and over them (kiln's own unpacker
    // refuses both in one layer, so the attack needs two).
    const lower = Buffer.concat([
      tarHeader('a', '2', { linkname: c.dir, mode: 0o777 }),
      tarHeader('f', '2', { linkname: join(c.dir, 'keep'), mode: 0o777 }),
      // A symlink that stays: written as a link, not followed.
      tarHeader('out', '2', { linkname: c.dir, mode: 0o777 }),
      Buffer.alloc(1024),
    ]);
    const upper = Buffer.concat([
      ...tarFile('a/x', 'inside\n'),
      ...tarFile('f', 'replaced\n'),
      // Names DEST already holds as symlinks to the canary.
      tarHeader('pre/', '5'),
      ...tarFile('pre/y', 'y\n'),
      ...tarFile('g', 'g\n'),
      Buffer.alloc(1024),
    ]);
    const layout = mkdtempSync(join(tmpdir(), 'kiln-evil-layout-'));
    ociLayout(layout, [lower, upper]);
    const dest = join(suite.outs, 'symlinks');
    mkdirSync(dest);
    symlinkSync(c.dir, join(dest, 'pre'));
    symlinkSync(join(c.dir, 'keep'), join(dest, 'g'));
    const r = kilnBuild(suite.root, { Dockerfile: 'FROM evil\nCOPY --from=evil /g /g2\n' }, ['--build-context', `evil=oci-layout://${layout}:latest`, '-o', `type=local,dest=${dest}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(lstatSync(join(dest, 'a')).isDirectory());
    assert.equal(readFileSync(join(dest, 'a', 'x'), 'utf8'), 'inside\n');
    assert.ok(lstatSync(join(dest, 'f')).isFile());
    assert.equal(readFileSync(join(dest, 'f'), 'utf8'), 'replaced\n');
    assert.ok(lstatSync(join(dest, 'pre')).isDirectory(), "DEST's symlink was replaced by the image's directory");
    assert.equal(readFileSync(join(dest, 'pre', 'y'), 'utf8'), 'y\n');
    assert.ok(lstatSync(join(dest, 'g')).isFile());
    assert.equal(readFileSync(join(dest, 'g2'), 'utf8'), 'g\n');
    assert.equal(readlinkSync(join(dest, 'out')), c.dir);
    c.check();
    rmSync(layout, { recursive: true, force: true });
  } finally {
    rmSync(c.dir, { recursive: true, force: true });
  }
});

test('type=local from a remote builder (kiln serve) follows the same policy on the client', async () => {
  const { serve, clientEnv, kilnClient } = await import('../daemon/serve-helpers.js');
  const sock = join(mkdtempSync(join(tmpdir(), 'kiln-sock-')), 'kiln.sock');
  const server = await serve(['--addr', `unix://${sock}`]);
  try {
    specialContext ??= writeContext({ Dockerfile: SPECIAL_DOCKERFILE(suite.base) });
    const dest = join(suite.outs, 'special-remote');
    const r = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, '-o', `type=local,dest=${dest}`, specialContext], clientEnv({ SUDO_UID: '4321', SUDO_GID: '8765' }));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(meta(join(dest, 'suid')), [0o755, 4321, 8765]);
    assert.equal(existsSync(join(dest, 'hostmem')), false);
    assert.deepEqual(meta(join(dest, 'plain')), [0o644, 4321, 8765]);
    assert.deepEqual(meta(join(dest, 'sticky')), [0o1777, 4321, 8765]);
    const kept = join(suite.outs, 'special-remote-kept');
    const k = kilnClient(suite.root, ['build', '--progress', 'plain', '--builder', `unix://${sock}`, '-o', `type=local,dest=${kept},preserve-special=true`, specialContext], clientEnv());
    assert.equal(k.status, 0, k.stderr);
    assert.deepEqual(meta(join(kept, 'suid')), [0o6755, 0, 0]);
    assert.ok(lstatSync(join(kept, 'hostmem')).isCharacterDevice());
    assert.deepEqual(meta(join(kept, 'plain')), [0o644, 1234, 5678]);
  } finally {
    await server.stop();
  }
});
