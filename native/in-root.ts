// Paths that come from an image, a layer, a context or a tenant are resolved INSIDE their root, never on
// the host: a symlink is followed as if the root were `/` (an absolute target restarts at the root, `..`
// stops at the root), the way openat2(RESOLVE_IN_ROOT) and BuildKit's fs.RootPath do.
//
// This module is for trees that no untrusted process changes while kiln reads them (a layer being
// applied, a rootfs between RUNs, a tenant's context store): it walks with lstat and opens the final
// component with O_NOFOLLOW. Trees a running container can change (bind and cache mount sources) are
// resolved by the native sandbox helper with openat2 instead.
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';

/** A path from inside a root that cannot be resolved there (a symlink loop, a non-directory parent). */
export class InRootError extends Error {
  readonly userFacing = true;
  constructor(
    message: string,
    readonly code: 'ELOOP' | 'ENOTDIR' | 'ENOTREG' | 'EFBIG',
  ) {
    super(message);
    this.name = 'InRootError';
  }
}

const MAX_LINKS = 40; // as the kernel's MAXSYMLINKS

function parts(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

export interface ResolveOptions {
  /** Follow a symlink in the last component too (default true, as open(2) does). */
  followFinal?: boolean;
}

/**
 * The host path of `path` (absolute or relative, as seen from inside `root`), with every symlink on the way
 * resolved inside `root`. Components that do not exist are appended as they are (nothing there to follow).
 * The result always starts with `root`.
 */
export function resolveInRoot(root: string, path: string, opts: ResolveOptions = {}): string {
  const followFinal = opts.followFinal ?? true;
  const done: string[] = [];
  let todo = parts(path);
  let links = 0;
  let missing = false;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') {
      done.pop(); // never above the root
      missing = false; // what is left exists, or lstat says so again
      continue;
    }
    if (missing) {
      done.push(c);
      continue;
    }
    const host = join(root, ...done, c);
    let st;
    try {
      st = lstatSync(host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        missing = true;
        done.push(c);
        continue;
      }
      if (code === 'ENOTDIR') throw new InRootError(`${path}: a parent is not a directory`, 'ENOTDIR');
      throw err;
    }
    const last = todo.length === 0;
    if (st.isSymbolicLink() && (!last || followFinal)) {
      if (++links > MAX_LINKS) throw new InRootError(`${path}: too many levels of symbolic links`, 'ELOOP');
      const target = readlinkSync(host);
      if (target.startsWith('/')) done.length = 0;
      todo = [...parts(target), ...todo];
      continue;
    }
    if (!last && !st.isDirectory()) throw new InRootError(`${path}: a parent is not a directory`, 'ENOTDIR');
    done.push(c);
  }
  return join(root, ...done);
}

export interface ReadInRootOptions {
  /** Refuse files larger than this (a crafted /etc/passwd pointing at a huge file). */
  maxBytes: number;
}

/**
 * Reads a regular file at `path` inside `root`, or undefined when nothing is there. Symlinks resolve inside
 * the root; the final open neither follows a symlink nor blocks (a FIFO or device is refused, not waited on).
 */
export function readFileInRoot(root: string, path: string, opts: ReadInRootOptions): Buffer | undefined {
  return readRegularFile(resolveInRoot(root, path), path, opts);
}

/**
 * Reads the regular file at `host` (already resolved inside its root) without following a final symlink,
 * blocking on a FIFO or device, or reading more than opts.maxBytes; undefined when nothing is there.
 * `path` names it in errors, as seen from inside the root.
 */
export function readRegularFile(host: string, path: string, opts: ReadInRootOptions): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') throw new InRootError(`${path}: too many levels of symbolic links`, 'ELOOP');
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InRootError(`${path}: not a regular file`, 'ENOTREG');
    if (st.size > opts.maxBytes) throw new InRootError(`${path}: larger than ${opts.maxBytes} bytes`, 'EFBIG');
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}
