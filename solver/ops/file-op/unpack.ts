// ADD of a local archive (BuildKit's attemptUnpackDockerCompatibility): a tar, plain or compressed with
// gzip, bzip2 or xz (told by its first bytes), is extracted into the destination directory instead of
// being copied. Anything else is copied as a file.
import { closeSync, openSync, readSync, createReadStream, writeFileSync, chownSync, chmodSync, symlinkSync, linkSync, lchownSync, lutimesSync, utimesSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { posix } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { TarReader, type TarEvent } from '../../../cache/layers/tar-reader.js';
import type { TarHeader } from '../../../cache/layers/tar-header.js';
import type { FsView } from './view.js';
import type { LayerTarget } from './target.js';
import type { Owner } from './owner.js';
import { SolveError } from '../../op.js';

type Kind = 'tar' | 'gzip' | 'bzip2' | 'xz';

function sniff(path: string): Kind | undefined {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(512);
  const n = readSync(fd, head, 0, 512, 0);
  closeSync(fd);
  if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (n >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (n >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (n >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  return undefined;
}

function decompressed(path: string, kind: Kind): Readable {
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  if (kind === 'tar') return file;
  if (kind === 'gzip') return file.pipe(createGunzip());
  const child = spawn(kind === 'bzip2' ? 'bzip2' : 'xz', ['-dc'], { stdio: ['pipe', 'pipe', 'inherit'] });
  file.pipe(child.stdin);
  return child.stdout;
}

export async function tryUnpackArchive(src: FsView, srcRel: string, target: LayerTarget, destPath: string, owner: Owner | undefined, mtime: Date | undefined): Promise<boolean> {
  const e = await src.lookup(await src.resolve(srcRel, true));
  if (!e || !e.stat.isFile()) return false;
  const kind = sniff(e.real);
  if (!kind) return false;
  const destDir = await target.merged.resolve(posix.join('/', destPath), true);
  await target.mkdirAll(destDir, 0o755, owner, mtime);
  const reader = new TarReader();
  const dirTimes: [string, Date][] = [];
  let current: { path: string; chunks: Buffer[]; header: TarHeader } | undefined;
  const finishEntry = async () => {
    if (!current) return;
    writeFileSync(current.path, Buffer.concat(current.chunks));
    applyMeta(current.path, current.header, owner, mtime, false);
    current = undefined;
  };
  try {
    for await (const chunk of decompressed(e.real, kind)) {
      for (const ev of reader.feed(chunk as Buffer)) {
        await handle(ev);
      }
    }
    reader.end();
    await finishEntry();
  } catch (err) {
    if (err instanceof SolveError) throw err;
    throw new SolveError(`failed to extract ${srcRel}: ${(err as Error).message}`);
  }
  for (const [p, t] of dirTimes.reverse()) utimesSync(p, mtime ?? t, mtime ?? t);
  return true;

  async function handle(ev: TarEvent): Promise<void> {
    if (ev.kind === 'entry') {
      await finishEntry();
      const h = ev.header;
      const rel = posix.normalize(posix.join('/', h.name)).slice(1);
      if (rel === '' && h.type === 'dir') return;
      if (rel.split('/').includes('..')) throw new SolveError(`archive ${srcRel}: entry ${h.name} escapes the destination`);
      const destRel = posix.join(destDir, rel);
      await target.mkdirAll(posix.dirname(destRel));
      const out = target.real(destRel);
      const existing = await target.merged.lookup(destRel);
      if (existing && !(existing.stat.isDirectory() && h.type === 'dir')) await target.remove(destRel, false);
      switch (h.type) {
        case 'dir':
          await target.mkdirAll(destRel);
          applyMeta(out, h, owner, mtime, false);
          dirTimes.push([out, new Date(h.mtime.sec * 1000)]);
          break;
        case 'file':
          current = { path: out, chunks: [], header: h };
          break;
        case 'symlink':
          symlinkSync(h.linkname, out);
          applyMeta(out, h, owner, mtime, true);
          break;
        case 'hardlink': {
          const linkRel = posix.normalize(posix.join('/', h.linkname)).slice(1);
          linkSync(target.real(posix.join(destDir, linkRel)), out);
          break;
        }
        default:
          // Devices and fifos in an ADD archive are skipped, as unprivileged extraction would.
          break;
      }
    } else if (ev.kind === 'data' && current) {
      current.chunks.push(Buffer.from(ev.data));
    } else if (ev.kind === 'entry-end') {
      await finishEntry();
    }
  }
}

function applyMeta(path: string, h: TarHeader, owner: Owner | undefined, mtime: Date | undefined, isLink: boolean): void {
  const uid = owner?.uid ?? h.uid;
  const gid = owner?.gid ?? h.gid;
  const t = mtime ?? new Date(h.mtime.sec * 1000 + Math.floor((h.mtime.nsec ?? 0) / 1e6));
  if (isLink) {
    lchownSync(path, uid, gid);
    lutimesSync(path, t, t);
    return;
  }
  chownSync(path, uid, gid);
  chmodSync(path, h.mode & 0o7777);
  utimesSync(path, t, t);
}

