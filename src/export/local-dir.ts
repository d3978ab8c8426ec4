// type=local writes an untrusted image's tree into a directory of the host, often as root. The layers are
// merged in a private staging directory first; this module then copies that tree into DEST with three
// guarantees:
//  - nothing is written outside DEST: every directory is opened with O_NOFOLLOW and everything below it
//    is created through /proc/self/fd/N/NAME (the kernel never re-walks the path, so a symlink in the
//    image or already in DEST, or one swapped in while kiln writes, is not followed); entries are
//    created exclusively (O_EXCL) after whatever was there is unlinked, never opened through;
//  - by default no privilege leaves the image: setuid/setgid bits are dropped from files, device nodes
//    are skipped, and under sudo (SUDO_UID/SUDO_GID) everything is owned by the invoking user;
//  - names are bytes: a name that is not UTF-8 is written as it is (paths here are Buffers).
// `preserve-special=true` keeps modes, devices, file capabilities (security.capability) and the image's
// owners as they are in the image. Other xattrs and nanosecond times are always kept: they are set at
// the end, fd-relative below DEST by the fsops helper, which follows no symlink; it makes the nodes too.
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  type Stats,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FsOps, type DirEntryStat, type Timespec } from '../../cache/layers/fsops.js';
import { nameFromBytes } from '../../base/raw-names.js';
import { ExportError } from './types.js';

/** The xattr that grants file capabilities: a privilege, kept only with preserve-special. */
const CAPABILITY_XATTR = 'security.capability';

export interface LocalExportOptions {
  /** Keep setuid/setgid bits, device nodes and the image's owners (`preserve-special=true`). */
  preserveSpecial: boolean;
  /** Owner of everything written (the sudo user), or undefined to keep the image's (as root) or the caller's. */
  owner?: { uid: number; gid: number };
}

const isRoot = process.getuid?.() === 0;

/** `-o type=local,dest=DIR[,preserve-special=true]`, and who runs kiln (sudo's SUDO_UID/SUDO_GID). */
export function localExportOptions(attrs: Record<string, string>, env: NodeJS.ProcessEnv = process.env): LocalExportOptions {
  const raw = attrs['preserve-special'];
  if (raw !== undefined && raw !== 'true' && raw !== 'false') {
    throw new ExportError(`invalid value "${raw}" for preserve-special in --output type=local: expected true or false`);
  }
  const preserveSpecial = raw === 'true';
  if (preserveSpecial || !isRoot) return { preserveSpecial };
  const uid = env.SUDO_UID;
  const gid = env.SUDO_GID;
  if (uid && gid && /^[0-9]+$/.test(uid) && /^[0-9]+$/.test(gid)) return { preserveSpecial, owner: { uid: Number(uid), gid: Number(gid) } };
  return { preserveSpecial };
}

/** What the copy left out or changed, for a warning. */
export interface LocalExportSummary {
  devicesSkipped: number;
  specialBitsDropped: number;
}

const SLASH = Buffer.from('/');
/** Linux's O_PATH (not in fs.constants): an fd naming an inode without opening it for I/O. */
const O_PATH = 0o10000000;
const join = (dir: Buffer, name: Buffer) => Buffer.concat([dir, SLASH, name]);
/** A name inside the directory open as `fd`, resolved by the kernel from that fd, not from a path. */
const at = (fd: number, name: Buffer) => Buffer.concat([Buffer.from(`/proc/self/fd/${fd}/`), name]);

function lstatAt(fd: number, name: Buffer): Stats | undefined {
  try {
    return lstatSync(at(fd, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Opens a directory without following a symlink in its last component. */
function openDirNoFollow(path: Buffer | string): number {
  return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
}

class TreeCopier {
  readonly summary: LocalExportSummary = { devicesSkipped: 0, specialBitsDropped: 0 };
  /** First copy of each multiply-linked source inode: where it is in DEST (its dir stays open). */
  private readonly links = new Map<string, { dirFd: number; name: Buffer }>();
  private readonly keptOpen = new Set<number>();
  /** Times and xattrs of what was written, by path below DEST: set once every entry exists. */
  private readonly times = new Map<string, { atime: Timespec; mtime: Timespec }>();
  private readonly xattrs = new Map<string, Map<string, Buffer>>();
  private nodes = 0;

  constructor(
    private readonly opts: LocalExportOptions,
    /** DEST's own fd: its caller closes it. */
    private readonly rootFd: number,
    private readonly ops: FsOps,
  ) {}

  private mode(st: Stats): number {
    const mode = st.mode & 0o7777;
    if (this.opts.preserveSpecial) return mode;
    // Files lose setuid and setgid; a directory keeps setgid (group inheritance) and sticky (a restriction).
    const drop = st.isDirectory() ? 0o4000 : 0o6000;
    if (mode & drop) this.summary.specialBitsDropped++;
    return mode & ~drop;
  }

  private owner(st: Stats): { uid: number; gid: number } | undefined {
    if (this.opts.owner) return this.opts.owner;
    return isRoot ? { uid: st.uid, gid: st.gid } : undefined;
  }

  /** Sets owner and mode on an open file or directory (chown first: it clears setuid/setgid). */
  private finish(fd: number, st: Stats): void {
    const o = this.owner(st);
    if (o) fchownSync(fd, o.uid, o.gid);
    fchmodSync(fd, this.mode(st));
  }

  /** Remembers the staging entry's nanosecond times and xattrs for `rel` in DEST. */
  private record(rel: string, e: DirEntryStat | undefined): void {
    if (!e) return;
    this.times.set(rel, { atime: e.atime, mtime: e.mtime });
    const attrs = new Map(e.xattrs ?? []);
    if (!this.opts.preserveSpecial && attrs.delete(CAPABILITY_XATTR)) this.summary.specialBitsDropped++;
    if (attrs.size) this.xattrs.set(rel, attrs);
  }

  /** Removes what is at NAME in the dir (a symlink is removed, never followed). */
  private clear(dirFd: number, name: Buffer, keepDir: boolean): Stats | undefined {
    const st = lstatAt(dirFd, name);
    if (!st) return undefined;
    if (st.isDirectory()) {
      if (keepDir) return st;
      rmSync(at(dirFd, name), { recursive: true, force: true });
    } else unlinkSync(at(dirFd, name));
    return undefined;
  }

  /** Copies the contents of staging dir `src` into the DEST dir open as `dirFd`; `rel` is that dir below DEST. */
  async copyDir(src: Buffer, dirFd: number, rel = ''): Promise<void> {
    const names = readdirSync(src, { encoding: 'buffer' }).sort(Buffer.compare);
    const listed = new Map((await this.ops.listDir(nameFromBytes(src), { xattrs: true })).map((e) => [e.name, e]));
    for (const name of names) {
      const str = nameFromBytes(name);
      await this.copyEntry(join(src, name), dirFd, name, rel ? `${rel}/${str}` : str, listed.get(str));
    }
  }

  private async copyEntry(src: Buffer, dirFd: number, name: Buffer, rel: string, listed: DirEntryStat | undefined): Promise<void> {
    const st = lstatSync(src);
    if (st.isDirectory()) {
      if (!this.clear(dirFd, name, true)) mkdirSync(at(dirFd, name), { mode: 0o700 });
      const fd = openDirNoFollow(at(dirFd, name));
      try {
        if (!fstatSync(fd).isDirectory()) throw new ExportError('a directory of the destination changed while the image was written to it');
        await this.copyDir(src, fd, rel);
        this.finish(fd, st);
        this.record(rel, listed);
      } finally {
        if (!this.keptOpen.has(fd)) closeSync(fd);
      }
      return;
    }
    if ((st.isCharacterDevice() || st.isBlockDevice()) && !this.opts.preserveSpecial) {
      this.summary.devicesSkipped++;
      return;
    }
    this.clear(dirFd, name, false);
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 && !st.isDirectory() ? this.links.get(key) : undefined;
    if (first) {
      linkSync(at(first.dirFd, first.name), at(dirFd, name));
      return;
    }
    if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(src, { encoding: 'buffer' }), at(dirFd, name));
      const o = this.owner(st);
      if (o) lchownSync(at(dirFd, name), o.uid, o.gid);
    } else if (st.isFile()) {
      // The copy takes the source's mode when created: strip special bits in (private) staging first, so
      // a setuid file never exists in DEST, not even for a moment.
      if (!this.opts.preserveSpecial && st.mode & 0o6000) chmodSync(src, st.mode & 0o1777);
      // EXCL: created here, never opened through something that appeared in between.
      copyFileSync(src, at(dirFd, name), constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
      this.finishNode(dirFd, name, st);
    } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
      await this.makeNode(dirFd, name, st);
      this.finishNode(dirFd, name, st);
    } else return; // sockets: nothing to write
    this.record(rel, listed);
    if (st.nlink > 1) {
      this.links.set(key, { dirFd, name });
      if (dirFd !== this.rootFd) this.keptOpen.add(dirFd);
    }
  }

  /**
   * Owner and mode of a file or node just created at NAME. It is opened with O_PATH (a device is never
   * opened for real) and O_NOFOLLOW, and changed through /proc/self/fd/N, which names that inode itself:
   * whatever replaces NAME meanwhile is not touched.
   */
  private finishNode(dirFd: number, name: Buffer, st: Stats): void {
    const fd = openSync(at(dirFd, name), O_PATH | constants.O_NOFOLLOW);
    try {
      const now = fstatSync(fd);
      if ((now.mode & constants.S_IFMT) !== (st.mode & constants.S_IFMT)) throw new ExportError('a file of the destination changed while the image was written to it');
      const self = `/proc/self/fd/${fd}`;
      const o = this.owner(st);
      if (o) chownSync(self, o.uid, o.gid);
      chmodSync(self, this.mode(st));
    } finally {
      closeSync(fd);
    }
  }

  /** The fsops helper makes the node under a plain temporary name in the dir (by its fd), renamed in place. */
  private async makeNode(dirFd: number, name: Buffer, st: Stats): Promise<void> {
    const tmp = Buffer.from(`.kiln-node-${process.pid}-${++this.nodes}`);
    // The helper is another process: it names this process's fd through /proc/<pid>.
    const path = `/proc/${process.pid}/fd/${dirFd}/${tmp.toString()}`;
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    // Mode 0 permissions: finishNode sets them through an O_PATH fd afterwards.
    try {
      await this.ops.mknod(path, st.mode & constants.S_IFMT, st.isFIFO() ? 0 : major, st.isFIFO() ? 0 : minor);
    } catch (err) {
      throw new ExportError(`cannot create ${st.isFIFO() ? 'a FIFO' : 'a device node'} in the destination: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    renameSync(at(dirFd, tmp), at(dirFd, name));
  }

  /** Sets the recorded xattrs and times below `dest`, fd-relative, following no symlink. */
  async applyDeferred(dest: string): Promise<void> {
    const pending: Promise<void>[] = [];
    const tolerate = (p: Promise<void>, codes: string[]) =>
      p.catch((err) => {
        if (!codes.includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      });
    for (const [rel, attrs] of this.xattrs) {
      // EPERM: trusted.* without root, user.* on a symlink; ENOTSUP: DEST's file system has no xattrs.
      for (const [n, v] of attrs) pending.push(tolerate(this.ops.lsetxattrInRoot(dest, rel, n, v), ['EPERM', 'ENOTSUP', 'EOPNOTSUPP']));
    }
    for (const [rel, t] of this.times) pending.push(tolerate(this.ops.utimensInRoot(dest, rel, t.atime, t.mtime), []));
    const failed = (await Promise.allSettled(pending)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw new ExportError(`cannot set times or xattrs in the destination: ${(failed.reason as Error).message}`);
  }

  close(): void {
    for (const fd of this.keptOpen) closeSync(fd);
    this.keptOpen.clear();
  }
}

/**
 * Creates `dir` and its missing parents one at a time (mkdir -p). Node's recursive mkdir loops forever
 * where the kernel answers ENOENT for a parent that exists (/proc/sys).
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  let cur = resolve(dir);
  for (;;) {
    try {
      if (statSync(cur).isDirectory()) break;
      throw Object.assign(new Error(`${cur}: not a directory`), { code: 'ENOTDIR', path: cur });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.unshift(cur);
    const parent = dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Copies the tree under `staging` into `dest` (created if missing, its existing files replaced by the
 * image's where names meet). Returns what the policy left out.
 */
export async function copyTreeInto(staging: string, dest: string, opts: LocalExportOptions): Promise<LocalExportSummary> {
  makeDirs(dest);
  // DEST itself is the user's choice and may be a symlink they made; what is below it is the image's.
  const destFd = openSync(dest, constants.O_RDONLY | constants.O_DIRECTORY);
  const ops = FsOps.start();
  const copier = new TreeCopier(opts, destFd, ops);
  try {
    await copier.copyDir(Buffer.from(staging), destFd);
    // DEST by its fd: the helper resolves below the very directory written to.
    await copier.applyDeferred(`/proc/${process.pid}/fd/${destFd}`);
  } finally {
    copier.close();
    closeSync(destFd);
    await ops.close();
  }
  return copier.summary;
}
