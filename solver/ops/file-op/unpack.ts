// ADD of a local archive (BuildKit's attemptUnpackDockerCompatibility): a tar, plain or compressed with
// gzip, zstd, bzip2 or xz (told by its first bytes; cache/layers/decompress.ts), is extracted into the
// destination directory instead of being copied. Anything else is copied as a file. The entries go
// through kiln's one tar entry loop (cache/layers/extract.ts); this file says how ADD places them.
//
// The destination directory is the root of the extraction, as BuildKit's chrootarchive.Untar makes it:
// entry names and hard link targets that climb out with `..` are refused, absolute names are relative to
// it, and a symlink met on the way to an entry (one the image already has, `var/run -> /run`, or one an
// earlier entry made) is followed INSIDE it, never on the host. Nothing is ever opened through a host
// path that has a symlink in it: parents are resolved in the layer view first, files are written through
// O_NOFOLLOW fds, and directory times are set at the end fd-relative below the layer dir.
import { closeSync, createReadStream, lstatSync, mkdirSync, openSync, readSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { decompressLayer, sniffCompression, type ArchiveCompression } from '../../../cache/layers/decompress.js';
import { TarExtractor } from '../../../cache/layers/extract.js';
import { rootlessMode } from '../../../cache/layers/overlay-xattr.js';
import { TarReader } from '../../../cache/layers/tar-reader.js';
import type { TarHeader } from '../../../cache/layers/tar-header.js';
import { fsPath } from '../../../base/raw-names.js';
import type { FsView } from './view.js';
import { splitPath } from './view.js';
import type { LayerTarget } from './target.js';
import type { Owner } from './owner.js';
import { SolveError } from '../../op.js';

const WHITEOUT_PREFIX = '.wh.';
const MAX_LINKS = 40; // as the kernel's MAXSYMLINKS

/** The archive's compression, or undefined when it is no tar at all (then it is copied as a file). */
function sniff(path: string): ArchiveCompression | undefined {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(512);
  const n = readSync(fd, head, 0, 512, 0);
  closeSync(fd);
  const c = sniffCompression(head.subarray(0, n));
  if (c !== 'none') return c;
  if (n >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') return 'none';
  return undefined;
}

export async function tryUnpackArchive(src: FsView, srcRel: string, target: LayerTarget, destPath: string, owner: Owner | undefined, mtime: Date | undefined): Promise<boolean> {
  const e = await src.lookup(await src.resolve(srcRel, true));
  if (!e || !e.stat.isFile()) return false;
  const compression = sniff(e.real);
  if (!compression) return false;
  const destDir = await target.merged.resolve(posix.join('/', destPath), true);
  await target.mkdirAll(destDir, 0o755, owner, mtime);
  const extractor = new ArchiveExtractor(target, destDir, srcRel, owner, mtime);
  const reader = new TarReader();
  const what = `archive ${srcRel}`;
  try {
    for await (const chunk of decompressLayer(createReadStream(fsPath(e.real), { highWaterMark: 1 << 20 }), compression, what)) {
      for (const ev of reader.feed(chunk)) {
        const p = extractor.apply(ev);
        if (p) await p;
      }
    }
    reader.end();
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

/**
 * The extraction root is `destDir` of the layer's merged view; entries land in the layer dir. Parents
 * resolve through the view (symlinks followed inside the root), replacing an entry goes through the
 * layer (a whiteout hides the base's), and hard links name entries extracted before them.
 */
class ArchiveExtractor extends TarExtractor {
  /**
   * Resolved parent dirs (below the extraction root) by the entry's lexical parent path; dropped when a
   * symlink appears on one, and all of them when anything is removed.
   */
  private readonly parents = new Map<string, string[]>();
  private readonly dest: string[];
  /** Whether clear() replaced an entry the merged view had (a dir made there hides the base's). */
  private replaced = false;

  constructor(
    private readonly target: LayerTarget,
    destDir: string,
    private readonly srcRel: string,
    owner: Owner | undefined,
    mtime: Date | undefined,
  ) {
    super(target.dir, target.fsops, {
      what: `archive ${srcRel}`,
      inside: 'the destination',
      error: (m) => new SolveError(m),
      chown: true,
      owner,
      mtime: mtime && { sec: Math.floor(mtime.getTime() / 1000), nsec: (mtime.getTime() % 1000) * 1e6 },
    });
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
          const link = readlinkSync(fsPath(e.real), 'utf8');
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
  protected override madeSymlink(rel: string): void {
    const under = rel.split('/').slice(this.dest.length).join('/');
    for (const [key, done] of this.parents) {
      const r = done.join('/');
      if (r === under || r.startsWith(under + '/')) this.parents.delete(key);
    }
  }

  private inLayer(rel: string) {
    try {
      return lstatSync(fsPath(this.target.real(rel)));
    } catch {
      return undefined;
    }
  }

  protected async place(parts: string[], h: TarHeader): Promise<string | undefined> {
    // A whiteout name would delete paths of the image below when any tool applies this layer.
    const wh = parts.find((c) => c.startsWith(WHITEOUT_PREFIX));
    if (wh) this.fail(`entry ${JSON.stringify(h.name)} is named like a whiteout (${wh}); such files would delete paths in the image when its layer is applied`);
    if (parts.length === 0) return undefined; // the extraction root itself keeps its metadata
    // A user namespace cannot make devices (the kernel refuses): skipped, as Docker's unpacker does there.
    if (rootlessMode && (h.type === 'char' || h.type === 'block')) return undefined;
    const resolved = await this.resolve(parts);
    await this.target.mkdirAll(resolved.slice(0, -1).join('/'));
    // Below here every parent of the entry is a real directory in the layer: host paths are safe to use
    // up to the last component, which is never followed.
    return resolved.join('/');
  }

  protected async clear(rel: string, keepDir: boolean): Promise<boolean> {
    const existing = await this.target.merged.lookup(rel);
    this.replaced = false;
    if (existing && keepDir && existing.stat.isDirectory()) {
      if (!this.inLayer(rel)?.isDirectory()) await this.target.mkdirAll(rel); // the base's dir, copied up
      return true;
    }
    if (existing) {
      await this.target.remove(rel, false);
      this.parents.clear();
      this.forget(rel, true);
      this.replaced = true;
    } else if (!keepDir && this.inLayer(rel)) this.target.clear(rel); // this layer's whiteout
    return false;
  }

  protected override async makeDir(rel: string): Promise<void> {
    // Over a non-dir that was just removed, the new dir hides whatever a base layer has there; otherwise
    // MkdirAll: new, or over this layer's whiteout (made opaque).
    if (this.replaced) mkdirSync(fsPath(this.target.real(rel)), 0o700);
    else await this.target.mkdirAll(rel);
  }

  protected async linkTarget(h: TarHeader): Promise<string> {
    // The target names an entry of this extraction, resolved inside its root like any other name.
    const parts = this.clean(h.linkname, `hard link ${JSON.stringify(h.name)} target`);
    if (parts.length === 0) this.fail(`hard link ${JSON.stringify(h.name)} points to the destination directory itself`);
    const rel = (await this.resolve(parts)).join('/');
    const st = this.inLayer(rel);
    if (!st || st.isDirectory() || (st.isCharacterDevice() && st.rdev === 0)) {
      this.fail(`hard link ${JSON.stringify(h.name)} points to ${JSON.stringify(h.linkname)}, which is not a file extracted before it`);
    }
    return rel;
  }
}
