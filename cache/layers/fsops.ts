// Client of the kiln-fsops helper: mknod, xattrs and nanosecond timestamps, which Node's fs lacks.
// Requests are pipelined: callers may fire thousands and await them together; they are written to the
// helper in one batch per tick and answered in order.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { fsopsBinary } from './fsops-binary.js';
import { nameFromBytes, nameToBytes } from '../../base/raw-names.js';

export interface Timespec {
  sec: number;
  nsec: number;
}

/** A directory entry with its lstat, as the helper's 'D' op reports it. */
export interface DirEntryStat {
  name: string;
  /** st_mode: type and permission bits */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  ino: bigint;
  dev: bigint;
  rdev: bigint;
  mtime: Timespec;
  ctime: Timespec;
  atime: Timespec;
  /** With `xattrs: true` (none for whiteouts). */
  xattrs?: Map<string, Buffer>;
  /** With `targets: true`, for symlinks. */
  target?: string;
}

function parseXattrs(p: Buffer, start: number, end: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (let i = start; i < end; ) {
    const nlen = p.readUInt32LE(i);
    const name = p.toString('utf8', i + 4, i + 4 + nlen);
    const vlen = p.readUInt32LE(i + 4 + nlen);
    out.set(name, p.subarray(i + 8 + nlen, i + 8 + nlen + vlen));
    i += 8 + nlen + vlen;
  }
  return out;
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** An errno from the helper, shaped like Node's fs errors (`code`, `errno`, `path`, `syscall`). */
export class FsOpError extends Error {
  constructor(
    readonly syscall: string,
    readonly path: string,
    readonly errno: number,
    readonly code = errnoNames.get(errno) ?? `E${errno}`,
  ) {
    super(`${code}: ${syscall} ${path}`);
  }
}

function i64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigInt64LE(BigInt(n));
  return b;
}

interface Pending {
  syscall: string;
  path: string;
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
}

export class FsOps {
  private readonly queue: Pending[] = [];
  private outgoing: Buffer[] = [];
  private flushScheduled = false;
  private inbox: Buffer = Buffer.alloc(0);
  private failure?: Error;
  private readonly exited: Promise<void>;

  private constructor(private readonly child: ChildProcess) {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => this.onData(d));
    child.stdin!.on('error', () => {}); // reported through 'exit'
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.fail(err);
        resolve();
      });
      child.on('close', (code, signal) => {
        if (code !== 0 || this.queue.length > 0) this.fail(new Error(`kiln-fsops exited (${signal ?? code}) ${stderr.trim()}`));
        resolve();
      });
    });
  }

  /** Idle helpers, unreferenced (they keep no process alive), for the next start(). */
  private static readonly idle: FsOps[] = [];
  private static readonly MAX_IDLE = 4;

  /**
   * A helper for the caller alone until its close(): an idle one from an earlier caller when there is
   * one (spawning costs ~5-10 ms of the main thread each time; a build of 25 COPY steps started 50).
   */
  static start(): FsOps {
    for (let ops = FsOps.idle.pop(); ops; ops = FsOps.idle.pop()) {
      if (ops.failure || ops.child.exitCode !== null || ops.child.signalCode !== null) continue;
      ops.setReferenced(true);
      return ops;
    }
    return new FsOps(spawn(fsopsBinary(), [], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /** An idle helper must not keep Node running; one in use must (its caller awaits its answers). */
  private setReferenced(on: boolean): void {
    for (const h of [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as ({ ref?: () => void; unref?: () => void } | null)[]) {
      if (on) h?.ref?.();
      else h?.unref?.();
    }
  }

  mknod(path: string, mode: number, major: number, minor: number): Promise<void> {
    return this.request('mknod', 'M', path, [i64(mode), i64(major), i64(minor)]).then(() => undefined);
  }

  lsetxattr(path: string, name: string, value: Buffer): Promise<void> {
    return this.request('lsetxattr', 'X', path, [Buffer.from(name), value]).then(() => undefined);
  }

  /**
   * lsetxattr on `rel` below the trusted dir `root`, fd-relative: no component of `rel` is followed if it
   * is a symlink (a parent that is one now fails with ELOOP), so the xattr never lands outside `root`.
   */
  lsetxattrInRoot(root: string, rel: string, name: string, value: Buffer): Promise<void> {
    return this.request('lsetxattr', 'x', root, [nameToBytes(rel), Buffer.from(name), value], rel).then(() => undefined);
  }

  /**
   * symlink(target) at `rel` below `root`, through its parent opened as for lsetxattrInRoot, then chown
   * to `owner` without following it (no owner: left as made).
   */
  symlinkInRoot(root: string, rel: string, target: string, owner?: { uid: number; gid: number }): Promise<void> {
    return this.request('symlink', 'l', root, [nameToBytes(rel), nameToBytes(target), i64(owner?.uid ?? -1), i64(owner?.gid ?? -1)], rel).then(() => undefined);
  }

  /** utimensat on `rel` below `root`, fd-relative and following no symlink (see lsetxattrInRoot). */
  utimensInRoot(root: string, rel: string, atime: Timespec, mtime: Timespec): Promise<void> {
    return this.request('utimensat', 't', root, [nameToBytes(rel), i64(atime.sec), i64(atime.nsec), i64(mtime.sec), i64(mtime.nsec)], rel).then(
      () => undefined,
    );
  }

  /** All xattrs of `path` (not following a symlink), in the order the kernel lists them. */
  async llistxattrs(path: string): Promise<Map<string, Buffer>> {
    const p = await this.request('llistxattr', 'L', path, []);
    return parseXattrs(p, 0, p.length);
  }

  /**
   * The entries of a directory (unsorted, without . and ..) with their lstat, in one round trip: a
   * directory of 100 files costs one request instead of 100 lstat calls (and 100 llistxattr requests).
   */
  async listDir(path: string, opts: { xattrs?: boolean; targets?: boolean } = {}): Promise<DirEntryStat[]> {
    const flags = (opts.xattrs ? 1 : 0) | (opts.targets ? 2 : 0);
    const p = await this.request('listdir', 'D', path, [i64(flags)]);
    const out: DirEntryStat[] = [];
    const ts = (at: number): Timespec => ({ sec: Number(p.readBigInt64LE(at)), nsec: p.readUInt32LE(at + 8) });
    for (let i = 0; i < p.length; ) {
      const nlen = p.readUInt32LE(i);
      const name = nameFromBytes(p.subarray(i + 4, i + 4 + nlen));
      let o = i + 4 + nlen;
      const e: DirEntryStat = {
        name,
        mode: p.readUInt32LE(o),
        uid: p.readUInt32LE(o + 4),
        gid: p.readUInt32LE(o + 8),
        nlink: p.readUInt32LE(o + 12),
        size: Number(p.readBigUInt64LE(o + 16)),
        ino: p.readBigUInt64LE(o + 24),
        dev: p.readBigUInt64LE(o + 32),
        rdev: p.readBigUInt64LE(o + 40),
        mtime: ts(o + 48),
        ctime: ts(o + 60),
        atime: ts(o + 72),
      };
      o += 84;
      if (flags & 1) {
        const xlen = p.readUInt32LE(o);
        e.xattrs = parseXattrs(p, o + 4, o + 4 + xlen);
        o += 4 + xlen;
      }
      if (flags & 2) {
        const tlen = p.readUInt32LE(o);
        if ((e.mode & 0o170000) === 0o120000) e.target = nameFromBytes(p.subarray(o + 4, o + 4 + tlen));
        o += 4 + tlen;
      }
      out.push(e);
      i = o;
    }
    return out;
  }

  /**
   * A fingerprint of a tree's names and lstat (mode, owner, size, mtime, ctime, inode), walked in the
   * helper: for local change detection only (two 64-bit FNV-1a variants, not a cache key). `newestMs` is
   * the latest mtime or ctime seen, for the caller's "changed too recently to trust" rule.
   */
  async treeFingerprint(path: string): Promise<{ fingerprint: string; entries: number; newestMs: number }> {
    const p = await this.request('fingerprint', 'W', path, []);
    return {
      fingerprint: p.subarray(0, 16).toString('hex'),
      entries: Number(p.readBigUInt64LE(16)),
      newestMs: Number(p.readBigInt64LE(24)) * 1000 + p.readUInt32LE(32) / 1e6,
    };
  }

  /** utimensat without following a symlink, to the nanosecond. */
  utimens(path: string, atime: Timespec, mtime: Timespec): Promise<void> {
    return this.request('utimensat', 'T', path, [i64(atime.sec), i64(atime.nsec), i64(mtime.sec), i64(mtime.nsec)]).then(
      () => undefined,
    );
  }

  /**
   * Adds inode flags (FS_IOC_SETFLAGS, as chattr does) to `path`. FS_TOPDIR_FL on a directory makes ext4
   * place each new subdirectory in its own block group (Orlov's allocator for top-level dirs).
   */
  addInodeFlags(path: string, flags: number): Promise<void> {
    return this.request('setflags', 'F', path, [i64(flags)]).then(() => undefined);
  }

  /** Flushes the file system holding `dir` to disk (one call instead of an fsync per file). */
  syncfs(dir: string): Promise<void> {
    return this.request('syncfs', 'S', dir, []).then(() => undefined);
  }

  /** Done with the helper: it waits idle for the next start() (at most a few do), or exits. */
  async close(): Promise<void> {
    const healthy = !this.failure && this.queue.length === 0 && this.outgoing.length === 0 && this.child.exitCode === null && this.child.signalCode === null;
    if (healthy && FsOps.idle.length < FsOps.MAX_IDLE && !FsOps.idle.includes(this)) {
      this.setReferenced(false);
      FsOps.idle.push(this);
      return;
    }
    this.child.stdin!.end();
    await this.exited;
  }

  private request(syscall: string, op: string, path: string, rest: Buffer[], rel?: string): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const fields = [nameToBytes(path), ...rest];
    const head = Buffer.allocUnsafe(2);
    head[0] = op.charCodeAt(0);
    head[1] = fields.length;
    this.outgoing.push(head);
    for (const f of fields) {
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32LE(f.length);
      this.outgoing.push(len, f);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    const shown = rel === undefined ? path : rel ? `${path}/${rel}` : path;
    return new Promise((resolve, reject) => this.queue.push({ syscall, path: shown, resolve, reject }));
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outgoing.length === 0) return;
    const data = Buffer.concat(this.outgoing);
    this.outgoing = [];
    this.child.stdin!.write(data);
  }

  private onData(chunk: Buffer): void {
    this.inbox = this.inbox.length ? Buffer.concat([this.inbox, chunk]) : chunk;
    let pos = 0;
    while (this.inbox.length - pos >= 8) {
      const errno = this.inbox.readUInt32LE(pos);
      const len = this.inbox.readUInt32LE(pos + 4);
      if (this.inbox.length - pos < 8 + len) break;
      const payload = this.inbox.subarray(pos + 8, pos + 8 + len);
      pos += 8 + len;
      const p = this.queue.shift();
      if (!p) continue;
      if (errno === 0) p.resolve(payload);
      else p.reject(new FsOpError(p.syscall, p.path, errno));
    }
    this.inbox = this.inbox.subarray(pos);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.queue.splice(0)) p.reject(err);
  }
}
