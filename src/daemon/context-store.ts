// The server's content-addressed store of context files, one per tenant: blobs/<sha256 hex>, written once
// (temp file, hash verified, rename) and shared by every later build of that tenant. A build's context
// is materialised from it as a plain directory with the manifest's modes, owners and mtimes; the engine
// reads it as it would read a local context. Files are copied out of the store, not hard-linked: a
// COPY preserves hard links between the files it reads, so shared inodes would change the built layers.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { chmod, copyFile, lchown, link, lutimes, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join, dirname, posix } from 'node:path';
import type { ContextEntry } from '../protocol/builder.js';
import { UserError } from '../../base/errors.js';
import { resolveInRoot } from '../../native/in-root.js';

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export class ContextStore {
  constructor(readonly root: string) {
    mkdirSync(join(root, 'blobs'), { recursive: true });
    rmSync(join(root, 'tmp'), { recursive: true, force: true });
    mkdirSync(join(root, 'tmp'), { recursive: true });
  }

  blobPath(digest: string): string {
    return join(this.root, 'blobs', digest.slice('sha256:'.length));
  }

  has(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }

  /** Starts receiving one content; finish() verifies its digest before it becomes visible. */
  ingest(digest: string): Ingest {
    if (!DIGEST.test(digest)) throw new UserError(`context sync: invalid digest "${digest}"`);
    return new Ingest(this, digest, join(this.root, 'tmp', `${digest.slice(7, 23)}-${randomBytes(6).toString('hex')}`));
  }

  bytes(): number {
    let n = 0;
    for (const f of readdirSync(join(this.root, 'blobs'))) n += statSync(join(this.root, 'blobs', f)).size;
    return n;
  }

  /**
   * Writes the manifest's tree under `dest` (which must not exist). Every file's content must be in the
   * store. Asynchronous with a bounded number of files in flight: other builds' streams keep flowing.
   *
   * Files are hard links to a *variant*: a copy of the content with the entry's mode, owner and mtime,
   * kept per context path (variants/), made once and linked by every later build that has the same file
   * at the same path. The path is part of the variant's key so that two paths never share an inode: a
   * COPY preserves hard links between the files it reads, and must see the context's own links only.
   * `copy: true` writes private copies instead (a build that may write into its context: rw bind mounts).
   */
  async materialise(entries: ContextEntry[], dest: string, opts: { copy?: boolean } = {}): Promise<void> {
    // The manifest is the tenant's word: check it is one tree (no entry under a symlink or a file, hard
    // links only to regular files it lists) before anything is written, then write nothing through a link.
    const plan = planManifest(entries);
    await mkdir(dest, { recursive: true });
    const inside = new InsideDest(dest);
    for (const d of plan.dirs) await inside.mkdir(d);
    await pool(plan.files, 32, async (e) => {
      const out = inside.path(e.path);
      const times = mtimeOf(e.mtime_ns);
      if (e.kind === 'SYMLINK') {
        // Stored as a symlink, never followed here: the engine resolves it inside the context.
        await symlink(e.link_target, out);
        await lchown(out, e.uid, e.gid);
        await lutimes(out, times, times);
        return;
      }
      if (!opts.copy) {
        const v = await this.variant(e);
        try {
          await link(v, out);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EMLINK') throw err;
        }
      }
      await this.writeCopy(e, out);
    });
    // link(2) follows no symlink in its last components, and planManifest checked that the target is a
    // regular file this manifest put there (so not a symlink and not under one).
    for (const e of plan.links) await link(inside.path(e.hardlink_to), inside.path(e.path));
    // Directories last, deepest first: writing their children changed their mtimes.
    for (const e of plan.dirEntries.reverse()) {
      const path = inside.path(e.path);
      await lchown(path, e.uid, e.gid);
      await chmod(path, e.mode & 0o7777);
      const times = mtimeOf(e.mtime_ns);
      await lutimes(path, times, times);
    }
  }

  /** The variant of a file entry: its content with its metadata, at a path keyed by both. */
  private async variant(e: ContextEntry): Promise<string> {
    const key = createHash('sha256').update(`${e.path}\0${e.digest}\0${e.mode & 0o7777}\0${e.uid}\0${e.gid}\0${BigInt(e.mtime_ns || '0') / 1_000_000n}`).digest('hex');
    const path = join(this.root, 'variants', key.slice(0, 2), key);
    if (existsSync(path)) return path;
    await mkdir(dirname(path), { recursive: true });
    const tmp = join(this.root, 'tmp', `v-${key.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
    await this.writeCopy(e, tmp);
    await rename(tmp, path);
    return path;
  }

  private async writeCopy(e: ContextEntry, out: string): Promise<void> {
    // Small files: one read and one write (copy_file_range costs more per file than it saves here).
    // Exclusive create: never through a symlink or over a file that is already there.
    if (Number(e.size) <= 1 << 20) await writeFile(out, await readFile(this.blobPath(e.digest)), { flag: 'wx' });
    else await copyFile(this.blobPath(e.digest), out, fsConstants.COPYFILE_EXCL);
    await lchown(out, e.uid, e.gid);
    await chmod(out, e.mode & 0o7777);
    const times = mtimeOf(e.mtime_ns);
    await lutimes(out, times, times);
  }

  /** Removes variants no build links now (regenerable), and with `blobs` the synced contents too. */
  async prune(blobs: boolean): Promise<number> {
    let freed = 0;
    const vdir = join(this.root, 'variants');
    if (existsSync(vdir)) {
      for (const sub of await readdir(vdir)) {
        for (const f of await readdir(join(vdir, sub))) {
          const p = join(vdir, sub, f);
          const st = statSync(p);
          if (st.nlink === 1) {
            await rm(p, { force: true });
            freed += st.size;
          }
        }
      }
    }
    if (blobs) {
      for (const f of await readdir(join(this.root, 'blobs'))) {
        const p = join(this.root, 'blobs', f);
        freed += statSync(p).size;
        await rm(p, { force: true });
      }
    }
    return freed;
  }
}

/** Runs `fn` over `items` with at most `n` at a time; the first failure rejects (after in-flight ones settle). */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

/**
 * An mtime as seconds for utimes(): the middle of its millisecond. Copies made by the engine keep
 * millisecond precision (JavaScript Dates); a float of nanoseconds could round into the next millisecond.
 */
function mtimeOf(ns: string): number {
  const ms = BigInt(ns || '0') / 1_000_000n;
  return (Number(ms) + 0.5) / 1000;
}

interface ManifestPlan {
  /** Directories to make (the manifest's and the implied parents), parents first. */
  dirs: string[];
  dirEntries: ContextEntry[];
  /** Regular files with content and symlinks. */
  files: ContextEntry[];
  links: ContextEntry[];
}

/**
 * Checks that a manifest describes one tree inside its root and sorts its entries by what is written
 * first. Refused: a path that is not clean and relative, a path listed twice, an entry under a symlink
 * or a file of the manifest (`l -> /` then `l/etc/x`), a hard link to anything but a regular file of the
 * same manifest.
 */
export function planManifest(entries: ContextEntry[]): ManifestPlan {
  const byPath = new Map<string, ContextEntry>();
  for (const e of entries) {
    const rel = checkPath(e.path);
    if (byPath.has(rel)) throw new UserError(`context sync: path "${e.path}" appears twice in the manifest`);
    if (e.kind !== 'FILE' && e.kind !== 'DIR' && e.kind !== 'SYMLINK') throw new UserError(`context sync: "${e.path}" has an unknown kind ${JSON.stringify(e.kind)}`);
    byPath.set(rel, e);
  }
  const dirs = new Set<string>();
  const plan: ManifestPlan = { dirs: [], dirEntries: [], files: [], links: [] };
  for (const [rel, e] of byPath) {
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) {
      const parent = rel.slice(0, i);
      const p = byPath.get(parent);
      if (p && p.kind !== 'DIR') throw new UserError(`context sync: "${rel}" is inside "${parent}", which the manifest lists as a ${p.kind === 'SYMLINK' ? 'symlink' : 'file'}`);
      dirs.add(parent);
    }
    if (e.kind === 'DIR') {
      dirs.add(rel);
      plan.dirEntries.push(e);
    } else if (e.kind === 'SYMLINK') {
      if (!e.link_target || e.link_target.includes('\0')) throw new UserError(`context sync: symlink "${rel}" has no valid target`);
      plan.files.push(e);
    } else if (e.hardlink_to) {
      const target = byPath.get(checkPath(e.hardlink_to));
      if (!target || target.kind !== 'FILE' || target.hardlink_to) throw new UserError(`context sync: "${rel}" is a hard link to "${e.hardlink_to}", which is not a regular file of this manifest`);
      plan.links.push(e);
    } else {
      if (!DIGEST.test(e.digest)) throw new UserError(`context sync: file "${rel}" has no valid digest`);
      plan.files.push(e);
    }
  }
  plan.dirs = [...dirs].sort();
  plan.dirEntries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return plan;
}

/** Host paths under a context dir whose parents are checked to be real directories inside it. */
class InsideDest {
  private readonly checked = new Set<string>();
  constructor(readonly root: string) {}

  path(rel: string): string {
    const parent = posix.dirname(rel);
    if (parent !== '.' && !this.checked.has(parent)) {
      const host = join(this.root, parent);
      if (resolveInRoot(this.root, parent) !== host || !lstatSync(host).isDirectory()) throw new UserError(`context sync: "${rel}" would be written outside the context`);
      this.checked.add(parent);
    }
    return join(this.root, rel);
  }

  async mkdir(rel: string): Promise<void> {
    const p = this.path(rel);
    try {
      await mkdir(p, { mode: 0o755 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !lstatSync(p).isDirectory()) throw err;
    }
  }
}

function checkPath(p: string): string {
  const clean = posix.normalize(p);
  if (!p || p.startsWith('/') || clean !== p || clean === '.' || clean.startsWith('../') || clean === '..') throw new UserError(`context sync: invalid path "${p}" in the manifest`);
  return clean;
}

export class Ingest {
  private readonly hash = createHash('sha256');
  private fd: number;
  bytes = 0;

  constructor(
    private readonly store: ContextStore,
    readonly digest: string,
    private readonly tmp: string,
  ) {
    this.fd = openSync(tmp, 'w', 0o400);
  }

  write(data: Buffer): void {
    this.hash.update(data);
    let off = 0;
    while (off < data.length) off += writeSync(this.fd, data, off);
    this.bytes += data.length;
  }

  finish(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    const got = `sha256:${this.hash.digest('hex')}`;
    if (got !== this.digest) {
      rmSync(this.tmp, { force: true });
      throw new UserError(`context sync: content sent for ${this.digest} has digest ${got}`);
    }
    renameSync(this.tmp, this.store.blobPath(this.digest));
  }

  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.tmp, { force: true });
  }
}
