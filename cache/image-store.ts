// The local image store: image names (normalised references) → the digest they point at, plus the
// platform manifests that are present locally. Blobs live in the content store; this only names them.
import type { Table } from './keyspace.js';

export interface StoredPlatformImage {
  /** os/arch[/variant] */
  platform: string;
  manifestDigest: string;
  configDigest: string;
  /** Sum of compressed layer sizes plus config, as registries count it. */
  size: number;
}

export interface ImageRecord {
  /** Normalised reference, e.g. 127.0.0.1:5000/busybox:latest or docker.io/library/alpine@sha256:… */
  name: string;
  /** What the name resolved to: an index or a manifest. */
  digest: string;
  mediaType: string;
  /** When this name was last written (ISO 8601). */
  updated: string;
  platforms: StoredPlatformImage[];
}

export class ImageStore {
  /** Writes of one name in flight: each waits for the one before (a read-merge-write must not lose one). */
  private readonly writing = new Map<string, Promise<unknown>>();

  constructor(private readonly table: Table<ImageRecord>) {}

  async get(name: string): Promise<ImageRecord | undefined> {
    return await this.table.get(name);
  }

  /** Records `name`; platform entries already present for the same digest are kept. */
  put(record: ImageRecord): Promise<ImageRecord> {
    const before = this.writing.get(record.name) ?? Promise.resolve();
    const done = before.catch(() => {}).then(() => this.merge(record));
    this.writing.set(record.name, done);
    void done.finally(() => {
      if (this.writing.get(record.name) === done) this.writing.delete(record.name);
    }).catch(() => {});
    return done;
  }

  private async merge(record: ImageRecord): Promise<ImageRecord> {
    const old = await this.get(record.name);
    let platforms = record.platforms;
    if (old && old.digest === record.digest) {
      const fresh = new Set(record.platforms.map((p) => p.platform));
      platforms = [...old.platforms.filter((p) => !fresh.has(p.platform)), ...record.platforms];
    }
    const merged = { ...record, platforms: platforms.sort((a, b) => a.platform.localeCompare(b.platform)) };
    await this.table.put(record.name, merged);
    return merged;
  }

  async remove(name: string): Promise<boolean> {
    const had = (await this.get(name)) !== undefined;
    if (had) await this.table.del(name);
    return had;
  }

  async list(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for await (const [, value] of this.table.entries()) out.push(value);
    return out;
  }
}
