// kiln's cache manifest (docs/cache-format.md): which layer blobs make up the result of each cache key.
// One JSON document serves three carriers: the config blob of an OCI artifact manifest (registry cache),
// the same artifact in an OCI layout directory (local cache), and a field of an image config (inline
// cache, where the layers are the image's own).
import { UserError } from '../../base/errors.js';

export const CACHE_ARTIFACT_TYPE = 'application/vnd.kiln.cache.v1';
export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.kiln.cache.config.v1+json';
/** The image-config field that carries an inline cache (like BuildKit's `moby.buildkit.cache.v0`). */
export const INLINE_CACHE_FIELD = 'kiln.cache.v1';
/** Annotation on a cache manifest's layer descriptors: the layer's uncompressed digest. */
export const DIFFID_ANNOTATION = 'io.kiln.cache.diffid';

/** A layer blob as the cache knows it. */
export interface CacheBlob {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
}

/** One cache record: a key and the full layer stack (bottom first) of its result. */
export interface CacheRecord {
  key: string;
  layers: { blob: CacheBlob; created?: string }[];
  /** os/arch[/variant] of the vertex, when it has one. */
  platform?: string;
  description?: string;
}

/** The JSON document. `layers` index into `blobs` (or, inline, into the image's layers). */
export interface CacheConfig {
  version: 1;
  blobs?: { digest: string; diffId: string }[];
  records: { key: string; layers: number[]; created?: (string | null)[]; platform?: string; description?: string }[];
  /** Content digests of what a step read from an input, by (step, input key): see ResultCache.contentOf. */
  contents?: Record<string, string>;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function encodeCacheConfig(records: CacheRecord[], contents: Record<string, string>, inlineBlobs?: CacheBlob[]): { config: CacheConfig; blobs: CacheBlob[] } {
  const blobs: CacheBlob[] = inlineBlobs ? [...inlineBlobs] : [];
  const index = new Map(blobs.map((b, i) => [b.digest, i]));
  const out: CacheConfig['records'] = [];
  for (const r of records) {
    const layers: number[] = [];
    for (const l of r.layers) {
      let i = index.get(l.blob.digest);
      if (i === undefined) {
        if (inlineBlobs) break; // inline records can only name the image's own layers
        i = blobs.push(l.blob) - 1;
        index.set(l.blob.digest, i);
      }
      layers.push(i);
    }
    if (layers.length !== r.layers.length) continue;
    out.push({
      key: r.key,
      layers,
      ...(r.layers.some((l) => l.created) ? { created: r.layers.map((l) => l.created ?? null) } : {}),
      ...(r.platform ? { platform: r.platform } : {}),
      ...(r.description ? { description: r.description } : {}),
    });
  }
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const sortedContents = Object.fromEntries(Object.entries(contents).sort(([a], [b]) => (a < b ? -1 : 1)));
  return {
    config: { version: 1, ...(inlineBlobs ? {} : { blobs: blobs.map((b) => ({ digest: b.digest, diffId: b.diffId })) }), records: out, contents: sortedContents },
    blobs,
  };
}

export class CacheFormatError extends UserError {}

/** Checks a cache document and resolves its records against `blobs` (the manifest's or image's layers). */
export function decodeCacheConfig(raw: unknown, blobs: CacheBlob[], where: string): { records: CacheRecord[]; contents: Record<string, string> } {
  const bad = (why: string) => new CacheFormatError(`cache ${where}: ${why}`);
  if (!raw || typeof raw !== 'object') throw bad('not a kiln cache document');
  const doc = raw as CacheConfig;
  if (doc.version !== 1) throw bad(`unsupported cache version ${JSON.stringify(doc.version)}`);
  if (!Array.isArray(doc.records)) throw bad('records missing');
  const records: CacheRecord[] = [];
  for (const r of doc.records) {
    if (typeof r?.key !== 'string' || !DIGEST.test(r.key) || !Array.isArray(r.layers)) throw bad('malformed record');
    const layers = r.layers.map((i, n) => {
      const blob = blobs[i];
      if (!Number.isInteger(i) || !blob) throw bad(`record ${r.key} names layer ${i}, which does not exist`);
      const created = r.created?.[n];
      return { blob, ...(typeof created === 'string' ? { created } : {}) };
    });
    records.push({ key: r.key, layers, platform: r.platform, description: r.description });
  }
  const contents: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc.contents ?? {})) if (typeof v === 'string') contents[k] = v;
  return { records, contents };
}
