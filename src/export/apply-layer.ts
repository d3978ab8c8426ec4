// Applies layer tars, in order, onto a plain directory with OCI whiteout semantics: `.wh.NAME` deletes NAME
// from the layers below, `.wh..wh..opq` in a directory hides everything the layers below put there. Paths
// never leave the root: `..` is refused and a symlink met on the way to an entry is replaced by a real
// directory rather than followed.
//
// tar-stream reads the tar. Its known limits (see DESIGN.md): uid/gid above 262143 only survive when the
// tar carries them as PAX records, binary xattrs (security.capability) would be corrupted, so xattrs are
// not applied at all here, and mtimes are whole seconds.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import * as tar from 'tar-stream';
import { DigestCounter } from '../../base/oci/digest.js';
import { ExportError } from './types.js';

const OPAQUE = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';
const isRoot = process.getuid?.() === 0;

/** What survives across layers: directory mtimes, set once every layer is in (children change them). */
export interface ApplyState {
  dirTimes: Map<string, Date>;
}

export function newApplyState(): ApplyState {
  return { dirTimes: new Map() };
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Path components of a tar name inside the root; throws on `..`. */
function components(name: string, what: string): string[] {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new ExportError(`${what}: entry ${JSON.stringify(name)} points outside the image root`);
  return parts;
}

/** Makes every parent of `parts` a real directory under root (missing ones created, others replaced). */
function ensureParents(root: string, parts: string[]): void {
  let cur = root;
  for (const p of parts.slice(0, -1)) {
    cur = join(cur, p);
    const st = lstatOrUndefined(cur);
    if (st?.isDirectory()) continue;
    if (st) rmSync(cur, { force: true, recursive: true });
    mkdirSync(cur, { mode: 0o755 });
  }
}

/** True when every parent of `parts` is a real directory (nothing to follow, nothing missing). */
function parentsAreDirs(root: string, parts: string[]): boolean {
  let cur = root;
  for (const p of parts.slice(0, -1)) {
    cur = join(cur, p);
    if (!lstatOrUndefined(cur)?.isDirectory()) return false;
  }
  return true;
}

/** Removes what is at `p` unless it is a directory and `keepDir` is set. */
function clear(p: string, keepDir: boolean): void {
  const st = lstatOrUndefined(p);
  if (!st || (keepDir && st.isDirectory())) return;
  rmSync(p, { force: true, recursive: true });
}

/** Drops the pending dir times of `rel` and everything below it: a later entry replaced that path. */
function forgetTimes(state: ApplyState, rel: string): void {
  state.dirTimes.delete(rel);
  const prefix = rel + '/';
  for (const k of state.dirTimes.keys()) if (k.startsWith(prefix)) state.dirTimes.delete(k);
}

/** Opaque directory: drop everything below `dir` that this layer did not write itself. */
function clearOpaque(dir: string, rel: string, written: Set<string>): void {
  for (const name of readdirSync(dir)) {
    const r = rel ? `${rel}/${name}` : name;
    const p = join(dir, name);
    if (!written.has(r)) rmSync(p, { force: true, recursive: true });
    else if (lstatSync(p).isDirectory()) clearOpaque(p, r, written);
  }
}

function setOwner(p: string, h: tar.Header): void {
  if (isRoot) lchownSync(p, h.uid ?? 0, h.gid ?? 0);
}

async function writeFileEntry(p: string, h: tar.Header, body: AsyncIterable<Buffer>): Promise<void> {
  const fd = openSync(p, 'wx', 0o600);
  try {
    for await (const chunk of body) {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
    }
  } finally {
    closeSync(fd);
  }
  setOwner(p, h);
  chmodSync(p, h.mode ?? 0o644); // after chown, which clears setuid/setgid
  utimesSync(p, h.mtime ?? new Date(0), h.mtime ?? new Date(0));
}

function makeNode(p: string, h: tar.Header): boolean {
  // Node has no mknod(2); device nodes are rare in images and need root anyway.
  if (!isRoot) return false;
  const kind = h.type === 'character-device' ? 'c' : h.type === 'block-device' ? 'b' : 'p';
  const args = kind === 'p' ? [p, 'p'] : [p, kind, String(h.devmajor ?? 0), String(h.devminor ?? 0)];
  const r = spawnSync('mknod', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mknod ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return true;
}

/**
 * Applies one uncompressed layer tar onto `root`. `what` names the layer in errors. Directory mtimes are
 * collected in `state`; call finishApply once all layers are applied.
 */
export async function applyLayerTar(input: Readable, root: string, state: ApplyState, what: string): Promise<void> {
  const extract = tar.extract();
  input.on('error', (err) => extract.destroy(err));
  input.pipe(extract as unknown as NodeJS.WritableStream);
  try {
    await applyEntries(extract, root, state, what);
  } catch (err) {
    input.destroy(); // stop reading (and close the blob) once the layer is known to be bad
    throw err;
  }
}

async function applyEntries(extract: tar.Extract, root: string, state: ApplyState, what: string): Promise<void> {
  const written = new Set<string>();
  for await (const entry of extract) {
    const h = entry.header;
    const parts = components(h.name, what);
    const rel = parts.join('/');
    const base = parts[parts.length - 1] ?? '';
    if (parts.length === 0) {
      entry.resume(); // the root itself: the destination keeps its own metadata
      continue;
    }
    if (base === OPAQUE) {
      entry.resume();
      ensureParents(root, parts);
      clearOpaque(join(root, ...parts.slice(0, -1)), parts.slice(0, -1).join('/'), written);
      continue;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      entry.resume();
      const victim = [...parts.slice(0, -1), base.slice(WHITEOUT_PREFIX.length)];
      if (parentsAreDirs(root, victim)) clear(join(root, ...victim), false);
      forgetTimes(state, victim.join('/'));
      continue;
    }
    ensureParents(root, parts);
    // A non-dir entry replaces a dir that was there: that dir's pending times (and its children's) go too.
    if (h.type !== 'directory' && state.dirTimes.size > 0 && lstatOrUndefined(join(root, ...parts))?.isDirectory()) forgetTimes(state, rel);
    const p = join(root, ...parts);
    written.add(rel);
    switch (h.type) {
      case 'directory': {
        entry.resume();
        clear(p, true);
        if (!lstatOrUndefined(p)) mkdirSync(p, { mode: 0o755 });
        setOwner(p, h);
        chmodSync(p, h.mode ?? 0o755);
        state.dirTimes.set(rel, h.mtime ?? new Date(0));
        break;
      }
      case 'file':
      case 'contiguous-file':
        clear(p, false);
        await writeFileEntry(p, h, entry as AsyncIterable<Buffer>);
        break;
      case 'symlink':
        entry.resume();
        clear(p, false);
        symlinkSync(h.linkname ?? '', p);
        setOwner(p, h);
        lutimesSync(p, h.mtime ?? new Date(0), h.mtime ?? new Date(0));
        break;
      case 'link': {
        entry.resume();
        const targetParts = components(h.linkname ?? '', what);
        const target = join(root, ...targetParts);
        // The target is looked up without following symlinks, so a link can never reach outside the root.
        const st = parentsAreDirs(root, targetParts) ? lstatOrUndefined(target) : undefined;
        if (!st || st.isDirectory()) throw new ExportError(`${what}: hard link ${rel} points at missing ${h.linkname}`);
        clear(p, false);
        linkSync(target, p);
        break;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo':
        entry.resume();
        clear(p, false);
        if (makeNode(p, h)) {
          setOwner(p, h);
          chmodSync(p, h.mode ?? 0o644);
          utimesSync(p, h.mtime ?? new Date(0), h.mtime ?? new Date(0));
        }
        break;
      default:
        entry.resume();
    }
  }
}

/**
 * Sets the collected directory mtimes, deepest first (setting a child's time does not touch its parent's).
 * A dir whose path now goes through a symlink (a later layer replaced a parent) is skipped: its time
 * would land on the link's target, possibly outside the root.
 */
export function finishApply(root: string, state: ApplyState): void {
  const dirs = [...state.dirTimes].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
  for (const [rel, t] of dirs) {
    const parts = rel.split('/').filter((c) => c !== '');
    if (!parentsAreDirs(root, parts)) continue;
    const p = join(root, ...parts);
    if (lstatOrUndefined(p)?.isDirectory()) lutimesSync(p, t, t);
  }
}

/** A pass-through that hashes the uncompressed tar, to check it against the layer's diffID. */
export function diffIdCheck(expected: string, what: string): Transform {
  const counter = new DigestCounter();
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      counter.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const actual = counter.digest();
      cb(actual === expected ? null : new ExportError(`${what}: uncompressed content is ${actual}, but the image config says diffID ${expected}`));
    },
  });
}
