// Test helpers: describe a directory tree with every attribute a layer must carry (type, mode, owner,
// nanosecond mtime, device numbers, link target, content hash, xattrs, hardlink groups), and build the
// trees the layer tests pack and unpack.
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsOps } from '../../cache/layers/fsops.js';
import { busyboxFixture } from '../helpers/fixtures.js';

export function tempDir(prefix = 'kiln-layers-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface NodeInfo {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  mtimeNs?: string;
  rdev: string;
  link?: string;
  sha256?: string;
  xattrs: Record<string, string>;
  /** For inodes with several names: the first name in walk order. */
  sameInodeAs?: string;
}

function typeOf(st: ReturnType<typeof lstatSync> & {}): string {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** Every entry under `root` (not root itself), keyed by relative path, in sorted walk order. */
export async function describeTree(root: string, opts: { mtimes?: boolean } = {}): Promise<Record<string, NodeInfo>> {
  const ops = FsOps.start();
  const out: Record<string, NodeInfo> = {};
  const inodes = new Map<string, string>();
  try {
    const visit = async (rel: string) => {
      for (const name of readdirSync(rel ? join(root, rel) : root).sort()) {
        const r = rel ? `${rel}/${name}` : name;
        const full = join(root, r);
        const st = lstatSync(full, { bigint: true });
        const xattrs: Record<string, string> = {};
        for (const [k, v] of await ops.llistxattrs(full)) xattrs[k] = v.toString('hex');
        const info: NodeInfo = {
          type: typeOf(lstatSync(full)),
          mode: (st.mode & 0o7777n).toString(8),
          uid: Number(st.uid),
          gid: Number(st.gid),
          size: st.isFile() ? Number(st.size) : 0,
          rdev: st.rdev.toString(),
          xattrs,
        };
        if (opts.mtimes !== false) info.mtimeNs = st.mtimeNs.toString();
        if (st.isSymbolicLink()) info.link = readlinkSync(full);
        if (st.isFile()) info.sha256 = createHash('sha256').update(readFileSync(full)).digest('hex');
        if (!st.isDirectory() && st.nlink > 1n) {
          const key = `${st.dev}:${st.ino}`;
          const first = inodes.get(key);
          if (first) info.sameInodeAs = first;
          else inodes.set(key, r);
        }
        out[r] = info;
        if (st.isDirectory()) await visit(r);
      }
    };
    await visit('');
  } finally {
    await ops.close();
  }
  return out;
}

/** A valid VFS_CAP_REVISION_2 security.capability value (effective; permitted CAP_SETUID|CAP_NET_BIND_SERVICE):
 *  binary, with NUL and high bytes that a string-based PAX codec would corrupt. */
export function capabilityValue(): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000001, 0);
  b.writeUInt32LE(0x00000480, 4);
  return b;
}

/** A zstd frame made of raw (stored) blocks: valid zstd without needing a compressor. */
export function zstdStoredFrame(data: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38])]; // magic, FHD, window 128 KiB
  const max = 128 * 1024;
  let off = 0;
  do {
    const n = Math.min(max, data.length - off);
    const last = off + n >= data.length ? 1 : 0;
    const h = (n << 3) | last; // block type 0 = raw
    parts.push(Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]), data.subarray(off, off + n));
    off += n;
  } while (off < data.length);
  return Buffer.concat(parts);
}

/** The amd64 layer of the busybox fixture: its blob path, media type, config diffID and source rootfs. */
interface Descriptor {
  mediaType: string;
  digest: string;
  platform?: { architecture: string };
}

export function busyboxAmd64Layer(): { blob: string; mediaType: string; diffId: string; rootfs: string } {
  const fx = busyboxFixture();
  const blob = (d: string) => join(fx.ociLayout, 'blobs', 'sha256', d.slice('sha256:'.length));
  const json = (d: string) => JSON.parse(readFileSync(blob(d), 'utf8'));
  const top = JSON.parse(readFileSync(join(fx.ociLayout, 'index.json'), 'utf8')).manifests[0] as Descriptor;
  const index = json(top.digest) as { manifests: Descriptor[] };
  const manifest = json(index.manifests.find((m) => m.platform?.architecture === 'amd64')!.digest) as { config: Descriptor; layers: Descriptor[] };
  const config = json(manifest.config.digest) as { rootfs: { diff_ids: string[] } };
  assert.equal(manifest.layers.length, 1);
  return { blob: blob(manifest.layers[0]!.digest), mediaType: manifest.layers[0]!.mediaType, diffId: config.rootfs.diff_ids[0]!, rootfs: fx.rootfs.amd64 };
}

