// The server's content-addressed store of context files, one per tenant: blobs/<sha256 hex>, written once
// (temp file, hash verified, rename) and shared by every later build of that tenant. A build's context
// is materialised from it as a plain directory with the manifest's modes, owners and mtimes; the engine
// reads it as it would read a local context. Files are copied out of the store, not hard-linked: a
// COPY preserves hard links between the files it reads, so shared inodes would change the built layers.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { chmod, chown, copyFile, lchown, link, lutimes, mkdir, readdir, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join, dirname, posix } from 'node:path';
import type { ContextEntry } from './protocol.js';
import { UserError } from '../util/errors.js';

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
    await mkdir(dest, { recursive: true });
    const seen = new Set<string>();
    const dirs: { path: string; e: ContextEntry }[] = [];
    const parents = new Set<string>();
    const files: ContextEntry[] = [];
    const links: ContextEntry[] = [];
    for (const e of entries) {
      const rel = checkPath(e.path);
      if (seen.has(rel)) throw new UserError(`context sync: path "${e.path}" appears twice in the manifest`);
      seen.add(rel);
      if (e.kind === 'DIR') {
        dirs.push({ path: join(dest, rel), e });
        parents.add(join(dest, rel));
      } else {
        parents.add(dirname(join(dest, rel)));
        if (e.kind === 'FILE' && e.hardlink_to) links.push(e);
        else files.push(e);
      }
    }
    for (const d of [...parents].sort()) await mkdir(d, { recursive: true });
    await pool(files, 32, async (e) => {
      const out = join(dest, e.path);
      const times = mtimeOf(e.mtime_ns);
      if (e.kind === 'SYMLINK') {
        await symlink(e.link_target, out);
        await lchown(out, e.uid, e.gid);
        await lutimes(out, times, times);
        return;
      }
      if (!DIGEST.test(e.digest)) throw new UserError(`context sync: file "${e.path}" has no valid digest`);
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
    for (const e of links) await link(join(dest, checkPath(e.hardlink_to)), join(dest, e.path));
    // Directories last, deepest first: writing their children changed their mtimes.
    for (const { path, e } of dirs.reverse()) {
      await chown(path, e.uid, e.gid);
      await chmod(path, e.mode & 0o7777);
      const times = mtimeOf(e.mtime_ns);
      await utimes(path, times, times);
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
    if (Number(e.size) <= 1 << 20) await writeFile(out, await readFile(this.blobPath(e.digest)));
    else await copyFile(this.blobPath(e.digest), out);
    await chown(out, e.uid, e.gid);
    await chmod(out, e.mode & 0o7777);
    const times = mtimeOf(e.mtime_ns);
    await utimes(out, times, times);
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
