// COPY/ADD into a layer with BuildKit's semantics (solver/llbsolver/file/backend.go and fsutil's copy):
// wildcards, following the top symlink only when asked, "dir contents" vs "the dir", the destination
// becoming dest/<basename> when it is an existing directory, include/exclude patterns, chown/chmod,
// fixed timestamps, hard links kept within one copy.
import { copyFileSync, mkdirSync, chownSync, chmodSync, linkSync, lchownSync, lutimesSync, readlinkSync, symlinkSync, utimesSync, writeFileSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import type { CopyAction } from '../../graph/ops.js';
import { SolveError } from '../../op.js';
import { IgnoreMatcher } from '../../../base/patterns/dockerignore.js';
import type { FsView } from './view.js';
import type { LayerTarget } from './target.js';
import type { Owner } from './owner.js';
import { expandWildcard, hasWildcard } from './glob.js';
import { tryUnpackArchive } from './unpack.js';
import { applySymbolicMode, parseSymbolicMode } from './symbolic-mode.js';
import type { Donors } from './donors.js';
import { fsPath } from '../../../base/raw-names.js';

interface CopyContext {
  src: FsView;
  target: LayerTarget;
  action: CopyAction;
  owner?: Owner;
  mtime?: Date;
  include?: IgnoreMatcher;
  exclude?: IgnoreMatcher;
  /** first destination path of each source inode (hard links) */
  inodes: Map<string, string>;
  /** Files of the layer this op made last time, to hard-link instead of copy (context sources only). */
  donors?: Donors;
  /** The mode a copied file gets from its own (stat) mode: --chmod's, or its own bits. */
  modeOf: (statMode: number) => number;
}

/** Numeric --chmod replaces every copied file's mode; a symbolic one adjusts each file's own mode. */
function modeFor(action: CopyAction): (statMode: number) => number {
  if (action.modeStr !== undefined) {
    let cmds: ReturnType<typeof parseSymbolicMode>;
    try {
      cmds = parseSymbolicMode(action.modeStr);
    } catch {
      throw new SolveError(`invalid chmod mode "${action.modeStr}": invalid syntax`);
    }
    return (m) => applySymbolicMode(cmds, m);
  }
  if (action.mode !== undefined) {
    const fixed = action.mode & 0o7777;
    return () => fixed;
  }
  return (m) => m & 0o7777;
}

/** BuildKit's cleanPath: absolute, cleaned, keeping a trailing `/` or `/.`. */
function cleanKeepingSlash(p: string): string {
  const c = posix.join('/', p);
  if (p.endsWith('/.')) return c === '/' ? '/.' : `${c}/.`;
  if (p.endsWith('/') && c !== '/') return `${c}/`;
  return c;
}

export async function copyAction(src: FsView, target: LayerTarget, action: CopyAction, owner: Owner | undefined, donors?: Donors, archiveOwner: Owner | null = owner ?? null): Promise<void> {
  const srcPath = cleanKeepingSlash(action.srcPath);
  const destPath = cleanKeepingSlash(action.destPath);
  const mtime = action.timestamp !== undefined ? new Date(action.timestamp * 1000) : undefined;
  const ctx: CopyContext = {
    src,
    target,
    action,
    owner,
    mtime,
    include: action.includePatterns?.length ? new IgnoreMatcher(action.includePatterns) : undefined,
    exclude: action.excludePatterns?.length ? new IgnoreMatcher(action.excludePatterns) : undefined,
    inodes: new Map(),
    donors: donors && src.isPlainDir ? donors : undefined,
    modeOf: modeFor(action),
  };
  if (!action.createDestPath) {
    const parent = await target.merged.resolve(posix.dirname(posix.join('/', action.destPath)), true);
    if (!(await target.merged.lookup(parent))) throw new SolveError(`failed to stat ${action.destPath}: no such file or directory`);
  }
  if (action.parents) await requireParentsSources(src, srcPath, action.includePatterns ?? []);
  // As fsutil's ResolveWildcards: only a path with wildcards is expanded (and may match nothing); a plain
  // path must exist.
  let sources = [srcPath];
  if (action.allowWildcard && hasWildcard(srcPath)) {
    sources = await expandWildcard(src, srcPath);
    if (sources.length === 0) {
      if (action.allowEmptyWildcard) return;
      throw new SolveError(`${srcPath}: no source files were specified (no matches)`);
    }
  }
  for (const s of sources) {
    if (action.attemptUnpackDockerCompatibility && (await tryUnpackArchive(src, s, target, destPath, archiveOwner ?? undefined, mtime))) continue;
    await copyOne(ctx, s, destPath);
  }
}

/**
 * COPY --parents names its sources as include patterns below srcPath; a named path (no wildcard) that is
 * not there fails as a plain COPY of it does, instead of copying nothing.
 */
async function requireParentsSources(src: FsView, srcPath: string, patterns: string[]): Promise<void> {
  for (const pattern of patterns) {
    if (hasWildcard(pattern)) continue;
    const full = posix.join('/', srcPath, pattern);
    if (!(await src.lookup(await src.resolve(full, false)))) throw new SolveError(`"${full}": not found`);
  }
}

/** Layer tars mark deletions with `.wh.NAME`: a file of that name would delete NAME in every other tool. */
const WHITEOUT_PREFIX = '.wh.';

function refuseWhiteoutNames(path: string, srcRel: string): void {
  const name = splitWhiteoutName(path);
  if (name !== undefined) {
    throw new SolveError(`cannot copy "${posix.join('/', srcRel)}" to "${posix.join('/', path)}": names starting with ".wh." (here "${name}") mark deleted files in image layers`);
  }
}

function splitWhiteoutName(path: string): string | undefined {
  return path.split('/').find((c) => c.startsWith(WHITEOUT_PREFIX));
}

async function copyOne(ctx: CopyContext, srcRel: string, destPath: string): Promise<void> {
  const { src, target, action } = ctx;
  const srcResolved = await src.resolve(srcRel, action.followSymlink ?? false);
  const srcEntry = await src.lookup(srcResolved);
  if (!srcEntry) throw new SolveError(`"${posix.join('/', srcRel)}": not found`);
  refuseWhiteoutNames(destPath, srcRel);
  const srcIsDir = srcEntry.stat.isDirectory();

  // Copy's "ensure the destination's parent": dest/ is a dir to create; dest/file needs dest/.
  const cleanDest = posix.join('/', destPath);
  const ensureDir = destPath.endsWith('/') || destPath.endsWith('/.') ? cleanDest : posix.dirname(cleanDest);
  // Directories the copy creates around what it copies: a numeric --chmod's mode, else 0755 (BuildKit
  // leaves them 0755 under a symbolic mode too).
  const mode = action.modeStr === undefined ? action.mode : undefined;
  await target.mkdirAll(await target.merged.resolve(ensureDir, true), mode ?? 0o755, ctx.owner, ctx.mtime);

  let dest = await target.merged.resolve(cleanDest, true);
  const destEntry = await target.merged.lookup(dest);
  const copyContents = action.dirCopyContents ?? false;
  if ((!copyContents && srcIsDir && destEntry) || (!srcIsDir && destEntry?.stat.isDirectory())) {
    dest = posix.join(dest, posix.basename(posix.join('/', srcRel)) || '');
  }
  if (copyContents && srcIsDir && !destEntry) await target.mkdirAll(dest, mode ?? 0o755, ctx.owner, ctx.mtime);
  else await target.mkdirAll(posix.dirname(posix.join('/', dest)), mode ?? 0o755, ctx.owner, ctx.mtime);
  await copyTree(ctx, srcResolved, '', dest);
}

function included(ctx: CopyContext, rel: string): boolean {
  if (rel === '') return true;
  if (ctx.exclude?.matches(rel)) return false;
  if (ctx.include && !ctx.include.matches(rel)) return false;
  return true;
}

/**
 * Copies src entry `srcRel` (relative path `rel` below the copy root) to `dest` in the layer. `fresh`
 * says `dest`'s parent was just created by this copy, so nothing can exist there yet: no lookups needed
 * (the fast path that makes copying a big tree cost little more than the file copies themselves).
 */
async function copyTree(ctx: CopyContext, srcRel: string, rel: string, dest: string, fresh = false): Promise<boolean> {
  const { src, target } = ctx;
  const e = await src.lookup(srcRel);
  if (!e) return false;
  const st = e.stat;
  const include = included(ctx, rel);
  if (include) refuseWhiteoutNames(posix.basename(dest), srcRel);
  if (st.isDirectory()) {
    // An excluded dir is still walked when include patterns could pick something below it.
    if (!include && !ctx.include) return false;
    const existing = fresh ? undefined : await target.merged.lookup(dest);
    let created = false;
    if (include) {
      if (fresh) mkdirSync(fsPath(target.real(dest)));
      else if (existing?.stat.isDirectory()) await target.mkdirAll(dest);
      else {
        if (existing) target.clear(dest);
        await target.mkdirAll(dest);
      }
      created = fresh || !existing?.stat.isDirectory();
    }
    let any = include;
    for (const name of await src.readdir(srcRel)) {
      const childRel = rel ? `${rel}/${name}` : name;
      any = (await copyTree(ctx, posix.join(srcRel, name), childRel, posix.join(dest, name), created)) || any;
    }
    // A dir created here takes the source's metadata (after its children, which changed its mtime); one
    // made only to hold included children (--parents, include patterns) too. An existing dir keeps its own.
    if (created || (!include && any && !existing)) applyInfo(ctx, target.real(dest), st, false);
    ctx.donors?.forget(layerPath(dest));
    return any;
  }
  if (!include) return false;
  const out = target.real(dest);
  if (!fresh) {
    await target.mkdirAll(posix.dirname(posix.join('/', dest)));
    const existing = await target.merged.lookup(dest);
    if (existing?.stat.isDirectory()) {
      if (!ctx.action.alwaysReplaceExistingDestPaths) throw new SolveError(`cannot copy to non-directory: /${dest} is a directory`);
      await target.remove(dest, true);
    }
    target.clear(dest);
  }
  const inodeKey = `${st.dev}:${st.ino}`;
  const firstLink = st.nlink > 1 ? ctx.inodes.get(inodeKey) : undefined;
  if (ctx.donors) {
    const rel = layerPath(dest);
    ctx.donors.bytes += st.size;
    if (st.isFile() && st.nlink === 1) {
      const mode = ctx.modeOf(st.mode);
      const uid = ctx.owner?.uid ?? st.uid;
      const gid = ctx.owner?.gid ?? st.gid;
      const sig = ctx.donors.signature(e.real, st, mode, uid, gid, ctx.mtime ?? st.mtime);
      if (ctx.donors.tryLink(rel, sig, out)) return true;
    } else ctx.donors.forget(rel, st.isFile());
  }
  if (firstLink) {
    linkSync(fsPath(firstLink), fsPath(out));
    return true;
  }
  if (st.isSymbolicLink()) symlinkSync(readlinkSync(fsPath(e.real), { encoding: 'buffer' }), fsPath(out));
  else if (st.isFile()) copyFileSync(fsPath(e.real), fsPath(out));
  else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
    const type = st.isFIFO() ? 0o010000 : st.isCharacterDevice() ? 0o020000 : 0o060000;
    await target.fsops.mknod(out, type | (st.mode & 0o7777), Math.floor(st.rdev / 256) & 0xfff, (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00));
  } else if (st.isSocket() && ctx.src.isPlainDir) {
    // A socket in the build context arrives as an empty file with its permissions, as BuildKit sends it.
    writeFileSync(out, '');
  } else return false; // other sockets are not copied
  if (st.nlink > 1) ctx.inodes.set(inodeKey, out);
  applyInfo(ctx, out, st, st.isSymbolicLink());
  return true;
}

/** A path in the layer as the donor record names it: relative, no leading slash. */
function layerPath(dest: string): string {
  return dest.split('/').filter((s) => s !== '' && s !== '.').join('/');
}

function applyInfo(ctx: CopyContext, path: string, st: Stats, isLink: boolean): void {
  const uid = ctx.owner?.uid ?? st.uid;
  const gid = ctx.owner?.gid ?? st.gid;
  const atime = ctx.mtime ?? st.atime;
  const mtime = ctx.mtime ?? st.mtime;
  if (isLink) {
    lchownSync(fsPath(path), uid, gid);
    lutimesSync(fsPath(path), atime, mtime);
    return;
  }
  chownSync(fsPath(path), uid, gid);
  // chown clears setuid/setgid, so the mode goes after it.
  chmodSync(fsPath(path), ctx.modeOf(st.mode));
  utimesSync(fsPath(path), atime, mtime);
}

