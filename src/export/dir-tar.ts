// Packs a merged staging tree (see rootfs.ts) into a tar stream, deterministically: names in byte order,
// each entry's mode, owner, nanosecond mtime (a PAX record when it has a fraction) and xattrs (binary
// values such as security.capability kept as bytes) as on disk, hard links (same inode) written as links
// to the first name. kiln's own tar codec writes the headers: names are bytes (a name that is not UTF-8
// goes into a PAX record as it is), ids of any size are kept. The fsops helper lists each directory with
// its entries' lstat and xattrs in one request.
import { closeSync, constants, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { headerOfEntry } from '../../cache/layers/diff.js';
import { FsOps } from '../../cache/layers/fsops.js';
import { ChunkedOutput, TarWriter, writableSink } from '../../cache/layers/tar-writer.js';
import type { TarHeader } from '../../cache/layers/tar-header.js';
import { fsPath, nameToBytes } from '../../base/raw-names.js';

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;

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
    this.writer.writeHeader(headerOfEntry(name.replace(/\/+$/, ''), self));
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
      if ((e.mode & S_IFMT) === S_IFSOCK) continue; // sockets cannot be archived; tar skips them too
      const path = `${dir}/${e.name}`;
      const h = headerOfEntry(prefix + e.name, e);
      if (h.type === 'dir') {
        this.writer.writeHeader(h);
        await this.packTree(path, h.name);
      } else if (h.type === 'file') {
        const key = `${e.dev}:${e.ino}`;
        const first = e.nlink > 1 ? this.links.get(key) : undefined;
        if (first !== undefined) {
          this.writer.writeHeader({ ...h, type: 'hardlink', size: 0, linkname: first, xattrs: new Map() });
        } else {
          if (e.nlink > 1) this.links.set(key, h.name);
          await this.file(path, h);
        }
      } else {
        this.writer.writeHeader(h);
      }
      if (this.out.pendingBytes > 0) await this.out.drain();
    }
  }

  private async file(path: string, h: TarHeader): Promise<void> {
    const fd = openSync(fsPath(path), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      this.writer.writeHeader(h);
      await this.out.copyFromFd(fd, h.size, h.name);
      this.writer.padData(h.size);
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
