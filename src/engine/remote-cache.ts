// --cache-from / --cache-to: imports cache records before the solve (registry, local dir, or an image's
// inline cache) and exports this build's records after it. Import is lazy: records are read, layers are
// not. Export failures warn unless ignore-error=false.
import { existsSync, readdirSync } from 'node:fs';
import type { State } from '../../cache/state.js';
import type { RegistryClient } from '../../base/oci/registry/client.js';
import { parseReference } from '../../base/oci/reference.js';
import { formatPlatform } from '../../base/oci/platform.js';
import type { Definition, Vertex } from '../../solver/graph/ops.js';
import type { SolveResult } from '../../solver/solver.js';
import type { Layer, Ref } from '../../solver/refs.js';
import { ImportedCache } from '../../cache/remote/imported.js';
import { encodeCacheConfig, INLINE_CACHE_FIELD, type CacheBlob, type CacheRecord } from '../../cache/remote/format.js';
import { loadLocalCache, loadRegistryCache, pushRegistryCache, writeLocalCache, type CacheUpload } from '../../cache/remote/carriers.js';
import { writerOptions } from '../../cache/remote/writers.js';
import { compressionFromAttrs, layerBlob } from './layer-blobs.js';
import type { ExportImage } from '../export/types.js';
import { UserError, errorMessage } from '../../base/errors.js';
import { addCacheMounts } from '../../cache/remote/mount-tree.js';
import { forwardImportedMount, snapshotCacheMount, type MountSnapshot } from '../../cache/remote/mount-export.js';
import { cacheMountsOption, cacheMountsToExport } from './cache-mount-selection.js';
import { mountSeeder, type CacheMountSeeder } from '../../cache/remote/mount-seed.js';
import { cacheMountPath } from '../../solver/ops/cache-mounts.js';

export type CacheImportSpec = { type: 'registry'; ref: string } | { type: 'local'; src: string; tag?: string };

export type CacheExportSpec =
  | { type: 'registry'; ref: string; mode: 'min' | 'max'; attrs: Record<string, string> }
  | { type: 'local'; dest: string; tag?: string; mode: 'min' | 'max'; attrs: Record<string, string> }
  | { type: 'inline'; attrs: Record<string, string> };

type Warn = (message: string) => void;

export async function importCaches(state: State, registry: RegistryClient, specs: CacheImportSpec[], warn: Warn): Promise<ImportedCache | undefined> {
  if (!specs.length) return undefined;
  const imported = new ImportedCache(state);
  for (const spec of specs) {
    const where = spec.type === 'registry' ? spec.ref : spec.src;
    try {
      const loaded = spec.type === 'registry' ? await loadRegistryCache(registry, parseReference(spec.ref)) : await loadLocalCache(spec.src, spec.tag);
      imported.add(loaded.records, loaded.contents, loaded.fetcher);
      if (loaded.mounts?.length) imported.mounts.add(loaded.mounts, loaded.fetcher);
    } catch (err) {
      // As in BuildKit: a cache that cannot be read makes a slower build, not a failed one.
      warn(`cannot import cache from ${where}: ${errorMessage(err)}`);
    }
  }
  return imported;
}

/** The seeder that fills empty RUN cache mounts from the imported caches, when they carry any. */
export function cacheMountSeederFor(state: State, imported: ImportedCache | undefined, warn: Warn, status: (message: string) => void): CacheMountSeeder | undefined {
  return imported?.mounts.size ? mountSeeder(state, imported, imported.mounts, { warn, status }) : undefined;
}

interface RecordSource {
  key: string;
  vertex: Vertex;
  layers: Layer[];
}

/** The results worth recording: mode=max every step's; mode=min only those the outputs are made of. */
export function recordSources(def: Definition, solved: SolveResult, mode: 'min' | 'max', outputs: Ref[] = solved.refs): RecordSource[] {
  const byDigest = new Map(def.vertices.map((v) => [v.digest, v]));
  const outputStacks = outputs.filter((r) => r.kind === 'layers').map((r) => (r.kind === 'layers' ? r.layers.map((l) => l.dir) : []));
  const out: RecordSource[] = [];
  for (const [digest, ref] of solved.vertexRefs) {
    const v = byDigest.get(digest);
    const key = solved.keys.get(digest);
    if (!v || !key || ref.kind !== 'layers' || ref.layers.length === 0) continue;
    if (v.op.kind === 'source' && v.op.identifier.startsWith('local://')) continue;
    if (mode === 'min' && !outputStacks.some((s) => s.length >= ref.layers.length && ref.layers.every((l, i) => s[i] === l.dir))) continue;
    out.push({ key, vertex: v, layers: ref.layers });
  }
  return out;
}

/** Makes (or finds) a blob for every layer the records name; remembers how to get each blob's bytes. */
class BlobResolver {
  private readonly byDir = new Map<string, Promise<CacheBlob>>();
  readonly layersByDigest = new Map<string, Layer>();
  /** Blobs that are neither layers nor in the content store yet: how to fetch them (forwarded mounts). */
  readonly fetchers = new Map<string, () => Promise<void>>();

  constructor(
    private readonly state: State,
    private readonly opts: { compression: ReturnType<typeof compressionFromAttrs>; sourceDateEpoch?: number },
  ) {}

  blobOf(layer: Layer): Promise<CacheBlob> {
    let p = this.byDir.get(layer.dir);
    if (!p) {
      p = (async () => {
        let blob: CacheBlob;
        if (layer.blob && layer.diffId && (layer.remote || this.state.content.has(layer.blob.digest))) {
          blob = { digest: layer.blob.digest, size: layer.blob.size, mediaType: layer.blob.mediaType, diffId: layer.diffId };
        } else {
          const made = await layerBlob(this.state, { ...layer, blob: undefined }, { ...this.opts.compression, compression: this.opts.compression.compression ?? 'gzip', sourceDateEpoch: this.opts.sourceDateEpoch });
          blob = { ...made.blob, diffId: made.diffId };
          delete (blob as { from?: string }).from;
        }
        this.layersByDigest.set(blob.digest, layer);
        return blob;
      })();
      this.byDir.set(layer.dir, p);
    }
    return p;
  }

  upload(config: Buffer, blobs: CacheBlob[]): CacheUpload {
    return {
      config,
      blobs,
      blobPath: async (b) => {
        if (!this.state.content.has(b.digest)) await (this.layersByDigest.get(b.digest)?.remote?.fetchBlob() ?? this.fetchers.get(b.digest)?.());
        return this.state.content.path(b.digest);
      },
      blobFrom: (b) => this.layersByDigest.get(b.digest)?.blob?.from,
    };
  }
}

async function cacheRecords(sources: RecordSource[], resolver: BlobResolver): Promise<CacheRecord[]> {
  return Promise.all(
    sources.map(async (s) => ({
      key: s.key,
      layers: await Promise.all(s.layers.map(async (l) => ({ blob: await resolver.blobOf(l), ...(l.created ? { created: l.created } : {}) }))),
      ...(s.vertex.platform ? { platform: formatPlatform(s.vertex.platform) } : {}),
      ...(s.vertex.meta.description ? { description: s.vertex.meta.description } : {}),
    })),
  );
}

export interface CacheExportContext {
  state: State;
  registry: RegistryClient;
  def: Definition;
  solved: SolveResult;
  contents: Map<string, string>;
  sourceDateEpoch?: number;
  warn: Warn;
  status: (message: string) => void;
  /** The caches imported for this build: their cache mounts pass on when this machine never filled one. */
  imported?: ImportedCache;
}

/** Writes registry and local caches. Failures warn, or fail the build with ignore-error=false. */
export async function exportCaches(specs: CacheExportSpec[], ctx: CacheExportContext): Promise<void> {
  for (const spec of specs) {
    if (spec.type === 'inline') {
      if (spec.attrs['cache-mounts']) ctx.warn('--cache-to type=inline cannot carry cache mounts (cache-mounts= needs type=registry or type=local): left out');
      continue;
    }
    const where = spec.type === 'registry' ? spec.ref : spec.dest;
    cacheMountsOption(spec.attrs); // a bad value fails the build, whatever ignore-error says
    try {
      const resolver = new BlobResolver(ctx.state, { compression: compressionFromAttrs(spec.attrs), sourceDateEpoch: ctx.sourceDateEpoch });
      const records = await cacheRecords(recordSources(ctx.def, ctx.solved, spec.mode), resolver);
      const encoded = encodeCacheConfig(records, Object.fromEntries(ctx.contents));
      const mounts = await cacheMountSnapshots(spec.attrs, ctx, resolver);
      const { config, blobs } = addCacheMounts(encoded.config, encoded.blobs, mounts);
      if (mounts.length) ctx.status(`cache mounts for ${where}: ${mounts.map((m) => `${m.id} (${m.fileCount} files, ${m.bytes} bytes)`).join(', ')}`);
      const up = resolver.upload(Buffer.from(JSON.stringify(config)), blobs);
      // Every export is one writer's manifest, merged with the other writers' (cache/remote/writers.ts).
      const writer = writerOptions(spec.attrs, ctx.state.root);
      const pushed =
        spec.type === 'registry'
          ? await pushRegistryCache(ctx.registry, parseReference(spec.ref), up, undefined, writer)
          : await writeLocalCache(spec.dest, spec.tag ?? 'latest', up, writer);
      const merged = pushed.writers !== undefined ? `, merged with ${pushed.writers - 1} other writer${pushed.writers === 2 ? '' : 's'}` : '';
      ctx.status(`cache exported to ${where}: ${records.length} records, ${encoded.blobs.length} layers${mounts.length ? `, ${mounts.length} cache mounts (${blobs.length - encoded.blobs.length} blobs)` : ''}, ${pushed.digest} (writer ${writer.id}${merged})`);
    } catch (err) {
      if (spec.attrs['ignore-error'] === 'false') throw new UserError(`cache export to ${where} failed: ${errorMessage(err)}`, { cause: err });
      ctx.warn(`cache export to ${where} failed (build kept): ${errorMessage(err)}`);
    }
  }
}

/** The cache mount dirs this export carries (cache-mounts=…), snapshotted into the content store. */
async function cacheMountSnapshots(attrs: Record<string, string>, ctx: CacheExportContext, resolver: BlobResolver): Promise<MountSnapshot[]> {
  const { ids, warnings } = cacheMountsToExport(ctx.def, attrs);
  for (const w of warnings) ctx.warn(w);
  const out: MountSnapshot[] = [];
  for (const id of ids) {
    const dir = cacheMountPath(ctx.state.root, id);
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      out.push(await snapshotCacheMount(ctx.state, id, dir));
      continue;
    }
    // Its RUNs were all cached here, so the dir was never filled: pass on what was imported, if anything.
    const forwarded = ctx.imported ? await forwardImportedMount(ctx.state, ctx.imported, id) : undefined;
    if (forwarded) {
      for (const [digest, fetch] of forwarded.fetchMissing) resolver.fetchers.set(digest, fetch);
      out.push(forwarded.snapshot);
    }
  }
  return out;
}

/**
 * type=inline: the records of the steps an image is made of go into its config, naming its own layers by
 * position. Run before the image's manifests are written.
 */
export function addInlineCache(image: ExportImage, output: Ref, def: Definition, solved: SolveResult, contents: Map<string, string>): void {
  if (output.kind !== 'layers') return;
  const blobs: CacheBlob[] = image.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: l.diffId }));
  const records: CacheRecord[] = recordSources(def, solved, 'min', [output]).map((s) => ({
    key: s.key,
    layers: s.layers.map((l, i) => ({ blob: blobs[i]!, ...(l.created ? { created: l.created } : {}) })),
    ...(s.vertex.platform ? { platform: formatPlatform(s.vertex.platform) } : {}),
  }));
  const { config } = encodeCacheConfig(records, Object.fromEntries(contents), blobs);
  (image.config as unknown as Record<string, unknown>)[INLINE_CACHE_FIELD] = config;
}
