// Reading and writing kiln's cache manifest where it travels: a registry (an OCI artifact manifest under
// a tag), a local directory (the same artifact in an OCI image layout), or inline in an image's config.
import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { RegistryClient } from '../../base/oci/registry/client.js';
import type { ImageReference } from '../../base/oci/reference.js';
import { parseManifest } from '../../base/oci/manifest.js';
import { layoutBlobPath, readLayoutBlob, readOciLayout, REF_NAME_ANNOTATION } from '../../base/oci/layout.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../../base/oci/mediatypes.js';
import type { Descriptor, ImageIndex, ImageManifest } from '../../base/oci/types.js';
import { sha256Digest } from '../content-store.js';
import {
  CACHE_ARTIFACT_TYPE,
  CACHE_CONFIG_MEDIA_TYPE,
  DIFFID_ANNOTATION,
  INLINE_CACHE_FIELD,
  decodeCacheConfig,
  CacheFormatError,
  type CacheBlob,
  type CacheConfig,
  type CacheRecord,
} from './format.js';
import type { BlobFetcher } from './imported.js';
import { NotFoundError } from '../../base/oci/registry/errors.js';
import type { FetchedManifest } from '../../base/oci/registry/client.js';
import { writerAnnotations, isCacheIndex, type WriterOptions } from './writers.js';
import { gatherWriterManifests, publishWriterManifest } from './registry-writers.js';
import { localWriterManifests, publishLocalWriter, touchBlob } from './local-writers.js';
import { decodeCacheMounts, isCacheMountMediaType, type ImportedMount } from './mount-tree.js';

export interface LoadedCache {
  records: CacheRecord[];
  contents: Record<string, string>;
  fetcher: BlobFetcher;
  /** Writer manifests read (a multi-writer cache), and those named but gone meanwhile. */
  writers?: number;
  skipped?: number;
  /** Cache mount trees the cache carries (mount-tree.ts); fetched only when a RUN mounts an empty one. */
  mounts?: ImportedMount[];
}

/** The manifest that carries a cache config (`blobs` are its layers, in the config's order). */
export function cacheManifest(config: Buffer, blobs: CacheBlob[], annotations?: Record<string, string>): { manifest: Buffer; digest: string } {
  const m: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: CACHE_ARTIFACT_TYPE,
    config: { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256Digest(config), size: config.length },
    // Cache mount blobs are not layers: no diffID (keeps the manifest ~130 bytes a file).
    layers: blobs.map((b) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size, ...(isCacheMountMediaType(b.mediaType) ? {} : { annotations: { [DIFFID_ANNOTATION]: b.diffId } }) })),
    ...(annotations ? { annotations } : {}),
  };
  const manifest = Buffer.from(JSON.stringify(m));
  return { manifest, digest: sha256Digest(manifest) };
}

function blobsOfCacheManifest(m: ImageManifest, config: CacheConfig, where: string): CacheBlob[] {
  return m.layers.map((d, i) => {
    const diffId = d.annotations?.[DIFFID_ANNOTATION] ?? config.blobs?.[i]?.diffId ?? (isCacheMountMediaType(d.mediaType) ? d.digest : undefined);
    if (!diffId) throw new CacheFormatError(`cache ${where}: layer ${d.digest} has no diffID`);
    return { digest: d.digest, size: d.size, mediaType: d.mediaType, diffId };
  });
}

/** Records of an image config's inline cache, resolved against that image's layers. */
function inlineRecords(manifest: ImageManifest, configBytes: Buffer, where: string): { records: CacheRecord[]; contents: Record<string, string> } {
  const config = JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: string[] }; [INLINE_CACHE_FIELD]?: unknown };
  const inline = config[INLINE_CACHE_FIELD];
  if (inline === undefined) return { records: [], contents: {} };
  const diffIds = config.rootfs?.diff_ids ?? [];
  const blobs = manifest.layers.map((d, i) => ({ digest: d.digest, size: d.size, mediaType: d.mediaType, diffId: diffIds[i] ?? '' }));
  return decodeCacheConfig(inline, blobs, where);
}

// ---- registry ----

export async function loadRegistryCache(client: RegistryClient, ref: ImageReference): Promise<LoadedCache> {
  const where = ref.toString();
  let root: FetchedManifest | undefined;
  try {
    root = await client.getManifest(ref, { accept: [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST] });
  } catch (err) {
    // The tag may be missing while writer tags exist (every index write failed): those are read.
    if (!(err instanceof NotFoundError) || !ref.tag) throw err;
  }
  const fetcher: BlobFetcher = {
    where,
    mountFrom: ref.name,
    fetch: (blob, tmp) => client.downloadBlob(ref, { mediaType: blob.mediaType, digest: blob.digest, size: blob.size }, tmp),
  };
  const manifests: ImageManifest[] = [];
  let writers: { writers: number; skipped: number } | undefined;
  if (!root || (root.parsed.kind === 'index' && isCacheIndex(root.parsed.index))) {
    const gathered = await gatherWriterManifests(client, ref, ref.tag!, root);
    manifests.push(...gathered.manifests);
    writers = { writers: gathered.writers, skipped: gathered.skipped };
  } else if (root.parsed.kind === 'index') {
    for (const d of root.parsed.index.manifests) {
      const m = await client.getManifest(ref.pinned(d.digest));
      if (m.parsed.kind === 'manifest') manifests.push(m.parsed.manifest);
    }
  } else manifests.push(root.parsed.manifest);
  const records: CacheRecord[] = [];
  const contents: Record<string, string> = {};
  const mounts: ImportedMount[] = [];
  for (const m of manifests) {
    const configBytes = await client.getBlob(ref, m.config.digest);
    let got: { records: CacheRecord[]; contents: Record<string, string> };
    if (m.config.mediaType === CACHE_CONFIG_MEDIA_TYPE) {
      const config = JSON.parse(configBytes.toString('utf8')) as CacheConfig;
      const blobs = blobsOfCacheManifest(m, config, where);
      got = decodeCacheConfig(config, blobs, where);
      mounts.push(...decodeCacheMounts(config, blobs, where));
    } else got = inlineRecords(m, configBytes, where);
    records.push(...got.records);
    for (const [k, v] of Object.entries(got.contents)) if (!(k in contents)) contents[k] = v;
  }
  return { records, contents, fetcher, mounts, ...writers };
}

export interface CacheUpload {
  config: Buffer;
  blobs: CacheBlob[];
  /** The path of a blob in the local content store, fetching it first if it is only remote. */
  blobPath(blob: CacheBlob): Promise<string>;
  /** `registry/repository` that already holds the blob, if kiln knows one. */
  blobFrom(blob: CacheBlob): string | undefined;
}

export type UploadEvent = { digest: string; how: 'skipped' | 'mounted' | 'uploaded' };

export interface PushedCache {
  digest: string;
  /** Writers the cache's index names after this export (a writer-merged cache). */
  writers?: number;
}

export async function pushRegistryCache(client: RegistryClient, ref: ImageReference, up: CacheUpload, onEvent?: (e: UploadEvent) => void, writer?: WriterOptions): Promise<PushedCache> {
  // Blobs first (each once: HEAD, then a mount from a repository of the same registry, then an upload),
  // then the config, and the manifest under the tag last.
  const pending = [...up.blobs];
  const worker = async () => {
    for (let b = pending.shift(); b; b = pending.shift()) {
      const desc: Descriptor = { mediaType: b.mediaType, digest: b.digest, size: b.size };
      if (await client.hasBlob(ref, b.digest)) {
        onEvent?.({ digest: b.digest, how: 'skipped' });
        continue;
      }
      const from = up.blobFrom(b);
      const sameRegistry = from?.startsWith(`${ref.domain}/`) ? from.slice(ref.domain.length + 1) : undefined;
      if (sameRegistry && sameRegistry !== ref.path && (await client.mountBlob(ref, b.digest, sameRegistry))) {
        onEvent?.({ digest: b.digest, how: 'mounted' });
        continue;
      }
      const r = await client.uploadBlob(ref, desc, { path: await up.blobPath(b) });
      onEvent?.({ digest: b.digest, how: r.how });
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const configDesc: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: sha256Digest(up.config), size: up.config.length };
  await client.uploadBlob(ref, configDesc, { bytes: up.config });
  if (writer && ref.tag && !ref.digest) {
    const created = new Date().toISOString();
    const { manifest, digest } = cacheManifest(up.config, up.blobs, writerAnnotations(writer.id, created));
    const mine = { writer: writer.id, created, desc: { mediaType: OCI_MANIFEST, digest, size: manifest.length } };
    const published = await publishWriterManifest(client, ref, ref.tag, { bytes: manifest, digest }, mine, writer);
    return { digest, writers: published.writers };
  }
  const { manifest, digest } = cacheManifest(up.config, up.blobs);
  await client.putManifest(ref, ref.tag ?? digest, manifest, OCI_MANIFEST);
  return { digest };
}

// ---- local directory (an OCI image layout) ----

export async function loadLocalCache(dir: string, tag = 'latest'): Promise<LoadedCache> {
  const layout = await readOciLayout(dir);
  const desc = layout.tags.get(tag) ?? (layout.index.manifests.length === 1 ? layout.index.manifests[0] : undefined);
  if (!desc) throw new CacheFormatError(`cache ${dir}: no cache tagged ${tag}`);
  const fetcher: BlobFetcher = { where: dir, fetch: (blob, tmp) => copyFile(layoutBlobPath(dir, blob.digest), tmp) };
  const one = async (bytes: Buffer, where: string) => {
    const parsed = parseManifest(bytes, { ref: where });
    if (parsed.kind !== 'manifest' || parsed.manifest.config.mediaType !== CACHE_CONFIG_MEDIA_TYPE) throw new CacheFormatError(`cache ${dir}: ${tag} is not a kiln cache`);
    const config = JSON.parse((await readLayoutBlob(dir, parsed.manifest.config)).toString('utf8')) as CacheConfig;
    const blobs = blobsOfCacheManifest(parsed.manifest, config, dir);
    return { ...decodeCacheConfig(config, blobs, dir), mounts: decodeCacheMounts(config, blobs, dir) };
  };
  if (desc.mediaType !== OCI_INDEX) return { ...(await one(await readLayoutBlob(dir, desc), `${dir}:${tag}`)), fetcher };
  // A writer-merged cache: every writer's manifest, newest first (its records win on the same key).
  const { manifests, skipped } = await localWriterManifests(dir, desc);
  const records: CacheRecord[] = [];
  const contents: Record<string, string> = {};
  const mounts: ImportedMount[] = [];
  for (const m of manifests) {
    const got = await one(m.bytes, `${dir}@${m.desc.digest}`);
    records.push(...got.records);
    mounts.push(...got.mounts);
    for (const [k, v] of Object.entries(got.contents)) if (!(k in contents)) contents[k] = v;
  }
  return { records, contents, fetcher, mounts, writers: manifests.length, skipped };
}

async function writeAtomic(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export async function writeLocalCache(dir: string, tag: string, up: CacheUpload, writer?: WriterOptions): Promise<PushedCache> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of up.blobs) {
    const dest = layoutBlobPath(dir, b.digest);
    if (existsSync(dest)) {
      await touchBlob(dest); // reused: fresh again, so another writer's compaction keeps it
      continue;
    }
    const tmp = `${dest}.tmp-${randomBytes(4).toString('hex')}`;
    await copyFile(await up.blobPath(b), tmp);
    await rename(tmp, dest);
  }
  const configPath = layoutBlobPath(dir, sha256Digest(up.config));
  if (!existsSync(configPath)) await writeAtomic(configPath, up.config);
  else await touchBlob(configPath);
  await writeAtomic(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  if (writer) {
    const created = new Date().toISOString();
    const { manifest, digest } = cacheManifest(up.config, up.blobs, writerAnnotations(writer.id, created));
    await writeAtomic(layoutBlobPath(dir, digest), manifest);
    const published = await publishLocalWriter(dir, tag, { writer: writer.id, created, desc: { mediaType: OCI_MANIFEST, digest, size: manifest.length } }, writer);
    return { digest, writers: published.writers };
  }
  const { manifest, digest } = cacheManifest(up.config, up.blobs);
  await writeAtomic(layoutBlobPath(dir, digest), manifest);
  // index.json last: the cache is visible only once everything it names is written.
  let index: ImageIndex = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  } catch {
    /* a new cache dir */
  }
  index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
  index.manifests.push({ mediaType: OCI_MANIFEST, artifactType: CACHE_ARTIFACT_TYPE, digest, size: manifest.length, annotations: { [REF_NAME_ANNOTATION]: tag } });
  await writeAtomic(join(dir, 'index.json'), JSON.stringify(index));
  return { digest };
}
