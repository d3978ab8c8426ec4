// `kiln build -`: stdin is either a Dockerfile (no context) or, as with docker/buildx, a tar of the whole
// context, gzip-compressed or not. A tar is unpacked into a private temp dir that the build then reads as
// its context; the dir goes when kiln exits.
//
// The archive is untrusted input: no entry may leave the dir. Names with `..` are refused, symlinks are
// created only after every other entry (so no file or hard link is written through one), and a symlink
// whose parent path is itself a symlink is refused.
import { Readable } from 'node:stream';
import { chmodSync, linkSync, readFileSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decompressLayer } from '../../cache/layers/decompress.js';
import { TarReader } from '../../cache/layers/tar-reader.js';
import type { TarHeader } from '../../cache/layers/tar-header.js';
import { FlagError } from './flags.js';

let stdinSource = (): Buffer => readFileSync(0);

/** All of stdin: this process's, or the bytes a resident engine's client sent for it (src/resident/server). */
export function readStdin(): Buffer {
  return stdinSource();
}

export function provideStdin(source: (() => Buffer) | undefined): void {
  stdinSource = source ?? (() => readFileSync(0));
}

export type StdinInput = { kind: 'dockerfile'; text: string } | { kind: 'context'; dir: string };

const isGzip = (b: Buffer) => b.length > 2 && b[0] === 0x1f && b[1] === 0x8b;
const isTar = (b: Buffer) => b.length >= 512 && b.toString('latin1', 257, 262) === 'ustar';
const otherCompression: [string, number[]][] = [
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

export async function readStdinInput(data: Buffer): Promise<StdinInput> {
  for (const [name, magic] of otherCompression) {
    if (magic.every((byte, i) => data[i] === byte)) throw new FlagError(`kiln build -: the context on stdin is ${name}-compressed; send a plain or gzip-compressed tar`);
  }
  let archive = data;
  if (isGzip(data)) {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of decompressLayer(Readable.from([data]), 'gzip', 'stdin')) chunks.push(chunk);
      archive = Buffer.concat(chunks);
    } catch (err) {
      throw new FlagError(`kiln build -: the gzip stream on stdin is corrupt: ${(err as Error).message}`);
    }
    if (!isTar(archive)) throw new FlagError('kiln build -: the gzip stream on stdin is not a tar archive');
  } else if (!isTar(data)) {
    return { kind: 'dockerfile', text: data.toString('utf8') };
  }
  const dir = mkdtempSync(join(tmpdir(), 'kiln-stdin-context-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  await unpack(archive, dir);
  return { kind: 'context', dir };
}

function entryPath(name: string): string[] {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new FlagError(`kiln build -: the context tar on stdin has an entry outside it: ${JSON.stringify(name)}`);
  return parts;
}

/** True when every directory on the way to `parts` (below the root) is a real directory, not a symlink. */
function plainParents(root: string, parts: string[]): boolean {
  for (let i = 1; i < parts.length; i++) {
    try {
      if (!lstatSync(join(root, ...parts.slice(0, i))).isDirectory()) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function clear(path: string): void {
  try {
    const st = lstatSync(path);
    rmSync(path, { recursive: st.isDirectory(), force: true });
  } catch {
    /* nothing there */
  }
}

async function unpack(archive: Buffer, root: string): Promise<void> {
  const symlinks: { parts: string[]; target: string; mtime?: Date }[] = [];
  const dirs: { parts: string[]; mode: number; mtime?: Date }[] = [];
  const reader = new TarReader();
  let current: { header: TarHeader; chunks: Buffer[] } | undefined;
  const onEntry = (header: TarHeader, body: Buffer) => {
    try {
      const parts = entryPath(header.name);
      if (parts.length === 0) return;
      const path = join(root, ...parts);
      // No symlink exists yet, so creating the parents cannot leave the root.
      if (parts.length > 1) mkdirSync(join(root, ...parts.slice(0, -1)), { recursive: true });
      const mode = header.mode & 0o7777;
      const mtime = new Date(header.mtime.sec * 1000 + Math.floor(header.mtime.nsec / 1e6));
      switch (header.type) {
        case 'dir':
          if (!lstatSync(path, { throwIfNoEntry: false })?.isDirectory()) {
            clear(path);
            mkdirSync(path);
          }
          dirs.push({ parts, mode, mtime });
          break;
        case 'file':
          clear(path);
          writeFileSync(path, body, { mode });
          chmodSync(path, mode);
          utimesSync(path, mtime, mtime);
          break;
        case 'hardlink': {
          const target = join(root, ...entryPath(header.linkname));
          if (!lstatSync(target, { throwIfNoEntry: false })?.isFile()) throw new FlagError(`kiln build -: the context tar on stdin links ${JSON.stringify(header.name)} to ${JSON.stringify(header.linkname)}, which is not a file before it`);
          clear(path);
          linkSync(target, path);
          break;
        }
        case 'symlink':
          symlinks.push({ parts, target: header.linkname, mtime });
          break;
        default:
          break; // devices and fifos are not part of a build context
      }
    } catch (err) {
      throw err instanceof FlagError ? err : new FlagError(`kiln build -: cannot unpack ${JSON.stringify(header.name)} from the context tar on stdin: ${(err as Error).message}`);
    }
  };
  try {
    for (const ev of reader.feed(archive)) {
      if (ev.kind === 'entry') current = { header: ev.header, chunks: [] };
      else if (ev.kind === 'data') current!.chunks.push(Buffer.from(ev.data));
      else if (current) {
        onEntry(current.header, Buffer.concat(current.chunks));
        current = undefined;
      }
    }
    reader.end();
  } catch (err) {
    if (err instanceof FlagError) throw err;
    throw new FlagError(`kiln build -: the context tar on stdin is not readable: ${(err as Error).message}`);
  }
  for (const l of symlinks) {
    if (!plainParents(root, l.parts)) throw new FlagError(`kiln build -: the context tar on stdin has an entry below a symlink: ${JSON.stringify(l.parts.join('/'))}`);
    const path = join(root, ...l.parts);
    clear(path);
    symlinkSync(l.target, path);
  }
  // Directory modes and times last: writing into a dir changes its mtime. Only real dirs (a later symlink
  // entry may have replaced one or a parent).
  for (const d of dirs.reverse()) {
    const path = join(root, ...d.parts);
    if (!plainParents(root, d.parts) || !lstatSync(path, { throwIfNoEntry: false })?.isDirectory()) continue;
    chmodSync(path, d.mode);
    if (d.mtime) utimesSync(path, d.mtime, d.mtime);
  }
}
