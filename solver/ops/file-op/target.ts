// The layer a file op writes: a fresh overlay-form dir on top of the base state. Writes go to the layer;
// lookups see the layer over the base (the merged view). Creating something under a directory that only
// the base has first creates that directory in the layer with the base's mode and owner, as overlayfs
// copy-up would, so the layer carries its parent entries like a docker layer does.
import { chownSync, chmodSync, lstatSync, mkdirSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import type { FsOps } from '../../../cache/layers/fsops.js';
import { OPAQUE_XATTR } from '../../../cache/layers/overlay-xattr.js';
import { FsView, splitPath } from './view.js';
import type { Owner } from './owner.js';
import { fsPath } from '../../../base/raw-names.js';

export class LayerTarget {
  readonly merged: FsView;
  readonly base: FsView;

  constructor(
    readonly dir: string,
    baseLayersTopFirst: string[],
    readonly fsops: FsOps,
  ) {
    this.merged = FsView.ofLayers([dir, ...baseLayersTopFirst], fsops);
    this.base = FsView.ofLayers(baseLayersTopFirst, fsops);
  }

  real(rel: string): string {
    return join(this.dir, ...splitPath(rel));
  }

  private inLayer(rel: string) {
    try {
      return lstatSync(fsPath(this.real(rel)));
    } catch {
      return undefined;
    }
  }

  /**
   * Makes sure directory `rel` exists in the layer. Missing ancestors that the merged view has are
   * copied up with their metadata; ones it lacks are created with `mode`/`owner`/`mtime` (MkdirAll).
   * Returns the paths it created that did not exist in the merged view.
   */
  async mkdirAll(rel: string, mode = 0o755, owner?: Owner, mtime?: Date): Promise<string[]> {
    const parts = splitPath(rel);
    const created: string[] = [];
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      const here = this.inLayer(p);
      if (here?.isDirectory()) continue;
      const merged = await this.merged.lookup(p);
      if (merged && !merged.stat.isDirectory()) throw new Error(`cannot create directory /${p}: a file of that name exists`);
      if (here) rmSync(fsPath(this.real(p)), { force: true }); // a whiteout or file of this layer
      mkdirSync(fsPath(this.real(p)));
      // A new dir where this layer had hidden the base's path must not show the base's old content.
      if (here) await this.fsops.lsetxattr(this.real(p), OPAQUE_XATTR, Buffer.from('y'));
      if (merged) {
        chmodSync(fsPath(this.real(p)), merged.stat.mode & 0o7777);
        chownSync(fsPath(this.real(p)), merged.stat.uid, merged.stat.gid);
        utimesSync(fsPath(this.real(p)), merged.stat.atime, merged.stat.mtime);
      } else {
        chmodSync(fsPath(this.real(p)), mode & 0o7777);
        if (owner) chownSync(fsPath(this.real(p)), owner.uid, owner.gid);
        if (mtime) utimesSync(fsPath(this.real(p)), mtime, mtime);
        created.push(p);
      }
    }
    return created;
  }

  /** Removes whatever the layer has at `rel` and, if the base still shows something there, hides it. */
  async remove(rel: string, baseHas: boolean): Promise<void> {
    rmSync(fsPath(this.real(rel)), { recursive: true, force: true });
    if (baseHas) {
      await this.mkdirAll(splitPath(rel).slice(0, -1).join('/'));
      await this.fsops.mknod(this.real(rel), 0o020000, 0, 0);
    }
  }

  /** Clears the layer's entry at `rel` so a new one can be written (a whiteout or an old file). */
  clear(rel: string): void {
    const st = this.inLayer(rel);
    if (st && !st.isDirectory()) rmSync(fsPath(this.real(rel)), { force: true });
  }
}
