// The persistent layer cache: a vertex's cache key → the layers of its result, recorded in level. A hit
// is used only if every layer dir is still on disk, so a pruned or half-deleted entry is a miss, never a
// broken build. Local directories (build contexts) are never recorded: they are read in place.
import { existsSync } from 'node:fs';
import type { State } from './state.js';
import type { Lease } from './leases.js';

/** A layer as recorded: how to find its dir again, and what is known about its blob. */
export interface RecordedLayer {
  /** Built layer id (snapshots/layers/<id>) … */
  id?: string;
  /** … or a pulled layer's diffID (snapshots/sha256/<hex>). */
  diffId?: string;
  blob?: { digest: string; size: number; mediaType: string };
  created?: string;
}

export interface RecordedResult {
  layers: RecordedLayer[];
  /** For --explain: what the vertex was, when it was recorded. */
  description?: string;
  created: string;
  /** Last time a build used it (for LRU pruning); starts as `created`. */
  lastUsed?: string;
}

export class ResultRecords {
  constructor(private readonly state: State) {}

  /** With a lease, the record's layers are held first, so GC running meanwhile leaves them (or they are a miss). */
  async get(key: string, lease?: Lease): Promise<RecordedResult | undefined> {
    const rec = await this.state.keys.results.get(key);
    if (!rec) return undefined;
    if (lease) {
      for (const l of rec.layers) {
        const dir = this.layerDir(l);
        if (dir) lease.hold(dir, l.blob?.digest);
      }
    }
    for (const l of rec.layers) {
      const dir = this.layerDir(l);
      if (!dir || !existsSync(dir)) return undefined;
    }
    // Remember the use for least-recently-used pruning; a day's precision is plenty and saves writes.
    const today = new Date().toISOString().slice(0, 10);
    if (!(rec.lastUsed ?? rec.created).startsWith(today)) await this.state.keys.results.put(key, { ...rec, lastUsed: new Date().toISOString() });
    return rec;
  }

  async put(key: string, rec: RecordedResult): Promise<void> {
    await this.state.keys.results.put(key, rec);
  }

  layerDir(l: RecordedLayer): string | undefined {
    if (l.id) return this.state.snapshots.builtLayerDir(l.id);
    if (l.diffId) return this.state.snapshots.dir(l.diffId);
    return undefined;
  }
}
