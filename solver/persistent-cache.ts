// Connects the solver's ResultCache to the persistent records in cache/: refs made of layers are
// recorded under their cache key; local directories are not cached (they are read in place). Keys not
// recorded here are looked up in the caches imported with --cache-from; their layers stay remote until
// a step or an exporter reads them.
import type { Vertex } from './graph/ops.js';
import type { Layer, Ref } from './refs.js';
import type { ResultCache } from './solver.js';
import { ResultRecords } from '../cache/result-cache.js';
import type { State } from '../cache/state.js';
import type { ImportedCache } from '../cache/remote/imported.js';

const CONTENT_PREFIX = 'content/';

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
  ) {
    this.records = new ResultRecords(state);
  }

  async get(key: string, vertex: Vertex): Promise<Ref | undefined> {
    // Sources are cheap to re-resolve and local dirs must be read fresh.
    if (vertex.op.kind === 'source' && vertex.op.identifier.startsWith('local://')) return undefined;
    const rec = await this.records.get(key);
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
    const found = ((await this.state.db.get(CONTENT_PREFIX + id)) as string | undefined) ?? this.imported?.contentOf(id);
    if (found) this.usedContents.set(id, found);
    return found;
  }

  async rememberContent(id: string, digest: string): Promise<void> {
    this.usedContents.set(id, digest);
    await this.state.db.put(CONTENT_PREFIX + id, digest);
  }
}
