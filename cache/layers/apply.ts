// Layer tars → a plain directory tree, in one of two forms:
//  - 'overlay' (a snapshot dir, one layer): `.wh.<name>` → 0/0 char device `<name>`, `.wh..wh..opq` →
//    the opaque xattr on its dir (overlay-xattr.ts). Parents are never followed: a symlink parent (made
//    by an earlier entry) is refused.
//  - 'merge' (an export's rootfs, layers applied in order onto one dir): `.wh.<name>` deletes <name>,
//    `.wh..wh..opq` hides what the layers below put in its dir. A parent that a lower layer made a
//    symlink (or a file) is replaced by a real directory, as the upper layer's dir hides it in overlay.
// The entry loop itself (extract.ts) is the one every tar kiln unpacks goes through. Paths are confined
// to the root: `..` that climbs out is refused, a leading "/" is relative to the root (as containerd
// does), and an existing symlink is never followed when resolving a parent or a hard link target.
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync, type Stats } from 'node:fs';
import { fsPath, nameFromBytes } from '../../base/raw-names.js';
import { LayerFormatError } from './decompress.js';
import { TarExtractor, type ExtractOptions } from './extract.js';
import type { FsOps } from './fsops.js';
import type { TarHeader } from './tar-header.js';

export { OPAQUE_XATTR } from './overlay-xattr.js';
import { OPAQUE_XATTR } from './overlay-xattr.js';
const OPAQUE_MARKER = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';

export type ApplyForm = 'overlay' | 'merge';

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(fsPath(p));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export class LayerApplier extends TarExtractor {
  private readonly opaque = new Set<string>();
  /** Relative paths known to be real directories made or checked by this applier. */
  private readonly dirs = new Set<string>(['']);
  /** merge: what the current layer wrote (an opaque marker keeps those). */
  private written = new Set<string>();
  /**
   * overlay: every path this applier may have made below its new, empty dir (a superset). A path not
   * here has nothing at it, so replacing it needs no lstat: each lstat would wait on the dir that the
   * helper is adding symlinks to.
   */
  private readonly placed = new Set<string>();

  constructor(
    root: string,
    ops: FsOps,
    what: string,
    private readonly form: ApplyForm = 'overlay',
    opts: Partial<ExtractOptions> = {},
  ) {
    super(root, ops, { what, inside: 'the layer', error: (m) => new LayerFormatError(m), chown: true, ...opts });
    // A snapshot dir is new and this applier's alone; a merged tree is applied layer by layer and stays sync.
    this.pipelineSymlinks = form === 'overlay';
  }

  /** merge: the next layer starts (its opaque markers keep only what it writes itself); `what` names it. */
  nextLayer(what: string): void {
    this.written = new Set();
    this.opts.what = what;
  }

  protected override deferred(): Promise<void>[] {
    return [...this.opaque].map((rel) => this.ops.lsetxattrInRoot(this.root, rel, OPAQUE_XATTR, Buffer.from('y')));
  }

  /** Makes sure every parent of `rel` is a real directory, creating missing ones; never follows symlinks. */
  private ensureParents(rel: string, entryName: string, create = true): void {
    const parts = rel.split('/');
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix ? `${prefix}/${parts[i]}` : parts[i]!;
      if (this.dirs.has(prefix)) continue;
      const st = lstatOrUndefined(this.full(prefix));
      if (st?.isDirectory()) {
        this.dirs.add(prefix);
        continue;
      }
      // overlay: an earlier entry of this very layer made it; merge: a lower layer did, and this one hides it.
      if (st && this.form === 'overlay') {
        this.fail(`${JSON.stringify(entryName)}: parent ${prefix} is ${st.isSymbolicLink() ? 'a symlink, which unpacking does not follow' : 'not a directory'}`);
      }
      if (!create) this.fail(`${JSON.stringify(entryName)}: parent ${prefix} does not exist`);
      if (st) this.remove(prefix, st);
      mkdirSync(fsPath(this.full(prefix)), 0o755);
      chmodSync(fsPath(this.full(prefix)), 0o755); // not subject to umask
      this.dirs.add(prefix);
    }
  }

  /** True when every parent of `rel` is a real directory (nothing to follow, nothing missing). */
  private parentsAreDirs(rel: string): boolean {
    const parts = rel.split('/');
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix ? `${prefix}/${parts[i]}` : parts[i]!;
      if (!this.dirs.has(prefix) && !lstatOrUndefined(this.full(prefix))?.isDirectory()) return false;
    }
    return true;
  }

  private remove(rel: string, st: Stats): void {
    rmSync(fsPath(this.full(rel)), { recursive: true, force: true }); // rm does not follow symlinks
    this.forget(rel, st.isDirectory());
  }

  protected override forget(rel: string, below: boolean): void {
    super.forget(rel, below);
    this.opaque.delete(rel);
    this.dirs.delete(rel);
    this.placed.delete(rel);
    if (!below) return;
    const prefix = rel + '/';
    for (const set of [this.opaque, this.dirs, this.placed]) for (const k of set) if (k.startsWith(prefix)) set.delete(k);
  }

  /** Called right before an entry is made at `rel`. */
  protected clear(rel: string, keepDir: boolean): boolean {
    const nothingThere = this.form === 'overlay' && !this.placed.has(rel) && !this.dirs.has(rel);
    const kept = !nothingThere && this.replace(rel, keepDir);
    if (this.form === 'overlay') this.placed.add(rel); // what is made next is there
    return kept;
  }

  /** Removes what is at `rel` unless it is a directory and `keepDir`; true when a directory was kept. */
  private replace(rel: string, keepDir: boolean): boolean {
    const st = lstatOrUndefined(this.full(rel));
    if (!st) return false;
    if (keepDir && st.isDirectory()) {
      this.dirs.add(rel);
      return true;
    }
    this.remove(rel, st);
    return false;
  }

  protected override makeDir(rel: string): void {
    super.makeDir(rel);
    this.dirs.add(rel);
  }

  /** merge, opaque dir: drops everything below `rel` that this layer did not write itself. */
  private clearOpaque(rel: string): void {
    for (const raw of readdirSync(fsPath(this.full(rel)), { encoding: 'buffer' })) {
      const child = rel ? `${rel}/${nameFromBytes(raw)}` : nameFromBytes(raw);
      const st = lstatSync(fsPath(this.full(child)));
      if (!this.written.has(child)) this.remove(child, st);
      else if (st.isDirectory()) this.clearOpaque(child);
    }
  }

  /** Whiteouts and opaque markers, in this applier's form. Returns true when the entry was one. */
  private async whiteout(rel: string, h: TarHeader): Promise<boolean> {
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    const parent = slash < 0 ? '' : rel.slice(0, slash);
    // aufs bookkeeping at the top (.wh..wh.plnk/…, .wh..wh.aufs): not content, as in Docker's unpacker.
    if (rel.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX) && !rel.startsWith(OPAQUE_MARKER)) return true;
    if (!base.startsWith(WHITEOUT_PREFIX)) return false;
    // merge: below a missing dir or a lower layer's symlink there is nothing of this tree to hide.
    if (this.form === 'merge' && !this.parentsAreDirs(rel)) return true;
    this.ensureParents(rel, h.name);
    if (base === OPAQUE_MARKER) {
      if (this.form === 'overlay') this.opaque.add(parent);
      else this.clearOpaque(parent);
      return true;
    }
    if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return true; // aufs bookkeeping (.wh..wh.plnk…)
    const target = (parent ? parent + '/' : '') + base.slice(WHITEOUT_PREFIX.length);
    if (target === parent || base === '.wh..' || base === '.wh...') this.fail(`invalid whiteout ${JSON.stringify(h.name)}`);
    this.clear(target, false);
    if (this.form === 'overlay') await this.mknodWhiteout(target, h);
    return true;
  }

  protected async place(parts: string[], h: TarHeader): Promise<string | undefined> {
    const rel = parts.join('/');
    if (await this.whiteout(rel, h)) return undefined;
    if (rel === '') {
      if (h.type !== 'dir') this.fail(`entry ${JSON.stringify(h.name)} names the root but is not a directory`);
      if (this.form === 'merge') return undefined; // the destination keeps its own metadata
      this.chown('', h);
      chmodSync(this.root, h.mode);
      this.record('', h);
      return undefined;
    }
    this.ensureParents(rel, h.name);
    if (this.form === 'merge') this.written.add(rel);
    return rel;
  }

  protected linkTarget(h: TarHeader): string {
    const target = this.clean(h.linkname, 'hardlink target').join('/');
    if (this.form === 'overlay') this.ensureParents(target, h.linkname, false);
    const st = this.form === 'overlay' || this.parentsAreDirs(target) ? lstatOrUndefined(this.full(target)) : undefined;
    if (!st || st.isDirectory()) {
      this.fail(`hardlink ${JSON.stringify(h.name)} points to ${JSON.stringify(h.linkname)}, which is not an earlier file of this ${this.form === 'overlay' ? 'layer' : 'image'}`);
    }
    return target;
  }
}
