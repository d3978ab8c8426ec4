// Packs a merged staging tree (see rootfs.ts) into a tar stream, deterministically: names in byte order,
// each entry's mode, owner and mtime (whole seconds) as on disk, hard links (same inode) written as links
// to the first name. kiln's own tar codec writes the headers: names are bytes (a name that is not UTF-8
// goes into a PAX record as it is; staging's escaped form is turned back, see staging-names.ts), ids of
// any size are kept.
import { closeSync, constants, lstatSync, openSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import type { Writable } from 'node:stream';
import { ChunkedOutput, TarWriter } from '../../cache/layers/tar-writer.js';
import type { TarHeader } from '../../cache/layers/tar-header.js';
import { stagingNameToBytes, stagingNameToName } from './staging-names.js';

function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  // Linux's dev_t encoding (glibc's gnu_dev_major / gnu_dev_minor).
  const d = BigInt(rdev);
  return {
    devmajor: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    devminor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

function header(name: string, st: Stats, type: TarHeader['type']): TarHeader {
  return {
    name,
    type,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    uname: '',
    gname: '',
    size: 0,
    mtime: { sec: Math.floor(st.mtimeMs / 1000), nsec: 0 },
    linkname: '',
    devmajor: 0,
    devminor: 0,
    xattrs: new Map(),
  };
}

const SLASH = Buffer.from('/');

/** A tar being written to a Node stream, with backpressure. */
export class TreeTar {
  readonly out: ChunkedOutput;
  readonly writer: TarWriter;
  /** Inode → first name seen, shared across packTree calls so links never cross prefixes. */
  readonly links = new Map<string, string>();

  constructor(sink: Writable) {
    this.out = new ChunkedOutput(
      (chunk) =>
        new Promise<void>((res, rej) => {
          if (sink.destroyed) return rej(new Error('the output was closed'));
          if (sink.write(chunk)) return res();
          const onDrain = () => {
            sink.off('error', onError);
            res();
          };
          const onError = (err: Error) => {
            sink.off('drain', onDrain);
            rej(err);
          };
          sink.once('drain', onDrain);
          sink.once('error', onError);
        }),
    );
    this.writer = new TarWriter(this.out);
  }

  /** A directory entry for `name/` with the stat of `dir`. */
  dirEntry(dir: string, name: string): void {
    this.writer.writeHeader(header(name.endsWith('/') ? name : name + '/', lstatSync(dir), 'dir'));
  }

  /**
   * Adds the tree under `dir` (a staging dir) with names prefixed by `prefix` (e.g. `linux_amd64/`, or ''
   * for the top).
   */
  async packTree(dir: string | Buffer, prefix: string): Promise<void> {
    const base = typeof dir === 'string' ? Buffer.from(dir) : dir;
    const names = readdirSync(base, { encoding: 'buffer' })
      .map((n) => ({ n, bytes: stagingNameToBytes(n) }))
      .sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    for (const { n } of names) {
      const path = Buffer.concat([base, SLASH, n]);
      const st = lstatSync(path);
      const tarName = prefix + stagingNameToName(n);
      if (st.isDirectory()) {
        this.writer.writeHeader(header(tarName + '/', st, 'dir'));
        await this.packTree(path, tarName + '/');
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? this.links.get(key) : undefined;
        if (first !== undefined) {
          this.writer.writeHeader({ ...header(tarName, st, 'hardlink'), linkname: first });
        } else {
          if (st.nlink > 1) this.links.set(key, tarName);
          await this.file(path, tarName, st);
        }
      } else if (st.isSymbolicLink()) {
        this.writer.writeHeader({ ...header(tarName, st, 'symlink'), linkname: stagingNameToName(readlinkSync(path, { encoding: 'buffer' })) });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        this.writer.writeHeader({ ...header(tarName, st, st.isCharacterDevice() ? 'char' : 'block'), ...devNumbers(st.rdev) });
      } else if (st.isFIFO()) {
        this.writer.writeHeader(header(tarName, st, 'fifo'));
      }
      // Sockets cannot be archived; tar skips them too.
      if (this.out.pendingBytes > 0) await this.out.drain();
    }
  }

  private async file(path: Buffer, name: string, st: Stats): Promise<void> {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
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
  }
}
