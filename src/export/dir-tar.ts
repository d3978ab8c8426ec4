// Packs a directory tree into a tar stream, deterministically: names sorted, each entry's mode, owner
// and mtime (whole seconds) as on disk, hard links (same inode) written as links to the first name.
// tar-stream writes the headers; it clamps uid/gid above 262143 and writes no xattrs (see DESIGN.md).
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar-stream';

const CHUNK = 1 << 20;

type Sink = ReturnType<tar.Pack['entry']>;

async function write(sink: Sink, chunk: Buffer): Promise<void> {
  if (!sink.write(chunk)) await new Promise<void>((res) => sink.once('drain', res));
}

function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  // Linux's dev_t encoding (glibc's gnu_dev_major / gnu_dev_minor).
  const d = BigInt(rdev);
  return {
    devmajor: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    devminor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

function header(name: string, st: Stats): Parameters<tar.Pack['entry']>[0] {
  return { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, uname: '', gname: '', mtime: new Date(Math.floor(st.mtimeMs / 1000) * 1000) };
}

function entry(pack: tar.Pack, h: Parameters<tar.Pack['entry']>[0], body?: Buffer): Promise<void> {
  return new Promise<void>((res, rej) => {
    const cb = (err?: Error | null) => (err ? rej(err) : res());
    if (body) pack.entry(h, body, cb);
    else pack.entry(h, cb);
  });
}

async function fileEntry(pack: tar.Pack, path: string, h: Parameters<tar.Pack['entry']>[0], size: number): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    if (size <= CHUNK) {
      const buf = Buffer.alloc(size);
      let off = 0;
      while (off < size) {
        const n = readSync(fd, buf, off, size - off, off);
        if (n === 0) throw new Error(`${path} shrank while it was being archived`);
        off += n;
      }
      await entry(pack, { ...h, type: 'file', size }, buf);
      return;
    }
    let sink!: Sink;
    const done = new Promise<void>((res, rej) => {
      sink = pack.entry({ ...h, type: 'file', size }, (err) => (err ? rej(err) : res()));
    });
    const buf = Buffer.alloc(CHUNK);
    let pos = 0;
    while (pos < size) {
      const n = readSync(fd, buf, 0, Math.min(CHUNK, size - pos), pos);
      if (n === 0) throw new Error(`${path} shrank while it was being archived`);
      await write(sink, Buffer.from(buf.subarray(0, n)));
      pos += n;
    }
    (sink as unknown as { end(): void }).end();
    await done;
  } finally {
    closeSync(fd);
  }
}

/**
 * Adds the tree under `dir` to `pack`, names prefixed with `prefix` (e.g. `linux_amd64/`, or '' for the
 * top). `links` maps inodes to the first name seen, shared across calls so links never cross prefixes.
 */
export async function packTree(pack: tar.Pack, dir: string, prefix: string, links = new Map<string, string>()): Promise<void> {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const st = lstatSync(path);
    const tarName = prefix + name;
    const h = header(tarName, st);
    if (st.isDirectory()) {
      await entry(pack, { ...h, name: tarName + '/', type: 'directory' });
      await packTree(pack, path, tarName + '/', links);
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? links.get(key) : undefined;
      if (first !== undefined) {
        await entry(pack, { ...h, type: 'link', linkname: first, size: 0 });
      } else {
        if (st.nlink > 1) links.set(key, tarName);
        await fileEntry(pack, path, h, st.size);
      }
    } else if (st.isSymbolicLink()) {
      await entry(pack, { ...h, type: 'symlink', linkname: readlinkSync(path) });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      await entry(pack, { ...h, type: st.isCharacterDevice() ? 'character-device' : 'block-device', ...devNumbers(st.rdev) });
    } else if (st.isFIFO()) {
      await entry(pack, { ...h, type: 'fifo' });
    }
    // Sockets cannot be archived; tar skips them too.
  }
}

/** A directory entry for `name/` with the stat of `dir`. */
export function dirEntry(pack: tar.Pack, dir: string, name: string): Promise<void> {
  return entry(pack, { ...header(name, lstatSync(dir)), name: name.endsWith('/') ? name : name + '/', type: 'directory' });
}
