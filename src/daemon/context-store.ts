// The server's content-addressed store of context files, one per tenant: blobs/<sha256 hex>, written once
// (temp file, hash verified, rename) and shared by every later build of that tenant. A build's context
// is materialised from it as a plain directory with the manifest's modes, owners and mtimes; the engine
// reads it as it would read a local context. Files are copied out of the store, not hard-linked: a
// COPY preserves hard links between the files it reads, so shared inodes would change the built layers.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, fsyncSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, chmodSync, chownSync, utimesSync, writeSync } from 'node:fs';
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

  /** Writes the manifest's tree under `dest` (which must not exist). Every file's content must be in the store. */
  materialise(entries: ContextEntry[], dest: string): void {
    mkdirSync(dest, { recursive: true });
    const dirs: { path: string; e: ContextEntry }[] = [];
    const seen = new Set<string>();
    for (const e of entries) {
      const rel = checkPath(e.path);
      if (seen.has(rel)) throw new UserError(`context sync: path "${e.path}" appears twice in the manifest`);
      seen.add(rel);
      const out = join(dest, rel);
      mkdirSync(dirname(out), { recursive: true });
      const times = mtimeOf(e.mtime_ns);
      if (e.kind === 'DIR') {
        mkdirSync(out, { recursive: true });
        dirs.push({ path: out, e });
      } else if (e.kind === 'SYMLINK') {
        symlinkSync(e.link_target, out);
        lchownSync(out, e.uid, e.gid);
        lutimesSync(out, times, times);
      } else if (e.hardlink_to) {
        linkSync(join(dest, checkPath(e.hardlink_to)), out);
      } else {
        if (!DIGEST.test(e.digest)) throw new UserError(`context sync: file "${e.path}" has no valid digest`);
        copyFileSync(this.blobPath(e.digest), out);
        chownSync(out, e.uid, e.gid);
        chmodSync(out, e.mode & 0o7777);
        utimesSync(out, times, times);
      }
    }
    // Directories last, deepest first: writing their children changed their mtimes.
    for (const { path, e } of dirs.reverse()) {
      chownSync(path, e.uid, e.gid);
      chmodSync(path, e.mode & 0o7777);
      const times = mtimeOf(e.mtime_ns);
      utimesSync(path, times, times);
    }
  }
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
