// Connects the solver's ResultCache to the persistent records in cache/: refs made of layers are
// recorded under their cache key; local directories are not cached (they are read in place). Keys not
// recorded here are looked up in the caches imported with --cache-from; their layers stay remote until
// a step or an exporter reads them.
import type { Vertex } from './graph/ops.js';
import type { Layer, Ref } from './refs.js';
import type { ResultCache } from './solver.js';
import { ResultRecords } from '../cache/result-cache.js';
import type { State } from '../cache/state.js';
import type { Lease } from '../cache/leases.js';
import type { ImportedCache } from '../cache/remote/imported.js';
import { today } from '../cache/keyspace.js';
import { layerSize } from '../cache/gc.js';
import { realpathSync } from 'node:fs';

export class PersistentResultCache implements ResultCache {
  private readonly records: ResultRecords;
  /** Content digests used by this build, by id: exported with the cache so importers need not read inputs. */
  readonly usedContents = new Map<string, string>();
  /** Keys served from an imported cache in this build. */
  readonly importedHits = new Set<string>();

  constructor(
    private readonly state: State,
    /** The caches imported with --cache-from (the export passes their cache mounts on). */
    readonly imported?: ImportedCache,
    /** The build's lease: layers it is served from stay while it runs, whatever GC does meanwhile. */
    private readonly lease?: Lease,
  ) {
    this.records = new ResultRecords(state);
  }

  async get(key: string): Promise<Ref | undefined> {
    const rec = await this.records.get(key, this.lease);
    if (rec) {
      return {
        kind: 'layers',
        layers: rec.layers.map((l) => ({ dir: this.records.layerDir(l)!, id: l.id, diffId: l.diffId, blob: l.blob, created: l.created })),
      };
    }
    const hit = this.imported?.lookup(key);
    if (!hit) return undefined;
    this.importedHits.add(key);
    const imported = this.imported!;
    const { snapshots } = this.state;
    return {
      kind: 'layers',
      layers: hit.record.layers.map(({ blob, created }): Layer => ({
        dir: snapshots.dir(blob.diffId),
        diffId: blob.diffId,
        blob: { digest: blob.digest, size: blob.size, mediaType: blob.mediaType, ...(hit.fetcher.mountFrom ? { from: hit.fetcher.mountFrom } : {}) },
        created,
        ...(snapshots.has(blob.diffId)
          ? {}
          : { remote: { fetchBlob: () => imported.fetchBlob(blob, hit.fetcher), unpack: () => imported.unpack(blob, hit.fetcher) } }),
      })),
    };
  }

  async put(key: string, vertex: Vertex, ref: Ref): Promise<void> {
    if (ref.kind !== 'layers' || ref.layers.some((l) => l.remote)) return;
    // The step's own layer is this build's new data (GC makes room for builds that run at once by it).
    const own = ref.layers.at(-1);
    if (this.lease && own?.id) {
      try {
        this.lease.newBytes += await layerSize(this.state, realpathSync(own.dir));
      } catch {
        // not on disk: nothing to count
      }
    }
    await this.records.put(key, {
      layers: ref.layers.map((l) => (l.id ? { id: l.id, created: l.created } : { diffId: l.diffId, blob: l.blob, created: l.created })),
      description: vertex.meta.description,
      created: new Date().toISOString(),
    });
  }

  async reject(key: string): Promise<void> {
    this.imported?.reject(key);
    this.importedHits.delete(key);
  }

  async contentOf(id: string): Promise<string | undefined> {
    const memo = await this.state.keys.contents.get(id);
    // Its last use, by day, is what GC ages it by.
    if (memo && memo.used !== today()) await this.state.keys.contents.put(id, { digest: memo.digest, used: today() });
    const found = memo?.digest ?? this.imported?.contentOf(id);
    if (found) this.usedContents.set(id, found);
    return found;
  }

  async rememberContent(id: string, digest: string): Promise<void> {
    this.usedContents.set(id, digest);
    await this.state.keys.contents.put(id, { digest, used: today() });
  }
}
