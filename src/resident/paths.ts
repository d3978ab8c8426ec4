// Where a state dir's resident engine listens, and whether the thing at that path may be trusted.
// Imports only Node built-ins: the client loads this before (and instead of) the big CLI bundle.
import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** The state dir, as cache/state.ts defaultStateRoot computes it (repeated here: that module loads level). */
/** Absolute: the engine serves clients in other working dirs (a relative KILN_ROOT is this process's cwd's). */
export function stateRoot(env: NodeJS.ProcessEnv): string {
  if (env.KILN_ROOT) return resolve(env.KILN_ROOT);
  return resolve(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'kiln');
}

export function socketPath(root: string): string {
  return join(root, 'engine.sock');
}

export function engineLog(root: string): string {
  return join(root, 'engine.log');
}

/** Holds the pid of an engine that was spawned and does not listen yet (removed once it does). */
export function startingPath(root: string): string {
  return join(root, 'engine.starting');
}

/** The pid ROOT/engine.starting holds: read without following a symlink or blocking on a FIFO planted there. */
export function startingPid(root: string): number | undefined {
  try {
    const fd = openSync(startingPath(root), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      if (!fstatSync(fd).isFile()) return undefined;
      const pid = Number(readFileSync(fd, 'utf8'));
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/**
 * The pid of this state dir's engine that is starting: the marker names a live process whose command line
 * is `… engine serve ROOT` (a stale marker or a reused pid is not one). Undefined otherwise.
 */
export function startingEngine(root: string): number | undefined {
  const pid = startingPid(root);
  return pid !== undefined && isEngineProcess(pid, root) ? pid : undefined;
}

/** Whether pid is a live engine process (`… engine serve ROOT`), of `root` when given. */
export function isEngineProcess(pid: number, root?: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    return argv.at(-3) === 'engine' && argv.at(-2) === 'serve' && (root === undefined || argv.at(-1) === root);
  } catch {
    return false;
  }
}

/** A unix socket path longer than sun_path (108 bytes with its NUL) cannot be bound or reached. */
export function socketPathFits(path: string): boolean {
  return Buffer.byteLength(path) <= 107;
}

export type SocketCheck = { kind: 'absent' } | { kind: 'ours' } | { kind: 'refused'; reason: string };

/**
 * What is at the socket path, without following a symlink: nothing, a socket this user owns and nobody
 * else may use (mode 0600 or tighter), or something to refuse. Builds send their environment (secrets
 * among it) over this socket, so a socket another user planted, or a symlink to one, is never used.
 */
export function checkSocket(path: string): SocketCheck {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return { kind: 'absent' };
  }
  const uid = process.getuid?.() ?? 0;
  if (st.isSymbolicLink()) return { kind: 'refused', reason: `${path} is a symbolic link` };
  if (!st.isSocket()) return { kind: 'refused', reason: `${path} is not a socket` };
  if (st.uid !== uid) return { kind: 'refused', reason: `${path} is owned by uid ${st.uid}, not by you (uid ${uid})` };
  if (st.mode & 0o077) return { kind: 'refused', reason: `${path} is open to other users (mode ${(st.mode & 0o777).toString(8)})` };
  return { kind: 'ours' };
}

/**
 * Which build of kiln a process runs: the CLI entry's mtime and size (scripts/bundle.mjs replaces
 * dist/bundle/main.js last on every rebuild). A client never hands its build to an engine that runs
 * other code than its own: the engine's chunks may be gone, or its behaviour differ.
 */
export function codeStamp(candidates: URL[]): string {
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (!existsSync(path)) continue;
    const st = statSync(path);
    return `${path}:${st.mtimeMs}:${st.size}`;
  }
  return 'unknown';
}
