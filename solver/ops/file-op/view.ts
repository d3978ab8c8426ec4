// A read-only view of a filesystem state without mounting it. For a layer stack (overlay upperdir form,
// topmost first) it applies overlay's rules: the topmost layer holding a path wins, a whiteout (0/0 char
// device) hides the path below, a non-directory hides everything under its path below, and an opaque
// directory (xattr trusted.overlay.opaque=y) hides the lower layers' content of that directory. For a
// plain directory (the build context) it hides the .dockerignore'd paths. Symlinks resolve inside the
// state's root: an absolute target or `..` never leaves it.
import { lstatSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import type { FsOps } from '../../../cache/layers/fsops.js';
import { isOpaqueXattrs } from '../../../cache/layers/overlay-xattr.js';
import { IgnoreMatcher } from '../../../base/patterns/dockerignore.js';
import { fsPath, readdirRaw, readlinkRaw } from '../../../base/raw-names.js';

export interface ViewEntry {
  /** Where the entry's bytes are on the host. */
  real: string;
  stat: Stats;
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(fsPath(p));
  } catch {
    return undefined;
  }
}

/** Splits a path inside the root into clean components ('' and '.' dropped, '..' kept for resolve). */
export function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s !== '' && s !== '.');
}

export class FsView {
  private readonly opaque = new Map<string, Promise<boolean>>();
  private readonly ignore?: IgnoreMatcher;
  /** Excluded directories checked for re-included contents, by context-relative path. */
  private readonly hiddenDirs = new Map<string, boolean>();

  private constructor(
    private readonly layers: string[],
    private readonly fsops: FsOps | undefined,
    excludes: string[] = [],
  ) {
    if (excludes.length) this.ignore = new IgnoreMatcher(excludes);
  }

  /** A layer stack, topmost first. */
  static ofLayers(layersTopFirst: string[], fsops: FsOps): FsView {
    return new FsView(layersTopFirst, fsops);
  }

  /** A plain directory with .dockerignore-style excludes. */
  static ofDir(dir: string, excludes: string[]): FsView {
    return new FsView([dir], undefined, excludes);
  }

  get isPlainDir(): boolean {
    return this.fsops === undefined;
  }

  private isOpaque(dir: string): Promise<boolean> {
    if (!this.fsops) return Promise.resolve(false);
    let p = this.opaque.get(dir);
    if (!p) {
      p = this.fsops.llistxattrs(dir).then(
        (x) => isOpaqueXattrs(x),
        () => false,
      );
      this.opaque.set(dir, p);
    }
    return p;
  }

  /** Forget cached opaque flags under a layer dir that is being written. */
  invalidate(): void {
    this.opaque.clear();
  }

  /**
   * Is a context path hidden by the excludes? As BuildKit's walk: an excluded directory still shows when a
   * `!exception` brings back something below it (then holding only what is brought back).
   */
  private excluded(parts: string[]): boolean {
    if (this.ignore === undefined || parts.length === 0) return false;
    const rel = parts.join('/');
    if (!this.ignore.matches(rel)) return false;
    if (!this.ignore.mayIncludeBelow(rel)) return true;
    let hidden = this.hiddenDirs.get(rel);
    if (hidden === undefined) {
      const real = join(this.layers[0]!, ...parts);
      hidden = !lstatOrUndefined(real)?.isDirectory() || readdirRaw(real).every((n) => this.excluded([...parts, n]));
      this.hiddenDirs.set(rel, hidden);
    }
    return hidden;
  }

  /** A plain directory's entry at a path, without a promise (walks of big contexts). */
  lookupPlain(path: string): ViewEntry | undefined {
    const parts = splitPath(path);
    if (this.excluded(parts)) return undefined;
    const real = join(this.layers[0]!, ...parts);
    const stat = lstatOrUndefined(real);
    return stat ? { real, stat } : undefined;
  }

  /** A plain directory's names in a directory, sorted, without a promise. */
  readdirPlain(path: string): string[] {
    const parts = splitPath(path);
    const names: string[] = [];
    for (const n of readdirRaw(join(this.layers[0]!, ...parts))) if (!this.excluded([...parts, n])) names.push(n);
    return names.sort();
  }

  /** The entry at a path (no symlink is followed), or undefined. */
  async lookup(path: string): Promise<ViewEntry | undefined> {
    if (this.isPlainDir) return this.lookupPlain(path);
    const parts = splitPath(path);
    for (const layer of this.layers) {
      const r = await this.inLayer(layer, parts);
      if (r.kind === 'found') return r.entry;
      if (r.kind === 'hidden') return undefined;
    }
    return undefined;
  }

  /** Looks a path up in one layer: found, absent (look lower), or hidden (stop: nothing lower counts). */
  private async inLayer(layer: string, parts: string[]): Promise<{ kind: 'found'; entry: ViewEntry } | { kind: 'absent' } | { kind: 'hidden' }> {
    let stopBelow = false;
    for (let k = 1; k < parts.length; k++) {
      const p = join(layer, ...parts.slice(0, k));
      const st = lstatOrUndefined(p);
      if (!st) return { kind: stopBelow ? 'hidden' : 'absent' };
      if (isWhiteout(st) || !st.isDirectory()) return { kind: 'hidden' };
      if (await this.isOpaque(p)) stopBelow = true;
    }
    const real = join(layer, ...parts);
    const st = lstatOrUndefined(real);
    if (st) return isWhiteout(st) ? { kind: 'hidden' } : { kind: 'found', entry: { real, stat: st } };
    return { kind: stopBelow ? 'hidden' : 'absent' };
  }

  /** Names in a directory, merged across layers, sorted. */
  async readdir(path: string): Promise<string[]> {
    if (this.isPlainDir) return this.readdirPlain(path);
    const parts = splitPath(path);
    const names = new Set<string>();
    const hidden = new Set<string>();
    for (const layer of this.layers) {
      let stopBelow = false;
      let absent = false;
      for (let k = 1; k <= parts.length; k++) {
        const p = join(layer, ...parts.slice(0, k));
        const st = lstatOrUndefined(p);
        if (!st) {
          absent = true;
          break;
        }
        if (isWhiteout(st) || !st.isDirectory()) return [...names].sort();
        if (await this.isOpaque(p)) stopBelow = true;
      }
      if (!absent) {
        const dir = join(layer, ...parts);
        for (const n of readdirRaw(dir)) {
          if (names.has(n) || hidden.has(n)) continue;
          const st = lstatOrUndefined(join(dir, n));
          if (st && isWhiteout(st)) hidden.add(n);
          else names.add(n);
        }
      }
      if (stopBelow) break;
    }
    return [...names].sort();
  }

  /**
   * Resolves symlinks in a path inside the root (like containerd's fs.RootPath): every component but
   * the last is followed; the last only when followLast. Returns the clean path ('' is the root).
   */
  async resolve(path: string, followLast: boolean): Promise<string> {
    let pending = splitPath(path);
    const done: string[] = [];
    let hops = 0;
    while (pending.length) {
      const name = pending.shift()!;
      if (name === '..') {
        done.pop();
        continue;
      }
      const candidate = [...done, name];
      const last = pending.length === 0;
      const e = await this.lookup(candidate.join('/'));
      if (e && e.stat.isSymbolicLink() && (!last || followLast)) {
        if (++hops > 255) throw new Error(`too many levels of symbolic links in ${path}`);
        const target = readlinkRaw(e.real);
        if (target.startsWith('/')) done.length = 0;
        pending = [...splitPath(target), ...pending];
        continue;
      }
      done.push(name);
    }
    return done.join('/');
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    const resolved = await this.resolve(path, true);
    const e = await this.lookup(resolved);
    if (!e || !e.stat.isFile()) return undefined;
    const { readFileSync } = await import('node:fs');
    return readFileSync(fsPath(e.real));
  }
}

export const posixJoin = posix.join;
