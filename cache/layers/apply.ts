// Writes tar entries into a directory in overlay upperdir form: `.wh.<name>` → 0/0 char device `<name>`,
// `.wh..wh..opq` → trusted.overlay.opaque=y (user.overlay.opaque when rootless) on its dir. Paths are confined to the root: `..` that climbs
// out is refused, a leading "/" is relative to the root (as containerd does), and an existing symlink is
// never followed when resolving a parent or a hardlink target. Xattrs and timestamps are applied at the
// end, in one batch, after every entry exists: chown clears security.capability, and creating children
// changes a dir's mtime. By then a later entry may have replaced a parent with a symlink (`a/x`, then
// `a -> /host/dir`): records under a replaced path are dropped, and the rest are applied fd-relative
// below the root by the helper, which never follows a symlink on the way.
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { LayerFormatError } from './decompress.js';
import type { FsOps, Timespec } from './fsops.js';
import type { TarHeader } from './tar-header.js';
import type { TarEvent } from './tar-reader.js';

export { OPAQUE_XATTR } from './overlay-xattr.js';
import { OPAQUE_XATTR } from './overlay-xattr.js';
const OPAQUE_MARKER = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';

const TYPE_BITS = { char: constants.S_IFCHR, block: constants.S_IFBLK, fifo: constants.S_IFIFO } as const;

/** The longest file name component Linux file systems take. */
const NAME_MAX = 255;

/** A tar name for an error line: quoted, and cut short when huge. */
function shortName(name: string): string {
  return JSON.stringify(name.length > 80 ? `${name.slice(0, 40)}…${name.slice(-30)}` : name);
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

export class LayerApplier {
  private fd?: number;
  private readonly times = new Map<string, { atime: Timespec; mtime: Timespec }>();
  private readonly xattrs = new Map<string, Map<string, Buffer>>();
  private readonly opaque = new Set<string>();
  /** Relative paths known to be real directories made by this unpack. */
  private readonly dirs = new Set<string>(['']);

  constructor(
    private readonly root: string,
    private readonly ops: FsOps,
    /** Names the layer in error messages. */
    private readonly what: string,
  ) {}

  /** Handles one reader event; returns a promise only when the entry needs the helper (mknod). */
  apply(ev: TarEvent): void | Promise<void> {
    if (ev.kind === 'data') {
      if (this.fd !== undefined) {
        let off = 0;
        while (off < ev.data.length) off += writeSync(this.fd, ev.data, off);
      }
      return;
    }
    if (ev.kind === 'entry-end') {
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
      return;
    }
    return this.entry(ev.header);
  }

  /** Closes the file being written, if any (after an error, or before finish). */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Applies xattrs, opaque markers and timestamps, then flushes the file system. */
  async finish(): Promise<void> {
    this.close();
    const pending: Promise<void>[] = [];
    // Stale paths (replaced by a later entry that removed them) are skipped.
    const tolerate = (p: Promise<void>, alsoIgnore: string[] = []) =>
      p.catch((err) => {
        const code = errCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR' || (code && alsoIgnore.includes(code))) return;
        throw err;
      });
    // Applied fd-relative below the root, following no symlink: if a later entry turned a parent into a
    // symlink (records under a replaced path are dropped by clear(), this is the second line), the
    // helper answers ELOOP and the stale record is skipped instead of landing on the link's target.
    const stale = ['ELOOP'];
    for (const [rel, attrs] of this.xattrs) {
      for (const [name, value] of attrs) {
        // EPERM: user.* xattrs cannot go on symlinks or devices; ENOTSUP: the file system has no xattrs.
        pending.push(tolerate(this.ops.lsetxattrInRoot(this.root, rel, name, value), [...stale, 'EPERM', 'ENOTSUP', 'EOPNOTSUPP']));
      }
    }
    for (const rel of this.opaque) pending.push(tolerate(this.ops.lsetxattrInRoot(this.root, rel, OPAQUE_XATTR, Buffer.from('y')), stale));
    for (const [rel, t] of this.times) pending.push(tolerate(this.ops.utimensInRoot(this.root, rel, t.atime, t.mtime), stale));
    const results = await Promise.allSettled(pending);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    // No syncfs here: it would wait for every dirty page of the whole file system (other builds' too).
    // A kill of kiln loses nothing (the page cache survives it); like docker's and containerd's
    // snapshotters, unpacked layers are not forced to disk against power loss.
  }

  private full(rel: string): string {
    return rel ? `${this.root}/${rel}` : this.root;
  }

  /** The entry's path relative to the root, "" for the root itself; throws if it climbs out. */
  private clean(name: string, what = 'entry'): string {
    const parts: string[] = [];
    for (const p of name.split('/')) {
      if (p === '' || p === '.') continue;
      if (Buffer.byteLength(p) > NAME_MAX) {
        throw new LayerFormatError(`${this.what}: ${what} ${shortName(name)} has a name component longer than ${NAME_MAX} bytes`);
      }
      if (p === '..') {
        if (parts.length === 0) throw new LayerFormatError(`${this.what}: ${what} ${JSON.stringify(name)} points outside the layer`);
        parts.pop();
      } else parts.push(p);
    }
    return parts.join('/');
  }

  /** Makes sure every parent of `rel` is a real directory, creating missing ones; never follows symlinks. */
  private ensureParents(rel: string, entryName: string, create = true): void {
    const parts = rel.split('/');
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix ? `${prefix}/${parts[i]}` : parts[i]!;
      if (this.dirs.has(prefix)) continue;
      let st;
      try {
        st = lstatSync(this.full(prefix));
      } catch (err) {
        if (errCode(err) !== 'ENOENT' || !create) throw new LayerFormatError(`${this.what}: ${JSON.stringify(entryName)}: parent ${prefix} does not exist`);
        mkdirSync(this.full(prefix), 0o755);
        chmodSync(this.full(prefix), 0o755); // not subject to umask
        this.dirs.add(prefix);
        continue;
      }
      if (st.isSymbolicLink()) {
        throw new LayerFormatError(`${this.what}: ${JSON.stringify(entryName)}: parent ${prefix} is a symlink, which unpacking does not follow`);
      }
      if (!st.isDirectory()) throw new LayerFormatError(`${this.what}: ${JSON.stringify(entryName)}: parent ${prefix} is not a directory`);
      this.dirs.add(prefix);
    }
  }

  /** Removes whatever is at `rel` unless it is a dir and `keepDir` (a dir entry over a dir merges). */
  private clear(rel: string, keepDir: boolean): boolean {
    let st;
    try {
      st = lstatSync(this.full(rel));
    } catch {
      return false;
    }
    if (keepDir && st.isDirectory()) return true;
    rmSync(this.full(rel), { recursive: true, force: true }); // rm does not follow symlinks
    this.forget(rel, st.isDirectory());
    return false;
  }

  /** Drops what was recorded for a removed path (and, for a dir, everything below it): it is gone. */
  private forget(rel: string, below: boolean): void {
    this.times.delete(rel);
    this.xattrs.delete(rel);
    this.opaque.delete(rel);
    this.dirs.delete(rel);
    if (!below) return;
    const prefix = rel + '/';
    for (const set of [this.times, this.xattrs, this.opaque, this.dirs]) {
      for (const k of set.keys()) if (k.startsWith(prefix)) set.delete(k);
    }
  }

  private record(rel: string, h: TarHeader): void {
    this.times.delete(rel); // re-insert: the latest entry for an inode decides its times
    this.times.set(rel, { atime: h.atime ?? h.mtime, mtime: h.mtime });
    // A layer must not smuggle in overlay's own attributes (opaque, redirect, metacopy…).
    const attrs = new Map([...h.xattrs].filter(([k]) => !k.startsWith('trusted.overlay.') && !k.startsWith('user.overlay.')));
    if (attrs.size) this.xattrs.set(rel, attrs);
    else this.xattrs.delete(rel);
  }

  private entry(h: TarHeader): void | Promise<void> {
    const rel = this.clean(h.name);
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    const parent = slash < 0 ? '' : rel.slice(0, slash);

    // aufs bookkeeping at the top (.wh..wh.plnk/…, .wh..wh.aufs): not content, as in Docker's unpacker.
    if (rel.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX) && !rel.startsWith(OPAQUE_MARKER)) return;
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.ensureParents(rel, h.name);
      if (base === OPAQUE_MARKER) {
        this.opaque.add(parent);
        return;
      }
      if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return; // aufs bookkeeping (.wh..wh.plnk…)
      const target = (parent ? parent + '/' : '') + base.slice(WHITEOUT_PREFIX.length);
      if (target === parent || base === '.wh..' || base === '.wh...') throw new LayerFormatError(`${this.what}: invalid whiteout ${JSON.stringify(h.name)}`);
      this.clear(target, false);
      return this.ops.mknod(this.full(target), constants.S_IFCHR, 0, 0).then(() => {
        lchownSync(this.full(target), h.uid, h.gid);
        this.record(target, { ...h, xattrs: new Map() });
      });
    }

    if (rel === '') {
      if (h.type !== 'dir') throw new LayerFormatError(`${this.what}: entry ${JSON.stringify(h.name)} names the root but is not a directory`);
      lchownSync(this.root, h.uid, h.gid);
      chmodSync(this.root, h.mode);
      this.record('', h);
      return;
    }
    this.ensureParents(rel, h.name);
    const full = this.full(rel);

    switch (h.type) {
      case 'dir': {
        if (!this.clear(rel, true)) mkdirSync(full, 0o700);
        this.dirs.add(rel);
        lchownSync(full, h.uid, h.gid);
        chmodSync(full, h.mode); // after chown, which may clear setgid
        this.record(rel, h);
        return;
      }
      case 'file': {
        this.clear(rel, false);
        const fd = openSync(full, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        fchownSync(fd, h.uid, h.gid);
        fchmodSync(fd, h.mode); // after chown, which clears setuid/setgid
        if (h.size > 0) this.fd = fd;
        else closeSync(fd);
        this.record(rel, h);
        return;
      }
      case 'symlink': {
        this.clear(rel, false);
        symlinkSync(h.linkname, full);
        lchownSync(full, h.uid, h.gid);
        this.record(rel, h);
        return;
      }
      case 'hardlink': {
        const target = this.clean(h.linkname, 'hardlink target');
        if (target === rel) return;
        this.ensureParents(target, h.linkname, false);
        let st;
        try {
          st = lstatSync(this.full(target));
        } catch {
          st = undefined;
        }
        if (!st || st.isDirectory()) {
          throw new LayerFormatError(`${this.what}: hardlink ${JSON.stringify(h.name)} points to ${JSON.stringify(h.linkname)}, which is not an earlier file of this layer`);
        }
        this.clear(rel, false);
        linkSync(this.full(target), full);
        return;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        this.clear(rel, false);
        return this.ops.mknod(full, TYPE_BITS[h.type], h.devmajor, h.devminor).then(() => {
          lchownSync(full, h.uid, h.gid);
          chmodSync(full, h.mode);
          this.record(rel, h);
        });
      }
    }
  }
}
