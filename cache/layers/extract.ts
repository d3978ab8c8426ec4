// The one entry loop that writes tar entries into a directory, shared by every tar kiln unpacks: layer
// blobs (apply.ts, overlay form or merged), ADD archives (solver/ops/file-op/unpack.ts), exports and the
// client's untar. It owns what is the same everywhere: file data written through an O_EXCL|O_NOFOLLOW fd,
// names cleaned (`..` never climbs out), owners and modes (chown first: it clears setuid/setgid), device
// nodes made by the fsops helper, and xattrs and times applied at the end, in one batch, fd-relative
// below the root by the helper, following no symlink. What differs is a subclass's: where an entry's
// parents come from (`place`), what replacing an entry means (`clear`), what a hard link may name.
import { chmodSync, closeSync, constants, fchmodSync, fchownSync, lchownSync, linkSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { fsPath } from '../../base/raw-names.js';
import type { FsOps, Timespec } from './fsops.js';
import type { TarHeader } from './tar-header.js';
import type { TarEvent } from './tar-reader.js';

const TYPE_BITS = { char: constants.S_IFCHR, block: constants.S_IFBLK, fifo: constants.S_IFIFO } as const;

/** The longest file name component Linux file systems take. */
export const NAME_MAX = 255;

export interface ExtractOptions {
  /** Names the tar in error messages ("layer sha256:…", "archive foo.tar"). */
  what: string;
  /** What `..` must not climb out of, in error lines ("the layer", "the destination"). */
  inside: string;
  /** The error a bad entry raises, in the caller's type (a layer, an export, a build step). */
  error: (message: string) => Error;
  /** Set owners from the tar (or `owner`); false when kiln is not root, where lchown would fail. */
  chown: boolean;
  /** One owner for every entry instead of the tar's (ADD --chown). */
  owner?: { uid: number; gid: number };
  /** One mtime for every entry instead of the tar's (SOURCE_DATE_EPOCH rewrites). */
  mtime?: Timespec;
  /** kiln runs without root here: device nodes the kernel refuses to make (EPERM) are skipped. */
  unprivileged?: boolean;
}

/** A tar name for an error line: quoted, and cut short when huge. */
export function shortName(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 40)}…${name.slice(-30)}` : name);
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

export abstract class TarExtractor {
  private fd?: number;
  /**
   * Symlinks go to the helper without waiting for each (a subclass opts in): making one is an inode
   * allocation, which some file systems make costly, and the helper makes them beside this thread. Until
   * answered, their paths and every dir above them are listed here, and an entry that names one of them
   * (or a whiteout, or a hard link) waits for all of them first (drain), so every check this thread makes
   * sees the tree as the tar built it so far.
   */
  protected pipelineSymlinks = false;
  private pendingLinks = new Set<string>();
  private pendingAbove = new Set<string>();
  private pendingOps: Promise<void>[] = [];
  private pendingError?: unknown;
  private readonly times = new Map<string, { atime: Timespec; mtime: Timespec }>();
  private readonly xattrs = new Map<string, Map<string, Buffer>>();
  /** The tar name of the entry being handled, for error lines. */
  protected entryName = '';

  constructor(
    /** The directory entries land in; every `rel` is below it. */
    protected readonly root: string,
    protected readonly ops: FsOps,
    protected readonly opts: ExtractOptions,
  ) {}

  /** Handles one reader event; entries return a promise (await it before feeding the next event). */
  apply(ev: TarEvent): void | Promise<void> {
    if (ev.kind === 'data') {
      if (this.fd !== undefined) {
        let off = 0;
        while (off < ev.data.length) off += writeSync(this.fd, ev.data, off);
      }
      return;
    }
    this.close();
    if (ev.kind === 'entry') {
      this.entryName = ev.header.name;
      return this.entry(ev.header);
    }
  }

  /** Closes the file being written, if any (after an error, or before finish). */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Waits for the symlinks sent to the helper; the first that failed is thrown. */
  async drain(): Promise<void> {
    const ops = this.pendingOps;
    this.pendingOps = [];
    this.pendingLinks = new Set();
    this.pendingAbove = new Set();
    await Promise.all(ops);
    const err = this.pendingError;
    this.pendingError = undefined;
    if (err) throw err;
  }

  /** Resolves once the helper has answered every symlink sent so far (failures are kept for drain). */
  async settled(): Promise<void> {
    await Promise.all(this.pendingOps);
  }

  /** Whether the entry at `rel` may meet a symlink the helper has not made yet. */
  private touchesPending(rel: string, h: TarHeader): boolean {
    if (this.pendingOps.length === 0) return false;
    if (h.type === 'hardlink' || this.pendingOps.length >= 1024) return true;
    if (this.pendingLinks.has(rel) || this.pendingAbove.has(rel)) return true;
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    if (base.startsWith('.wh.')) return true;
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) if (this.pendingLinks.has(rel.slice(0, i))) return true;
    return false;
  }

  private sendSymlink(rel: string, target: string, owner: { uid: number; gid: number } | undefined): void {
    this.pendingOps.push(
      this.ops.symlinkInRoot(this.root, rel, target, owner).catch((err) => {
        this.pendingError ??= err;
      }),
    );
    this.pendingLinks.add(rel);
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) this.pendingAbove.add(rel.slice(0, i));
  }

  /** Applies xattrs and timestamps (and a subclass's deferred work), once every entry exists. */
  async finish(): Promise<void> {
    this.close();
    await this.drain();
    const pending: Promise<void>[] = [];
    // Paths replaced by a later entry are dropped by forget(); if a parent became a symlink anyway, the
    // helper answers ELOOP and the record is skipped instead of landing on the link's target.
    const tolerate = (p: Promise<void>, alsoIgnore: string[] = []) =>
      p.catch((err) => {
        const code = errCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || (code && alsoIgnore.includes(code))) return;
        throw err;
      });
    for (const [rel, attrs] of this.xattrs) {
      for (const [name, value] of attrs) {
        // EPERM: user.* xattrs cannot go on symlinks or devices; ENOTSUP: the file system has no xattrs.
        pending.push(tolerate(this.ops.lsetxattrInRoot(this.root, rel, name, value), ['EPERM', 'ENOTSUP', 'EOPNOTSUPP']));
      }
    }
    for (const p of this.deferred()) pending.push(tolerate(p));
    for (const [rel, t] of this.times) pending.push(tolerate(this.ops.utimensInRoot(this.root, rel, t.atime, t.mtime)));
    const results = await Promise.allSettled(pending);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** A subclass's own end-of-tar work (opaque markers), started with the xattrs. */
  protected deferred(): Promise<void>[] {
    return [];
  }

  /**
   * Readies the parents of an entry and returns its path below the root, or undefined when the entry is
   * done already (a whiteout, the root itself) or is skipped.
   */
  protected abstract place(parts: string[], h: TarHeader): string | undefined | Promise<string | undefined>;

  /** Removes what is at `rel` unless it is a directory and `keepDir`; true when a directory was kept. */
  protected abstract clear(rel: string, keepDir: boolean): boolean | Promise<boolean>;

  /** The path below the root of the earlier entry a hard link names; fails when it is no such file. */
  protected abstract linkTarget(h: TarHeader): string | Promise<string>;

  /** Makes the directory `rel` (nothing is there, or what was there was cleared). */
  protected makeDir(rel: string): void | Promise<void> {
    mkdirSync(fsPath(this.full(rel)), 0o700);
  }

  /** Called after a symlink is made at `rel` (resolutions through it change). */
  protected madeSymlink(_rel: string): void {}

  protected full(rel: string): string {
    return rel ? `${this.root}/${rel}` : this.root;
  }

  protected fail(message: string): never {
    throw this.opts.error(`${this.opts.what}: ${message}`);
  }

  /** Components of a tar name below the root; `..` pops one, and one that climbs out is refused. */
  protected clean(name: string, what = 'entry'): string[] {
    const parts: string[] = [];
    for (const p of name.split('/')) {
      if (p === '' || p === '.') continue;
      if (Buffer.byteLength(p) > NAME_MAX) this.fail(`${what} ${shortName(name)} has a name component longer than ${NAME_MAX} bytes`);
      if (p === '..') {
        if (parts.length === 0) this.fail(`${what} ${JSON.stringify(name)} points outside ${this.opts.inside}`);
        parts.pop();
      } else parts.push(p);
    }
    return parts;
  }

  /** Drops what was recorded for a removed path (and, for a dir, everything below it): it is gone. */
  protected forget(rel: string, below: boolean): void {
    this.times.delete(rel);
    this.xattrs.delete(rel);
    if (!below) return;
    const prefix = rel + '/';
    for (const map of [this.times, this.xattrs]) for (const k of map.keys()) if (k.startsWith(prefix)) map.delete(k);
  }

  /** Remembers an entry's times and xattrs, applied by finish(). */
  protected record(rel: string, h: TarHeader, xattrs = true): void {
    const mtime = this.opts.mtime ?? h.mtime;
    this.times.delete(rel); // re-insert: the latest entry for an inode decides its times
    this.times.set(rel, { atime: this.opts.mtime ?? h.atime ?? h.mtime, mtime });
    // A tar must not smuggle in overlay's own attributes (opaque, redirect, metacopy…).
    const attrs = xattrs ? [...h.xattrs].filter(([k]) => !k.startsWith('trusted.overlay.') && !k.startsWith('user.overlay.')) : [];
    if (attrs.length) this.xattrs.set(rel, new Map(attrs));
    else this.xattrs.delete(rel);
  }

  /** lchown to the entry's owner, when owners are set at all. */
  protected chown(rel: string, h: TarHeader): void {
    if (!this.opts.chown) return;
    const o = this.opts.owner ?? h;
    lchownSync(fsPath(this.full(rel)), o.uid, o.gid);
  }

  /** A 0/0 character device: overlay's whiteout, made by the helper. */
  protected async mknodWhiteout(rel: string, h: TarHeader): Promise<void> {
    await this.ops.mknod(this.full(rel), constants.S_IFCHR, 0, 0);
    this.chown(rel, h);
    this.record(rel, h, false);
  }

  private async entry(h: TarHeader): Promise<void> {
    const parts = this.clean(h.name);
    if (this.touchesPending(parts.join('/'), h)) await this.drain();
    const rel = await this.place(parts, h);
    if (rel === undefined) return;
    const full = fsPath(this.full(rel));
    switch (h.type) {
      case 'dir': {
        if (!(await this.clear(rel, true))) await this.makeDir(rel);
        this.chown(rel, h);
        chmodSync(full, h.mode); // after chown, which may clear setgid
        this.record(rel, h);
        return;
      }
      case 'file': {
        await this.clear(rel, false);
        const fd = openSync(full, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        if (this.opts.chown) {
          const o = this.opts.owner ?? h;
          fchownSync(fd, o.uid, o.gid);
        }
        fchmodSync(fd, h.mode); // after chown, which clears setuid/setgid
        if (h.size > 0) this.fd = fd;
        else closeSync(fd);
        this.record(rel, h);
        return;
      }
      case 'symlink': {
        await this.clear(rel, false);
        if (this.pipelineSymlinks) {
          this.sendSymlink(rel, h.linkname, this.opts.chown ? (this.opts.owner ?? h) : undefined);
          this.madeSymlink(rel);
          this.record(rel, h);
          return;
        }
        symlinkSync(fsPath(h.linkname), full);
        this.madeSymlink(rel);
        this.chown(rel, h);
        this.record(rel, h);
        return;
      }
      case 'hardlink': {
        const target = await this.linkTarget(h);
        if (target === rel) return;
        await this.clear(rel, false);
        linkSync(fsPath(this.full(target)), full); // link(2) does not follow a symlink named as its target
        return;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        await this.clear(rel, false);
        // Node has no mknod(2): the helper makes the node (a device needs root, as in Docker's unpacker).
        try {
          await this.ops.mknod(this.full(rel), TYPE_BITS[h.type], h.devmajor, h.devminor);
        } catch (err) {
          if (this.opts.unprivileged && h.type !== 'fifo' && errCode(err) === 'EPERM') return;
          throw err;
        }
        this.chown(rel, h);
        chmodSync(full, h.mode);
        this.record(rel, h);
        return;
      }
    }
  }
}
