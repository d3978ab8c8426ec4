// Receives one of the client's local dirs (FileSync.DiffCopy, fsutil's protocol) into a dir the builder
// keeps between builds: the client walks its dir and sends a stat per entry; kiln asks only for the
// contents of files whose stat differs from what it already holds (so an unchanged context sends no file
// contents), writes them, and removes what the client no longer has. The entries are untrusted: each
// path must be a clean relative path whose parent arrived as a directory in the same walk, so nothing is
// ever written through a symlink; files are opened with O_NOFOLLOW on top.
import { closeSync, constants, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync, writeSync, chmodSync, lutimesSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../base/errors.js';
import { kindOf, unixPerm } from './file-mode.js';
import { PACKET, packetCodec, type Packet, type Stat } from './fsutil-packets.js';
import type { ClientSession } from './session-grpc.js';

export const DIFFCOPY = '/moby.filesync.v1.FileSync/DiffCopy';

export interface ReceiveOptions {
  dirName: string;
  includePatterns?: string[];
  excludePatterns?: string[];
  followPaths?: string[];
  signal?: AbortSignal;
}

export interface ReceiveStats {
  entries: number;
  filesRequested: number;
  /** File content bytes that crossed the session. */
  contentBytes: number;
}

interface Known {
  mode: number;
  size: number;
  modTime: number;
  linkname: string;
}

const STATE_FILE = '.kiln-sync.json';

/** Header values: gRPC metadata must be ASCII; others go URL-encoded with a `-encoded` marker, as BuildKit does. */
function header(md: Record<string, string | string[]>, key: string, values: string[] | undefined): void {
  if (!values?.length) return;
  if (values.some((v) => /[^\x20-\x7e]/.test(v))) {
    md[key] = values.map((v) => encodeURIComponent(v));
    md[`${key}-encoded`] = '1';
  } else md[key] = values;
}

function checkPath(p: string): void {
  if (!p || p.startsWith('/') || p.split('/').some((c) => c === '' || c === '.' || c === '..') || p.includes('\0')) {
    throw new UserError(`the client sent an invalid path in its files: ${JSON.stringify(p)}`);
  }
}

/** Receives `opts.dirName` from the client into `dest` (its parent must exist; `dest` is the builder's). */
export async function receiveDir(session: ClientSession, dest: string, opts: ReceiveOptions): Promise<ReceiveStats> {
  if (!session.supports(DIFFCOPY)) throw new UserError(`the client does not share files (${DIFFCOPY} missing from its session)`);
  const codec = packetCodec();
  const md: Record<string, string | string[]> = { 'dir-name': opts.dirName };
  header(md, 'include-patterns', opts.includePatterns);
  header(md, 'exclude-patterns', opts.excludePatterns);
  header(md, 'followpaths', opts.followPaths);

  mkdirSync(dest, { recursive: true });
  const stateFile = join(dest, '..', `${basenameOf(dest)}${STATE_FILE}`);
  let known: Record<string, Known> = {};
  try {
    known = JSON.parse(readFileSync(stateFile, 'utf8')) as Record<string, Known>;
  } catch {
    known = {};
  }
  // Until this receive completes, nothing of dest is trusted by a later one.
  rmSync(stateFile, { force: true });

  const call = session.open(DIFFCOPY, md);
  const abort = () => call.cancel();
  opts.signal?.addEventListener('abort', abort, { once: true });
  const stats: ReceiveStats = { entries: 0, filesRequested: 0, contentBytes: 0 };
  try {
    // 1. The walk: one stat per entry, in order (parents first), then an empty stat.
    const entries: { id: number; stat: Stat }[] = [];
    const dirs = new Set<string>(['']);
    let id = 0;
    for (;;) {
      const raw = await call.recv();
      if (!raw) throw new UserError(`the client closed its files (${opts.dirName}) before sending them`);
      const p = codec.decode(raw);
      if (p.type === PACKET.ERR) throw new UserError(`the client could not send ${opts.dirName}: ${p.data?.toString() ?? ''}`);
      if (p.type !== PACKET.STAT) throw new UserError(`protocol: expected a stat from the client, got packet type ${p.type}`);
      if (!p.stat || !p.stat.path) break;
      const stat = p.stat;
      checkPath(stat.path);
      const slash = stat.path.lastIndexOf('/');
      const parent = slash < 0 ? '' : stat.path.slice(0, slash);
      if (!dirs.has(parent)) throw new UserError(`the client sent ${JSON.stringify(stat.path)} before (or without) its parent directory`);
      const kind = kindOf(stat.mode);
      if (kind === 'dir') dirs.add(stat.path);
      entries.push({ id: id++, stat });
    }
    stats.entries = entries.length;

    // 2. Make dest match the walk: remove what the client no longer has (or has with another type).
    const wanted = new Map(entries.map((e) => [e.stat.path, e.stat]));
    prune(dest, '', wanted);

    // 3. Dirs and symlinks now; files whose stat changed are requested.
    const requests = new Map<number, { stat: Stat; fd: number }>();
    for (const { id, stat } of entries) {
      const full = join(dest, stat.path);
      const kind = kindOf(stat.mode);
      if (kind === 'dir') {
        if (!existsSync(full)) mkdirSync(full, { mode: 0o755 });
      } else if (kind === 'symlink') {
        const prev = known[stat.path];
        if (!(prev && prev.linkname === stat.linkname && lexists(full))) {
          rmSync(full, { force: true, recursive: true });
          symlinkSync(stat.linkname, full);
        }
      } else if (kind === 'file') {
        const prev = known[stat.path];
        const same = prev && prev.size === stat.size && prev.modTime === stat.modTime && prev.mode === stat.mode && lexists(full);
        if (!same) {
          rmSync(full, { force: true, recursive: true });
          const fd = openSync(full, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
          requests.set(id, { stat, fd });
        }
      }
      // Devices, fifos and sockets are not part of a build context.
    }
    stats.filesRequested = requests.size;
    for (const id of requests.keys()) await call.send(codec.encode({ type: PACKET.REQ, ID: id }));

    // 4. File data: chunks per id, an empty chunk ends a file.
    let open = requests.size;
    while (open > 0) {
      opts.signal?.throwIfAborted();
      const raw = await call.recv();
      if (!raw) throw new UserError(`the client closed its files (${opts.dirName}) before sending them all`);
      const p: Packet = codec.decode(raw);
      if (p.type === PACKET.ERR) throw new UserError(`the client could not send ${opts.dirName}: ${p.data?.toString() ?? ''}`);
      if (p.type !== PACKET.DATA) continue;
      const r = requests.get(p.ID ?? -1);
      if (!r) throw new UserError(`protocol: the client sent data for file ${p.ID} that was not requested`);
      if (p.data && p.data.length) {
        writeSync(r.fd, p.data);
        stats.contentBytes += p.data.length;
      } else {
        closeSync(r.fd);
        requests.delete(p.ID!);
        open--;
      }
    }
    await call.send(codec.encode({ type: PACKET.FIN }));
    // The sender answers fin with fin.
    for (;;) {
      const raw = await call.recv();
      if (!raw || codec.decode(raw).type === PACKET.FIN) break;
    }
    call.end();

    // 5. Modes and times, deepest first so a dir's time is set after its contents.
    for (const { stat } of [...entries].reverse()) {
      const full = join(dest, stat.path);
      const kind = kindOf(stat.mode);
      const t = stat.modTime / 1e9;
      if (kind === 'symlink') lutimesSync(full, t, t);
      else if (kind === 'file' || kind === 'dir') {
        chmodSync(full, unixPerm(stat.mode));
        utimesSync(full, t, t);
      }
    }
    const next: Record<string, Known> = {};
    for (const { stat } of entries) next[stat.path] = { mode: stat.mode, size: Number(stat.size), modTime: Number(stat.modTime), linkname: stat.linkname };
    writeFileSync(stateFile, JSON.stringify(next));
    return stats;
  } catch (err) {
    call.cancel();
    throw opts.signal?.aborted ? opts.signal.reason : err;
  } finally {
    opts.signal?.removeEventListener('abort', abort);
  }
}

function basenameOf(p: string): string {
  return p.replace(/\/+$/, '').split('/').pop() ?? p;
}

function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Removes entries under dir/rel that the walk does not have with the same type. */
function prune(root: string, rel: string, wanted: Map<string, Stat>): void {
  const dir = rel ? join(root, rel) : root;
  for (const name of readdirSync(dir)) {
    const p = rel ? `${rel}/${name}` : name;
    const full = join(root, p);
    const want = wanted.get(p);
    const st = lstatSync(full);
    const have = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    if (!want || kindOf(want.mode) !== have) rmSync(full, { recursive: true, force: true });
    else if (have === 'dir') prune(root, p, wanted);
  }
}
