// Connects the solver's ResultCache to the persistent records in cache/: refs made of layers are
// recorded under their cache key; local directories are not cached (they are read in place).
import type { Vertex } from './graph/ops.js';
import type { Ref } from './refs.js';
import type { ResultCache } from './solver.js';
import { ResultRecords } from '../cache/result-cache.js';
import type { State } from '../cache/state.js';

export class PersistentResultCache implements ResultCache {
  private readonly records: ResultRecords;

  constructor(state: State) {
    this.records = new ResultRecords(state);
  }

  async get(key: string, vertex: Vertex): Promise<Ref | undefined> {
    // Sources are cheap to re-resolve and local dirs must be read fresh.
    if (vertex.op.kind === 'source' && vertex.op.identifier.startsWith('local://')) return undefined;
    const rec = await this.records.get(key);
    if (!rec) return undefined;
    return {
      kind: 'layers',
      layers: rec.layers.map((l) => ({ dir: this.records.layerDir(l)!, id: l.id, diffId: l.diffId, blob: l.blob, created: l.created })),
    };
  }

  async put(key: string, vertex: Vertex, ref: Ref): Promise<void> {
    if (ref.kind !== 'layers') return;
    await this.records.put(key, {
      layers: ref.layers.map((l) => (l.id ? { id: l.id, created: l.created } : { diffId: l.diffId, blob: l.blob })),
      description: vertex.meta.description,
      created: new Date().toISOString(),
    });
  }
}
