// Hard-link donors for COPY from a build context. The layers kiln builds are immutable once committed, so
// a COPY that runs again (one file of a 20,000-file dir changed, or a step below it changed) can take
// every file whose content and metadata are unchanged from the layer the same COPY made last time, by a
// hard link instead of a copy: no data is copied and no inode is allocated. A link is made only when the
// donor file was written by the same op (its op digest) from a context file with the same content hash
// (the stat index's sha256), mode, owner, mtime and size — everything a fresh copy would give the file —
// so the new layer's tree, and its tar, are those of a fresh copy. Linked files are never chowned,
// chmodded or touched: they already carry the right metadata, and the donor's inode must not change.
//
// The record (`copydonor/<op digest>` in the db, cache/keyspace.ts) maps each regular file the op wrote to its signature. A
// path written twice in one op keeps the last signature; a path replaced by something else is dropped.
// No two recorded paths share an inode (files copied as hard links of each other are not recorded), so
// a new layer never links one donor inode twice.
import { existsSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import type { DonorMemo, Table } from '../../../cache/keyspace.js';
import { fsPath } from '../../../base/raw-names.js';

/** A committed layer of an earlier run of the op. */
export interface DonorLayer {
  id: string;
  dir: string;
  created?: string;
}

export class Donors {
  /** Signatures of the regular files this op wrote, by path in the layer. */
  private readonly written = new Map<string, string>();
  linked = 0;
  /** Regular files written without a donor. */
  copied = 0;
  /** Bytes of everything but directories the op wrote (as `du --apparent-size` counts a layer). */
  bytes = 0;

  private constructor(
    readonly layer: DonorLayer | undefined,
    private readonly donorFiles: Record<string, string>,
    readonly hasher: (realPath: string, st?: Stats) => string,
  ) {}

  static async load(table: Table<DonorMemo>, opDigest: string, layerDir: (id: string) => string, hasher: (realPath: string, st?: Stats) => string): Promise<Donors> {
    const rec = await table.get(opDigest);
    const dir = rec ? layerDir(rec.layer) : undefined;
    if (rec && dir && existsSync(dir)) return new Donors({ id: rec.layer, dir, created: rec.created }, rec.files, hasher);
    return new Donors(undefined, {}, hasher);
  }

  /** What a fresh copy of a context file gives: content hash, mtime, mode, owner and size. */
  signature(real: string, st: Stats, mode: number, uid: number, gid: number, mtime: Date): string {
    return `${this.hasher(real, st)}:${mtime.getTime()}:${mode.toString(8)}:${uid}:${gid}:${st.size}`;
  }

  /**
   * Links the donor's file for layer path `rel` to `out` when its signature matches; records the path as
   * written either way. Returns false when the caller must copy (and set metadata) itself.
   */
  tryLink(rel: string, sig: string, out: string): boolean {
    this.written.set(rel, sig);
    if (!this.layer || this.donorFiles[rel] !== sig) {
      this.copied++;
      return false;
    }
    try {
      linkSync(fsPath(join(this.layer.dir, rel)), fsPath(out));
    } catch {
      this.copied++;
      return false; // gone (a damaged state dir), EMLINK, EXDEV…: copy instead
    }
    this.linked++;
    return true;
  }

  /** Layer path `rel` now holds something this record cannot describe (a hard link, a dir, a device). */
  forget(rel: string, isFile = false): void {
    this.written.delete(rel);
    if (isFile) this.copied++;
  }

  async save(table: Table<DonorMemo>, opDigest: string, layer: DonorLayer): Promise<void> {
    if (this.written.size === 0) return;
    await table.put(opDigest, { layer: layer.id, created: layer.created, files: Object.fromEntries(this.written) });
  }
}
