// What tar-stream lost on every export path, kept now that kiln's own tar stack reads and writes them:
// a binary security.capability xattr, a uid above 262143 and nanosecond mtimes (PAX records). Each
// output path gets the same one-layer image: type=tar, type=local (with and without preserve-special),
// a remote builder's rootfs stream written by the client, the client's untar, and OCI/docker archives.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { ContentStore } from '../../cache/content-store.js';
import { FsOps } from '../../cache/layers/fsops.js';
import type { TarHeader } from '../../cache/layers/tar-header.js';
import { TarReader } from '../../cache/layers/tar-reader.js';
import { extractTar } from '../../src/client/untar.js';
import { compressLayer } from '../../src/export/compression.js';
import { writeDockerArchive } from '../../src/export/docker-archive.js';
import { writeOciArchive } from '../../src/export/oci-archive.js';
import { writeRootfsDir, writeRootfsTar, writeRootfsTarToDir } from '../../src/export/rootfs.js';
import type { ExportRequest } from '../../src/export/types.js';
import { tarOf } from '../security/crafted.js';
import { nameFromBytes } from '../../base/raw-names.js';

// VFS_CAP_REVISION_2 | effective; permitted = cap_net_bind_service | cap_setfcap (bit 31: a 0x80 byte).
const CAPABILITY = Buffer.from('0100000200040080000000000000000000000000', 'hex');
const USER_XATTR = Buffer.from([0x00, 0xff, 0xfe, 0x0a, 0x3d]);
const PING_MTIME = { sec: 1_700_000_000, nsec: 987_654_321 };
const DIR_MTIME = { sec: 1_600_000_000, nsec: 123_456_789 };
const BIG_UID = 300_000;
/** "bin/caf\xe9": a name that is not UTF-8, whose time is set by the helper through its bytes. */
const RAW_NAME = nameFromBytes(Buffer.from('bin/caf\xe9', 'latin1'));

let work: string;
let content: ContentStore;
let req: ExportRequest;
let layerDigest: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'kiln-tar-attrs-'));
  content = new ContentStore(join(work, 'content'));
  const layer = await tarOf([
    { name: 'bin/', type: 'dir', mtime: DIR_MTIME },
    { name: RAW_NAME, mtime: PING_MTIME, data: 'raw\n' },
    { name: 'bin/ping', mode: 0o755, uid: BIG_UID, gid: BIG_UID + 1, mtime: PING_MTIME, data: 'ping\n', xattrs: new Map([['security.capability', CAPABILITY], ['user.raw', USER_XATTR]]) },
  ]);
  writeFileSync(join(work, 'layer.tar'), layer);
  const c = await compressLayer(join(work, 'layer.tar'), content, { compression: 'gzip' });
  layerDigest = c.digest;
  req = {
    names: ['docker.io/library/kiln-tar-attrs:latest'],
    images: [
      {
        platform: { os: 'linux', architecture: 'amd64' },
        config: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [c.diffId] }, history: [{ created_by: 'ADD layer /' }] },
        layers: [{ diffId: c.diffId, digest: c.digest, size: c.size, mediaType: c.mediaType }],
      },
    ],
  };
});
after(() => rmSync(work, { recursive: true, force: true }));

/** Everything written to a stream by `write`. */
async function collect(write: (out: Writable) => Promise<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await write(out);
  return Buffer.concat(chunks);
}

/** The entries of a tar: headers and data by name. */
function entries(tar: Buffer): Map<string, { header: TarHeader; data: Buffer }> {
  const out = new Map<string, { header: TarHeader; data: Buffer }>();
  const reader = new TarReader();
  let cur: { header: TarHeader; data: Buffer } | undefined;
  for (const ev of reader.feed(tar)) {
    if (ev.kind === 'entry') out.set(ev.header.name, (cur = { header: ev.header, data: Buffer.alloc(0) }));
    else if (ev.kind === 'data') cur!.data = Buffer.concat([cur!.data, ev.data]);
  }
  reader.end();
  return out;
}

function assertTarEntry(h: TarHeader | undefined): void {
  assert.ok(h, 'bin/ping is in the tar');
  assert.equal(h.uid, BIG_UID);
  assert.equal(h.gid, BIG_UID + 1);
  assert.deepEqual(h.mtime, PING_MTIME, 'sub-second mtime (PAX)');
  assert.deepEqual(h.xattrs.get('security.capability'), CAPABILITY, 'binary capability, byte for byte');
  assert.deepEqual(h.xattrs.get('user.raw'), USER_XATTR);
}

/** Asserts the tree written under `dir`; `capability` says whether the capability must be there. */
async function assertTree(dir: string, capability: boolean): Promise<void> {
  const st = lstatSync(join(dir, 'bin', 'ping'), { bigint: true });
  assert.equal(readFileSync(join(dir, 'bin', 'ping'), 'utf8'), 'ping\n');
  assert.equal(st.uid, BigInt(BIG_UID));
  assert.equal(st.gid, BigInt(BIG_UID + 1));
  assert.equal(st.mtimeNs, BigInt(PING_MTIME.sec) * 1_000_000_000n + BigInt(PING_MTIME.nsec), 'file mtime to the nanosecond');
  assert.equal(lstatSync(join(dir, 'bin'), { bigint: true }).mtimeNs, BigInt(DIR_MTIME.sec) * 1_000_000_000n + BigInt(DIR_MTIME.nsec), 'dir mtime to the nanosecond');
  const raw = lstatSync(Buffer.from(`${dir}/bin/caf\xe9`, 'latin1'), { bigint: true });
  assert.equal(raw.mtimeNs, BigInt(PING_MTIME.sec) * 1_000_000_000n + BigInt(PING_MTIME.nsec), 'a non-UTF-8 name keeps its mtime');
  const ops = FsOps.start();
  try {
    const xattrs = await ops.llistxattrs(join(dir, 'bin', 'ping'));
    assert.deepEqual(xattrs.get('security.capability'), capability ? CAPABILITY : undefined);
    assert.deepEqual(xattrs.get('user.raw'), USER_XATTR);
  } finally {
    await ops.close();
  }
}

test('type=tar keeps a binary security.capability, uid 300000 and ns mtimes', async () => {
  const tar = await collect((out) => writeRootfsTar(req, content, out));
  const all = entries(tar);
  assertTarEntry(all.get('bin/ping')?.header);
  assert.deepEqual(all.get('bin/')?.header.mtime, DIR_MTIME);
  assert.deepEqual(all.get(RAW_NAME)?.header.mtime, PING_MTIME, 'the non-UTF-8 name, as its bytes');
});

test('type=local keeps them with preserve-special; by default the capability (a privilege) is dropped and counted', async () => {
  const kept = join(work, 'local-special');
  assert.deepEqual(await writeRootfsDir(req, content, kept, { preserveSpecial: true }), { devicesSkipped: 0, specialBitsDropped: 0 });
  await assertTree(kept, true);
  const plain = join(work, 'local-default');
  const summary = await writeRootfsDir(req, content, plain, {});
  assert.equal(summary.specialBitsDropped, 1);
  await assertTree(plain, false);
});

test("a remote builder's rootfs stream, written by the client (type=local), keeps them", async () => {
  const stream = new PassThrough();
  const dir = join(work, 'remote-local');
  const [, summary] = await Promise.all([writeRootfsTar(req, content, stream), writeRootfsTarToDir(stream, dir, { preserveSpecial: true })]);
  assert.equal(summary.specialBitsDropped, 0);
  await assertTree(dir, true);
});

test("the client's untar keeps them", async () => {
  const tar = await collect((out) => writeRootfsTar(req, content, out));
  const dir = join(work, 'untar');
  await extractTar(Readable.from([tar]), dir);
  await assertTree(dir, true);
});

test('OCI and docker archives carry the layer with them', async () => {
  for (const write of [writeOciArchive, writeDockerArchive]) {
    const archive = entries(await collect((out) => write(req, content, out)));
    const blob = [...archive].find(([name]) => name.endsWith(layerDigest.slice(7)));
    assert.ok(blob, `${write.name}: the layer blob is in the archive`);
    assertTarEntry(entries(gunzipSync(blob[1].data)).get('bin/ping')?.header);
  }
});

test('without root, type=local is written with the caller as owner and without the device nodes it cannot make', async () => {
  const tar = await tarOf([
    { name: 'dev/', type: 'dir' },
    { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'dev/pipe', type: 'fifo', mode: 0o600 },
    { name: 'etc/hostname', data: 'kiln\n', uid: BIG_UID, mtime: PING_MTIME },
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'kiln-unpriv-'));
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'in.tar'), tar);
  // The client half of a remote type=local export, run as nobody.
  const script = `import { createReadStream } from 'node:fs';
    const { writeRootfsTarToDir } = await import(${JSON.stringify(new URL('../../src/export/rootfs.js', import.meta.url).href)});
    const s = await writeRootfsTarToDir(createReadStream(${JSON.stringify(join(dir, 'in.tar'))}), ${JSON.stringify(join(dir, 'out'))});
    console.log(JSON.stringify(s));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', env: { ...process.env, TMPDIR: dir } });
  try {
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(join(dir, 'out', 'dev', 'null')), 'no device node');
    assert.ok(lstatSync(join(dir, 'out', 'dev', 'pipe')).isFIFO(), 'a fifo needs no privilege');
    const st = lstatSync(join(dir, 'out', 'etc', 'hostname'), { bigint: true });
    assert.equal(st.uid, 65534n, "the caller's own file");
    assert.equal(st.mtimeNs, BigInt(PING_MTIME.sec) * 1_000_000_000n + BigInt(PING_MTIME.nsec));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
