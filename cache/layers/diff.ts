// An overlay upperdir (a RUN's changes) → an OCI layer tar. Whiteouts (0/0 char devices) become
// `.wh.<name>` entries, opaque dirs get a `.wh..wh..opq` entry, files sharing an inode become hardlink
// entries to the first path, overlay's own xattrs stay behind. Entries go in byte order of names, one dir
// at a time (as BuildKit walks), with no uname/gname and no atime, so the same tree gives the same bytes.
import { DigestCounter, digestingStream } from '../../base/oci/digest.js';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, createWriteStream, lstatSync, openSync, renameSync, rmSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { FsOps, type DirEntryStat, type Timespec } from './fsops.js';
import { createParallelGzip } from './gzip-parallel.js';
import { isOpaqueXattrs, isOverlayXattr } from './overlay-xattr.js';
import { newHeader, type TarHeader } from './tar-header.js';
import { ChunkedOutput, TarWriter, writableSink } from './tar-writer.js';
import { fsPath, nameToBytes, readdirRaw, readlinkRaw } from '../../base/raw-names.js';

export interface LayerTarOptions {
  /** SOURCE_DATE_EPOCH (seconds): later mtimes are clamped to it, as BuildKit does. */
  sourceDateEpoch?: number;
}

export const OPAQUE_MARKER = '.wh..wh..opq';
export const WHITEOUT_PREFIX = '.wh.';

interface WalkEntry {
  rel: string;
  full: string;
  st: DirEntryStat;
}

const S_IFMT = 0o170000;
const isDir = (st: DirEntryStat) => (st.mode & S_IFMT) === 0o040000;
const isFile = (st: DirEntryStat) => (st.mode & S_IFMT) === 0o100000;
const isSymlink = (st: DirEntryStat) => (st.mode & S_IFMT) === 0o120000;
const isSocket = (st: DirEntryStat) => (st.mode & S_IFMT) === 0o140000;
const isCharDev = (st: DirEntryStat) => (st.mode & S_IFMT) === 0o020000;
const isBlockDev = (st: DirEntryStat) => (st.mode & S_IFMT) === 0o060000;
const isFifo = (st: DirEntryStat) => (st.mode & S_IFMT) === 0o010000;

const byteOrder = (a: { key: Buffer }, b: { key: Buffer }) => Buffer.compare(a.key, b.key);

/**
 * Depth-first, each dir's children in byte order of their names, with their lstat, xattrs and symlink
 * targets; sockets are not layer content. The dirs of one depth are listed together: one pipelined
 * batch of requests to the fsops helper per level of the tree.
 */
async function walk(root: string, ops: FsOps): Promise<WalkEntry[]> {
  const listings = new Map<string, DirEntryStat[]>();
  let level = [''];
  while (level.length > 0) {
    const lists = await Promise.all(level.map((rel) => ops.listDir(rel ? join(root, rel) : root, { xattrs: true, targets: true })));
    const next: string[] = [];
    level.forEach((rel, i) => {
      const sorted = lists[i]!
        .filter((e) => !isSocket(e))
        .map((e) => ({ e, key: nameToBytes(e.name) }))
        .sort(byteOrder)
        .map(({ e }) => e);
      listings.set(rel, sorted);
      for (const e of sorted) if (isDir(e)) next.push(rel ? `${rel}/${e.name}` : e.name);
    });
    level = next;
  }
  const out: WalkEntry[] = [];
  const visit = (relDir: string) => {
    for (const st of listings.get(relDir) ?? []) {
      const rel = relDir ? `${relDir}/${st.name}` : st.name;
      out.push({ rel, full: join(root, rel), st });
      if (isDir(st)) visit(rel);
    }
  };
  visit('');
  return out;
}

function isWhiteout(st: DirEntryStat): boolean {
  return isCharDev(st) && st.rdev === 0n;
}

const isOpaque = isOpaqueXattrs;

function clampTime(t: Timespec, epoch: number | undefined): Timespec {
  if (epoch !== undefined && (t.sec > epoch || (t.sec === epoch && t.nsec > 0))) return { sec: epoch, nsec: 0 };
  return t;
}

function mtimeOfStats(st: BigIntStats, epoch: number | undefined): Timespec {
  let sec = st.mtimeNs / 1_000_000_000n;
  let nsec = st.mtimeNs % 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return clampTime({ sec: Number(sec), nsec: Number(nsec) }, epoch);
}

// Linux's dev_t encoding (glibc's major()/minor()).
function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

function marker(name: string, mtime: Timespec): TarHeader {
  return newHeader({ name, mode: 0, mtime });
}

/**
 * The tar header of a listed entry: type, size, device numbers, symlink target (listed with `targets`)
 * and xattrs (overlay's own left out, sorted) from its lstat; a dir's name gets its "/".
 */
export function headerOfEntry(name: string, st: DirEntryStat, mtime: Timespec = st.mtime): TarHeader {
  const xattrs = [...(st.xattrs ?? [])].filter(([k]) => !isOverlayXattr(k)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const h = newHeader({ name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime, xattrs: new Map(xattrs) });
  if (isDir(st)) {
    h.type = 'dir';
    h.name += '/';
  } else if (isSymlink(st)) {
    h.type = 'symlink';
    h.linkname = st.target ?? '';
  } else if (isFile(st)) {
    h.size = st.size;
  } else if (isFifo(st)) {
    h.type = 'fifo';
  } else if (isCharDev(st) || isBlockDev(st)) {
    h.type = isCharDev(st) ? 'char' : 'block';
    h.devmajor = devMajor(st.rdev);
    h.devminor = devMinor(st.rdev);
  }
  return h;
}

function headerOf(e: WalkEntry, epoch: number | undefined): TarHeader {
  const h = headerOfEntry(e.rel, e.st, clampTime(e.st.mtime, epoch));
  if (h.type === 'symlink' && e.st.target === undefined) h.linkname = readlinkRaw(e.full);
  return h;
}

/**
 * Writes the layer tar of `upperDir` to `out` and ends it. Returns the diffID (sha256 of the tar) and its
 * size in bytes.
 */
export async function writeLayerTar(upperDir: string, out: Writable, opts: LayerTarOptions = {}): Promise<{ diffId: string; size: number }> {
  const epoch = opts.sourceDateEpoch;
  if (epoch !== undefined && (!Number.isSafeInteger(epoch) || epoch < 0)) throw new RangeError(`sourceDateEpoch must be a non-negative integer, got ${epoch}`);
  const ops = FsOps.start();
  let entries: WalkEntry[];
  let rootXattrs: Map<string, Buffer>;
  try {
    [rootXattrs, entries] = await Promise.all([ops.llistxattrs(upperDir), walk(upperDir, ops)]);
  } finally {
    await ops.close();
  }

  const output = new ChunkedOutput(writableSink(out));
  const tar = new TarWriter(output);
  if (isOpaque(rootXattrs)) tar.writeHeader(marker(OPAQUE_MARKER, mtimeOfStats(lstatSync(upperDir, { bigint: true }), epoch)));
  const firstPathOfInode = new Map<string, string>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const slash = e.rel.lastIndexOf('/');
    if (isWhiteout(e.st)) {
      const name = `${e.rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${e.rel.slice(slash + 1)}`;
      tar.writeHeader(marker(name, clampTime(e.st.mtime, epoch)));
      continue;
    }
    const h = headerOf(e, epoch);
    if (h.type !== 'dir' && e.st.nlink > 1) {
      const key = `${e.st.dev}:${e.st.ino}`;
      const first = firstPathOfInode.get(key);
      if (first !== undefined) {
        tar.writeHeader({ ...h, type: 'hardlink', linkname: first, size: 0, xattrs: new Map() });
        continue;
      }
      firstPathOfInode.set(key, e.rel);
    }
    tar.writeHeader(h);
    if (h.type === 'file' && h.size > 0) {
      const fd = openSync(fsPath(e.full), constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        await output.copyFromFd(fd, h.size, e.full);
      } finally {
        closeSync(fd);
      }
      tar.padData(h.size);
    }
    if (h.type === 'dir' && isOpaque(e.st.xattrs ?? new Map())) tar.writeHeader(marker(`${e.rel}/${OPAQUE_MARKER}`, h.mtime));
    if (output.pendingBytes > 0) await output.drain();
  }
  tar.finish();
  await output.end();
  out.end();
  await finished(out, { readable: false });
  return { diffId: output.digest(), size: output.bytes };
}

/**
 * Writes the gzip-compressed layer of `upperDir` to `outPath` (atomically: a temp file beside it, synced,
 * then renamed). `digest`/`compressedSize` describe the blob; `diffId`/`size` the tar inside.
 */
export async function writeLayerTarGzip(
  upperDir: string,
  outPath: string,
  opts: LayerTarOptions = {},
): Promise<{ diffId: string; digest: string; size: number; compressedSize: number }> {
  const tmp = `${outPath}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const gzip = createParallelGzip();
  const blob = new DigestCounter();
  const written = pipeline(gzip, digestingStream(blob), createWriteStream(tmp, { flush: true }));
  written.catch(() => {}); // awaited below; avoid an unhandled rejection while the tar is still being written
  try {
    const { diffId, size } = await writeLayerTar(upperDir, gzip, opts);
    await written;
    renameSync(tmp, outPath);
    return { diffId, digest: blob.digest(), size, compressedSize: blob.bytes };
  } catch (err) {
    gzip.destroy();
    await written.catch(() => {});
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** True when `dir` holds nothing that would go into a layer (it is empty, or holds only sockets). */
export function isEmptyLayerDir(dir: string): boolean {
  for (const name of readdirRaw(dir)) {
    // Anything else is a change, even an empty directory (it may be new, or differ in mode/owner).
    if (!lstatSync(fsPath(join(dir, name))).isSocket()) return false;
  }
  return true;
}
