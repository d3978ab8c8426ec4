// Cache records imported with --cache-from, held in memory for one build. A hit gives layers that are
// fetched lazily: the blob is downloaded (and verified) only when a step or an exporter needs it.
import type { State } from '../state.js';
import type { CacheBlob, CacheRecord } from './format.js';
import { ImportedMounts } from './mount-seed.js';

/** Where an imported cache's blobs come from. */
export interface BlobFetcher {
  /** For messages: the registry ref or directory. */
  readonly where: string;
  /** `registry/repository` holding the blobs: a push to that registry can mount them. */
  readonly mountFrom?: string;
  /** Writes the blob to `tmpPath`; the caller verifies it. */
  fetch(blob: CacheBlob, tmpPath: string): Promise<void>;
}

/** A layer of an imported record could not be used: wrong digest, wrong diffID, gone from its source. */
export class CacheLayerRefused extends Error {
  readonly cacheRejected = true;
}

export interface ImportedHit {
  record: CacheRecord;
  fetcher: BlobFetcher;
}

export class ImportedCache {
  private readonly records = new Map<string, ImportedHit>();
  private readonly contents = new Map<string, string>();
  private readonly refused = new Map<string, string>();
  /** Cache mount contents the imported caches carry (--cache-to …,cache-mounts=…). */
  readonly mounts = new ImportedMounts();

  constructor(private readonly state: State) {}

  get size(): number {
    return this.records.size;
  }

  add(records: CacheRecord[], contents: Record<string, string>, fetcher: BlobFetcher): void {
    // The first source named wins, as with several --cache-from.
    for (const r of records) if (!this.records.has(r.key)) this.records.set(r.key, { record: r, fetcher });
    for (const [k, v] of Object.entries(contents)) if (!this.contents.has(k)) this.contents.set(k, v);
  }

  lookup(key: string): ImportedHit | undefined {
    return this.records.get(key);
  }

  reject(key: string): void {
    this.records.delete(key);
  }

  contentOf(id: string): string | undefined {
    return this.contents.get(id);
  }

  /** Downloads a blob into the content store, verified against its digest (once per blob per build). */
  async fetchBlob(blob: CacheBlob, fetcher: BlobFetcher): Promise<void> {
    const { content } = this.state;
    if (content.has(blob.digest)) return;
    const earlier = this.refused.get(blob.digest);
    if (earlier) throw new CacheLayerRefused(earlier);
    try {
      await content.ingest(blob.digest, (tmp) => fetcher.fetch(blob, tmp), { size: blob.size, verify: true });
    } catch (err) {
      const why = `layer ${blob.digest} from ${fetcher.where}: ${(err as Error).message}`;
      this.refused.set(blob.digest, why);
      throw new CacheLayerRefused(why, { cause: err });
    }
  }

  /** Fetches and unpacks a layer into its snapshot; the unpacked tar must hash to the recorded diffID. */
  async unpack(blob: CacheBlob, fetcher: BlobFetcher): Promise<void> {
    const { snapshots, content } = this.state;
    if (snapshots.has(blob.diffId)) return;
    await this.fetchBlob(blob, fetcher);
    try {
      await snapshots.ensure(blob.diffId, () => content.openVerified(blob.digest), blob.mediaType);
    } catch (err) {
      const why = `layer ${blob.digest} from ${fetcher.where} does not unpack to ${blob.diffId}: ${(err as Error).message}`;
      this.refused.set(blob.digest, why);
      throw new CacheLayerRefused(why, { cause: err });
    }
  }
}
