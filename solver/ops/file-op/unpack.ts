// ADD of a local archive (BuildKit's attemptUnpackDockerCompatibility): a tar, plain or compressed with
// gzip, bzip2 or xz (told by its first bytes), is extracted into the destination directory instead of
// being copied. Anything else is copied as a file.
//
// The destination directory is the root of the extraction, as BuildKit's chrootarchive.Untar makes it:
// entry names and hard link targets that climb out with `..` are refused, absolute names are relative to
// it, and a symlink met on the way to an entry (one the image already has, `var/run -> /run`, or one an
// earlier entry made) is followed INSIDE it, never on the host. Nothing is ever opened through a host
// path that has a symlink in it: parents are resolved in the layer view first, files are written through
// O_NOFOLLOW fds, and directory times are set at the end fd-relative below the layer dir.
import { closeSync, constants, createReadStream, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readSync, readlinkSync, symlinkSync, writeSync, chmodSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { posix } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { TarReader, type TarEvent } from '../../../cache/layers/tar-reader.js';
import type { TarHeader } from '../../../cache/layers/tar-header.js';
import type { FsView } from './view.js';
import { splitPath } from './view.js';
import type { LayerTarget } from './target.js';
import type { Owner } from './owner.js';
import { SolveError } from '../../op.js';

type Kind = 'tar' | 'gzip' | 'bzip2' | 'xz';

const WHITEOUT_PREFIX = '.wh.';
const MAX_LINKS = 40; // as the kernel's MAXSYMLINKS

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
  const extractor = new ArchiveExtractor(target, destDir, srcRel, owner, mtime);
  const reader = new TarReader();
  try {
    for await (const chunk of decompressed(e.real, kind)) {
      for (const ev of reader.feed(chunk as Buffer)) await extractor.apply(ev);
    }
    reader.end();
    extractor.close();
    await extractor.finish();
  } catch (err) {
    extractor.close();
    throw extractor.describe(err);
  }
  return true;
}

/** Node's errno codes a user can cause with an archive, as words (never with the host path Node adds). */
const ERRNO_WORDS: Record<string, string> = {
  ENAMETOOLONG: 'name too long',
  ENOTDIR: 'a parent is not a directory',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
};

class ArchiveExtractor {
  private fd?: number;
  private file?: { header: TarHeader };
  private entryName = '';
  /** Directory times, set once every entry is in (creating children changes them), by path below the layer. */
  private readonly dirTimes = new Map<string, Date>();
  /**
   * Resolved parent dirs (below the extraction root) by the entry's lexical parent path; dropped when a
   * symlink appears on one, and all of them when anything is removed.
   */
  private readonly parents = new Map<string, string[]>();
  private readonly dest: string[];

  constructor(
    private readonly target: LayerTarget,
    destDir: string,
    private readonly srcRel: string,
    private readonly owner: Owner | undefined,
    private readonly mtime: Date | undefined,
  ) {
    this.dest = splitPath(destDir);
  }

  /** An error as one line naming the archive (and the entry, for file-system errors). */
  describe(err: unknown): Error {
    if (err instanceof SolveError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code && /^E[A-Z]+$/.test(code)) {
      return new SolveError(`failed to extract ${this.srcRel}: entry ${JSON.stringify(this.entryName)}: ${ERRNO_WORDS[code] ?? code}`, { cause: err });
    }
    return new SolveError(`failed to extract ${this.srcRel}: ${(err as Error).message}`, { cause: err });
  }

  private fail(message: string): never {
    throw new SolveError(`archive ${this.srcRel}: ${message}`);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.file = undefined;
  }

  async apply(ev: TarEvent): Promise<void> {
    if (ev.kind === 'data') {
      if (this.fd !== undefined) {
        let off = 0;
        while (off < ev.data.length) off += writeSync(this.fd, ev.data, off);
      }
      return;
    }
    if (ev.kind === 'entry-end') {
      if (this.fd !== undefined && this.file) {
        const h = this.file.header;
        fchownSync(this.fd, this.owner?.uid ?? h.uid, this.owner?.gid ?? h.gid);
        fchmodSync(this.fd, h.mode & 0o7777); // after chown, which clears setuid/setgid
        const t = this.timeOf(h);
        futimesSync(this.fd, t, t);
      }
      this.close();
      return;
    }
    this.close();
    await this.entry(ev.header);
  }

  /** Sets the directory times, deepest first, below the layer dir without following any symlink. */
  async finish(): Promise<void> {
    const dirs = [...this.dirTimes].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    await Promise.all(
      dirs.map(([rel, t]) => {
        const ts = { sec: Math.floor(t.getTime() / 1000), nsec: (t.getTime() % 1000) * 1e6 };
        return this.target.fsops.utimensInRoot(this.target.dir, rel, ts, ts).catch((err) => {
          // Gone or replaced meanwhile (by a later entry): its time no longer applies.
          if (!['ENOENT', 'ENOTDIR', 'ELOOP'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
        });
      }),
    );
  }

  private timeOf(h: TarHeader): Date {
    return this.mtime ?? new Date(h.mtime.sec * 1000 + Math.floor((h.mtime.nsec ?? 0) / 1e6));
  }

  /** Clean components of a name below the extraction root; `..` that climbs out of it is refused. */
  private clean(name: string, what: string): string[] {
    const parts: string[] = [];
    for (const c of name.split('/')) {
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (parts.length === 0) this.fail(`${what} ${JSON.stringify(name)} points outside the destination`);
        parts.pop();
      } else parts.push(c);
    }
    return parts;
  }

  /**
   * Resolves `parts` (below the extraction root) in the layer's merged view: every symlink on the way is
   * followed inside the root (an absolute target restarts at it, `..` stops at it), the last component is
   * kept as it is. Returns the path relative to the image root.
   */
  private async resolve(parts: string[]): Promise<string[]> {
    const parentKey = parts.slice(0, -1).join('/');
    let done = this.parents.get(parentKey);
    if (!done) {
      done = [];
      let todo = parts.slice(0, -1);
      let links = 0;
      while (todo.length > 0) {
        const c = todo.shift()!;
        if (c === '..') {
          done.pop(); // never above the extraction root
          continue;
        }
        const e = await this.target.merged.lookup([...this.dest, ...done, c].join('/'));
        if (e?.stat.isSymbolicLink()) {
          if (++links > MAX_LINKS) this.fail(`entry ${JSON.stringify(this.entryName)}: too many levels of symbolic links`);
          const link = readlinkSync(e.real);
          if (link.startsWith('/')) done = [];
          todo = [...splitPath(link), ...todo];
          continue;
        }
        done.push(c);
      }
      this.parents.set(parentKey, done);
    }
    return [...this.dest, ...done, parts[parts.length - 1]!];
  }

  /** A new symlink at `rel` changes how paths through it resolve (those were appended as missing). */
  private forgetResolutionsThrough(rel: string): void {
    const under = rel.split('/').slice(this.dest.length).join('/');
    for (const [key, done] of this.parents) {
      const r = done.join('/');
      if (r === under || r.startsWith(under + '/')) this.parents.delete(key);
    }
  }

  /** Removes what the layer has at `rel` (an existing entry is replaced); forgets what depended on it. */
  private async replace(rel: string): Promise<void> {
    await this.target.remove(rel, false);
    this.parents.clear();
    this.dirTimes.delete(rel);
    for (const k of this.dirTimes.keys()) if (k.startsWith(rel + '/')) this.dirTimes.delete(k);
  }

  private inLayer(rel: string) {
    try {
      return lstatSync(this.target.real(rel));
    } catch {
      return undefined;
    }
  }

  private async entry(h: TarHeader): Promise<void> {
    this.entryName = h.name;
    const parts = this.clean(h.name, 'entry');
    // A whiteout name would delete paths of the image below when any tool applies this layer.
    const wh = parts.find((c) => c.startsWith(WHITEOUT_PREFIX));
    if (wh) this.fail(`entry ${JSON.stringify(h.name)} is named like a whiteout (${wh}); such files would delete paths in the image when its layer is applied`);
    if (parts.length === 0) return; // the extraction root itself keeps its metadata
    const resolved = await this.resolve(parts);
    const rel = resolved.join('/');
    await this.target.mkdirAll(resolved.slice(0, -1).join('/'));
    // Below here every parent of `rel` is a real directory in the layer: host paths are safe to use up
    // to the last component, which is never followed.
    const out = this.target.real(rel);
    const existing = await this.target.merged.lookup(rel);
    const keepDir = h.type === 'dir' && existing?.stat.isDirectory();
    if (existing && !keepDir) await this.replace(rel);
    else if (!existing && h.type !== 'dir' && this.inLayer(rel)) this.target.clear(rel); // this layer's whiteout
    const uid = this.owner?.uid ?? h.uid;
    const gid = this.owner?.gid ?? h.gid;
    switch (h.type) {
      case 'dir':
        if (!this.inLayer(rel)?.isDirectory()) {
          // Over a non-dir that was just removed, the new dir hides whatever a base layer has there;
          // otherwise MkdirAll: new, a base dir copied up, or over this layer's whiteout (made opaque).
          if (existing && !keepDir) mkdirSync(out, 0o700);
          else await this.target.mkdirAll(rel);
        }
        lchownSync(out, uid, gid);
        chmodSync(out, h.mode & 0o7777); // a real dir (checked above), after chown
        this.dirTimes.set(rel, this.timeOf(h));
        return;
      case 'file':
        this.fd = openSync(out, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        this.file = { header: h };
        return;
      case 'symlink': {
        symlinkSync(h.linkname, out);
        this.forgetResolutionsThrough(rel);
        lchownSync(out, uid, gid);
        const t = this.timeOf(h);
        lutimesSync(out, t, t);
        return;
      }
      case 'hardlink': {
        // The target names an entry of this extraction, resolved inside its root like any other name.
        const targetParts = this.clean(h.linkname, `hard link ${JSON.stringify(h.name)} target`);
        if (targetParts.length === 0) this.fail(`hard link ${JSON.stringify(h.name)} points to the destination directory itself`);
        const linkRel = (await this.resolve(targetParts)).join('/');
        if (linkRel === rel) return;
        const st = this.inLayer(linkRel);
        if (!st || st.isDirectory() || (st.isCharacterDevice() && st.rdev === 0)) {
          this.fail(`hard link ${JSON.stringify(h.name)} points to ${JSON.stringify(h.linkname)}, which is not a file extracted before it`);
        }
        linkSync(this.target.real(linkRel), out); // link(2) does not follow a symlink named as its target
        return;
      }
      default:
        // Devices and fifos in an ADD archive are skipped, as unprivileged extraction would.
        return;
    }
  }
}
