// Turns a built layer dir into a compressed blob in the content store, once: the result is remembered in
// the db by layer id, compression, level and SOURCE_DATE_EPOCH, so rebuilds and re-exports reuse it.
// Pulled layers keep their blob unless force-compression asks for another compression. The layer's
// snapshot is also made findable by its diffID, which is how `kiln run` finds an image's layers.
import { PassThrough, Writable } from 'node:stream';
import { createWriteStream } from 'node:fs';
import type { State } from '../../cache/state.js';
import { writeLayerTar, writeLayerTarGzip } from '../../cache/layers/diff.js';
import type { Layer, LayerBlob } from '../../solver/refs.js';
import { OCI_LAYER, OCI_LAYER_GZIP, layerCompressionOf } from '../../base/oci/mediatypes.js';
import { compressLayerStream } from '../export/compression.js';
import { UserError } from '../../base/errors.js';
import PQueue from 'p-queue';
import type { Definition, Vertex } from '../../solver/graph/ops.js';
import type { Ref } from '../../solver/refs.js';
import type { ResultCache } from '../../solver/solver.js';
import type { OutputSpec } from './exports.js';
import { tracedLayer } from '../../solver/step-trace.js';

export interface LayerCompressionOptions {
  compression?: 'gzip' | 'zstd' | 'uncompressed';
  level?: number;
  force?: boolean;
  sourceDateEpoch?: number;
  /**
   * Only the digest is needed (an uncompressed layer kept in the local store): the tar is hashed but not
   * written. It is deterministic, so an export that needs the bytes later writes the same blob.
   */
  digestOnly?: boolean;
}

export interface ExportedLayer {
  diffId: string;
  blob: LayerBlob;
}

interface StoredLayerBlob {
  diffId: string;
  digest: string;
  size: number;
  mediaType: string;
}

/** Reads buildx's `compression=`, `compression-level=`, `force-compression=` output attributes. */
export function compressionFromAttrs(attrs: Record<string, string>): Omit<LayerCompressionOptions, 'sourceDateEpoch'> {
  const c = attrs.compression;
  if (c !== undefined && c !== 'gzip' && c !== 'zstd' && c !== 'uncompressed') {
    throw new UserError(`invalid value "${c}" for --output compression: expected gzip, zstd or uncompressed`);
  }
  const levelText = attrs['compression-level'];
  const level = levelText === undefined ? undefined : Number(levelText);
  if (levelText !== undefined && !Number.isInteger(level)) throw new UserError(`invalid value "${levelText}" for --output compression-level`);
  return { compression: c as LayerCompressionOptions['compression'], level, force: attrs['force-compression'] === 'true' };
}

/** The layer compression a build's outputs ask for (see build.ts): the first output that sets one wins. */
export function layerCompressionFor(outputs: OutputSpec[]): Omit<LayerCompressionOptions, 'sourceDateEpoch'> {
  const chosen = outputs.find((o) => o.attrs.compression || o.attrs['compression-level']);
  const localOnly = outputs.every((o) => o.type === 'image' && !o.push);
  return chosen ? compressionFromAttrs(chosen.attrs) : localOnly ? { compression: 'uncompressed', digestOnly: true } : {};
}

/** Vertices whose result's top layer ends up in an output image: the base chains of the outputs. */
function outputChains(def: Definition): Set<string> {
  const byDigest = new Map(def.vertices.map((v) => [v.digest, v]));
  const seen = new Set<string>();
  const todo = def.outputs.map((o) => o.digest);
  while (todo.length) {
    const v = byDigest.get(todo.pop()!);
    if (!v || seen.has(v.digest)) continue;
    seen.add(v.digest);
    const op = v.op;
    if (op.kind === 'file' && op.base >= 0) todo.push(v.inputs[op.base]!.digest);
    else if (op.kind === 'exec') {
      const root = op.mounts.find((m) => m.dest === '/');
      if (root && root.input >= 0) todo.push(v.inputs[root.input]!.digest);
    } else if (op.kind === 'merge') todo.push(...v.inputs.map((i) => i.digest));
  }
  return seen;
}

/**
 * Wraps a build's result cache so that each layer a step makes for an output image is packed (its
 * diffID, its blob) in the background as soon as the step is done, while later steps run, instead of
 * all at the end. The export's own layerBlob() call joins the work in flight.
 */
export function prefetchLayerBlobs(state: State, def: Definition, outputs: OutputSpec[], sourceDateEpoch?: number): (cache: ResultCache) => ResultCache {
  const wanted = outputChains(def);
  const opts = { ...layerCompressionFor(outputs), sourceDateEpoch };
  const queue = new PQueue({ concurrency: 1 });
  return (cache) =>
    new Proxy(cache, {
      get(target, prop) {
        if (prop === 'put') {
          return async (key: string, vertex: Vertex, ref: Ref) => {
            await target.put(key, vertex, ref);
            const top = ref.kind === 'layers' ? ref.layers.at(-1) : undefined;
            if (top?.id && !top.blob && !top.remote && wanted.has(vertex.digest)) {
              queue.add(() => layerBlob(state, top, opts)).catch(() => {}); // the export reports any failure
            }
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
}

/** Packing in progress, by db key, so a prefetch and the export share one pass over the layer. */
const inflight = new WeakMap<State, Map<string, Promise<ExportedLayer>>>();

export async function layerBlob(state: State, layer: Layer, opts: LayerCompressionOptions = {}): Promise<ExportedLayer> {
  const compression = opts.compression ?? 'gzip';
  const wanted = compression === 'uncompressed' ? 'none' : compression;
  if (layer.blob && layer.diffId && (!opts.force || layerCompressionOf(layer.blob.mediaType) === wanted)) {
    return { diffId: layer.diffId, blob: layer.blob };
  }
  // The id in cache/keyspace.ts's layerblob/ table: the layer, then how it was packed.
  const key = layer.id ? layer.id : `diff/${layer.diffId}`;
  const dbKey = `${key}/${compression}/${opts.level ?? ''}/${opts.sourceDateEpoch ?? ''}/${opts.digestOnly ? 'd' : ''}`;
  let running = inflight.get(state);
  if (!running) inflight.set(state, (running = new Map()));
  const pending = running.get(dbKey);
  if (pending) return pending;
  const p = tracedLayer(layer.id, 'pack', () => packLayer(state, layer, opts, compression, wanted, key)).finally(() => running.delete(dbKey));
  running.set(dbKey, p);
  return p;
}

async function packLayer(state: State, layer: Layer, opts: LayerCompressionOptions, compression: 'gzip' | 'zstd' | 'uncompressed', wanted: 'gzip' | 'zstd' | 'none', key: string): Promise<ExportedLayer> {
  const dbKey = `${key}/${compression}/${opts.level ?? ''}/${opts.sourceDateEpoch ?? ''}`;
  const known = await state.keys.layerBlobs.get(dbKey);
  if (known && (state.content.has(known.digest) || (opts.digestOnly && compression === 'uncompressed'))) {
    // A build killed after recording the blob may not have linked the layer yet: `kiln run` needs it.
    if (layer.id) state.snapshots.linkDiffId(known.diffId, layer.dir);
    return { diffId: known.diffId, blob: { digest: known.digest, size: known.size, mediaType: known.mediaType } };
  }
  let stored: StoredLayerBlob;
  if (compression === 'gzip' && opts.level === undefined) {
    const w = await state.content.ingestComputed((tmp) => writeLayerTarGzip(layer.dir, tmp, { sourceDateEpoch: opts.sourceDateEpoch }));
    stored = { diffId: w.diffId, digest: w.digest, size: w.compressedSize, mediaType: OCI_LAYER_GZIP };
  } else if (compression === 'uncompressed' && opts.digestOnly) {
    const { diffId, size } = await writeLayerTar(layer.dir, new Writable({ write: (_c, _e, cb) => cb() }), { sourceDateEpoch: opts.sourceDateEpoch });
    stored = { diffId, digest: diffId, size, mediaType: OCI_LAYER };
  } else if (compression === 'uncompressed') {
    // The blob is the tar itself: its digest is the diffID, hashed once while it is written.
    const w = await state.content.ingestComputed(async (tmp) => {
      const { diffId, size } = await writeLayerTar(layer.dir, createWriteStream(tmp), { sourceDateEpoch: opts.sourceDateEpoch });
      return { digest: diffId, size };
    });
    stored = { diffId: w.digest, digest: w.digest, size: w.size, mediaType: OCI_LAYER };
  } else {
    const tar = new PassThrough({ highWaterMark: 1 << 20 });
    const packing = writeLayerTar(layer.dir, tar, { sourceDateEpoch: opts.sourceDateEpoch });
    const [c] = await Promise.all([
      compressLayerStream(tar, state.content, { compression: wanted === 'none' ? 'none' : wanted, level: opts.level }),
      packing,
    ]);
    stored = { diffId: c.diffId, digest: c.digest, size: c.size, mediaType: c.mediaType };
  }
  // Linked first: a record in the db always has its layer findable by diffID.
  if (layer.id) state.snapshots.linkDiffId(stored.diffId, layer.dir);
  await state.keys.layerBlobs.put(dbKey, stored);
  return { diffId: stored.diffId, blob: { digest: stored.digest, size: stored.size, mediaType: stored.mediaType } };
}
