// Packs a merged staging tree (see rootfs.ts) into a tar stream, deterministically: names in byte order,
// each entry's mode, owner, nanosecond mtime (a PAX record when it has a fraction) and xattrs (binary
// values such as security.capability kept as bytes) as on disk, hard links (same inode) written as links
// to the first name. kiln's own tar codec writes the headers: names are bytes (a name that is not UTF-8
// goes into a PAX record as it is), ids of any size are kept. The fsops helper lists each directory with
// its entries' lstat and xattrs in one request.
import { closeSync, constants, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { FsOps, type DirEntryStat } from '../../cache/layers/fsops.js';
import { isOverlayXattr } from '../../cache/layers/overlay-xattr.js';
import { ChunkedOutput, TarWriter, writableSink } from '../../cache/layers/tar-writer.js';
import type { TarHeader } from '../../cache/layers/tar-header.js';
import { fsPath, nameToBytes } from '../../base/raw-names.js';

const S_IFMT = 0o170000;
const TYPES: Record<number, TarHeader['type']> = {
  0o040000: 'dir',
  0o100000: 'file',
  0o120000: 'symlink',
  0o020000: 'char',
  0o060000: 'block',
  0o010000: 'fifo',
};

function devNumbers(rdev: bigint): { devmajor: number; devminor: number } {
  // Linux's dev_t encoding (glibc's gnu_dev_major / gnu_dev_minor).
  return {
    devmajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    devminor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

function header(name: string, st: DirEntryStat, type: TarHeader['type']): TarHeader {
  const xattrs = [...(st.xattrs ?? [])].filter(([k]) => !isOverlayXattr(k)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    name,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    uname: '',
    gname: '',
    size: 0,
    mtime: st.mtime,
    linkname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(xattrs),
  };
}

/** A tree tar being written to a Node stream, with backpressure. */
export class TreeTar {
  readonly out: ChunkedOutput;
  readonly writer: TarWriter;
  /** Inode → first name seen, shared across packTree calls so links never cross prefixes. */
  readonly links = new Map<string, string>();
  private readonly ops = FsOps.start();

  constructor(sink: Writable) {
    this.out = new ChunkedOutput(writableSink(sink));
    this.writer = new TarWriter(this.out);
  }

  /** A directory entry `name/` for `dir` itself (a platform's subdirectory). */
  async dirEntry(dir: string, name: string): Promise<void> {
    const slash = dir.lastIndexOf('/');
    const self = (await this.ops.listDir(dir.slice(0, slash) || '/', { xattrs: true })).find((e) => e.name === dir.slice(slash + 1));
    if (!self) throw new Error(`${dir} vanished while it was packed`);
    this.writer.writeHeader(header(name.endsWith('/') ? name : name + '/', self, 'dir'));
  }

  /**
   * Adds the tree under `dir` (a staging dir) with names prefixed by `prefix` (e.g. `linux_amd64/`, or ''
   * for the top).
   */
  async packTree(dir: string, prefix: string): Promise<void> {
    const entries = (await this.ops.listDir(dir, { xattrs: true, targets: true }))
      .map((e) => ({ e, key: nameToBytes(e.name) }))
      .sort((a, b) => Buffer.compare(a.key, b.key));
    for (const { e } of entries) {
      const path = `${dir}/${e.name}`;
      const tarName = prefix + e.name;
      const type = TYPES[e.mode & S_IFMT];
      if (type === undefined) continue; // sockets cannot be archived; tar skips them too
      if (type === 'dir') {
        this.writer.writeHeader(header(tarName + '/', e, 'dir'));
        await this.packTree(path, tarName + '/');
      } else if (type === 'file') {
        const key = `${e.dev}:${e.ino}`;
        const first = e.nlink > 1 ? this.links.get(key) : undefined;
        if (first !== undefined) {
          this.writer.writeHeader({ ...header(tarName, e, 'hardlink'), linkname: first, xattrs: new Map() });
        } else {
          if (e.nlink > 1) this.links.set(key, tarName);
          await this.file(path, tarName, e);
        }
      } else if (type === 'symlink') {
        this.writer.writeHeader({ ...header(tarName, e, 'symlink'), linkname: e.target ?? '' });
      } else if (type === 'char' || type === 'block') {
        this.writer.writeHeader({ ...header(tarName, e, type), ...devNumbers(e.rdev) });
      } else {
        this.writer.writeHeader(header(tarName, e, 'fifo'));
      }
      if (this.out.pendingBytes > 0) await this.out.drain();
    }
  }

  private async file(path: string, name: string, st: DirEntryStat): Promise<void> {
    const fd = openSync(fsPath(path), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      this.writer.writeHeader({ ...header(name, st, 'file'), size: st.size });
      await this.out.copyFromFd(fd, st.size, name);
      this.writer.padData(st.size);
    } finally {
      closeSync(fd);
    }
  }

  /** The end-of-archive blocks, everything handed on. */
  async finish(): Promise<void> {
    this.writer.finish();
    await this.out.end();
    await this.close();
  }

  /** Stops the helper (after finish(), or after a failure). */
  async close(): Promise<void> {
    await this.ops.close();
  }
}
