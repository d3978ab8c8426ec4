// After a solve, for one build request (one `kiln build`, or one target of `kiln bake`): layer blobs and
// image configs per platform, inline cache, attestations, the --output exporters and the --cache-to
// exporters. The export step of build.ts, once per target.
import PQueue from 'p-queue';
import type { State } from '../../cache/state.js';
import type { RegistryClient } from '../../base/oci/registry/client.js';
import { formatPlatform } from '../../base/oci/platform.js';
import type { ImageConfig, Platform } from '../../base/oci/types.js';
import type { ConvertResult } from '../../frontends/dockerfile/convert/types.js';
import type { Definition } from '../../solver/graph/ops.js';
import type { SolveResult } from '../../solver/solver.js';
import type { ProgressSink } from '../../solver/progress.js';
import { remoteLayers, type Ref } from '../../solver/refs.js';
import type { PersistentResultCache } from '../../solver/persistent-cache.js';
import { compressionFromAttrs, layerBlob } from './layer-blobs.js';
import { finalImageConfig } from './image-config.js';
import { runExports, type ExportOutcome } from './exports.js';
import type { ExportImage } from '../export/types.js';
import { addInlineCache, exportCaches } from './remote-cache.js';
import { attachAttestations } from '../attest/attach.js';
import type { BuildTarget } from './request.js';

export interface ImageExportInput {
  state: State;
  registry: RegistryClient;
  req: BuildTarget;
  def: Definition;
  /** The whole solve (all requests of a bake), for cache export and inline cache. */
  solved: SolveResult | { refs: Ref[] };
  cache: PersistentResultCache;
  conversions: ConvertResult[];
  platforms: Platform[];
  /** The solved output of each conversion (in order). */
  refs: Ref[];
  ignorePatterns?: string[];
  fileHasher: (realPath: string) => string;
  warn: (message: string) => void;
  progress?: ProgressSink;
  /** Prefixes status lines (a bake target's name). */
  label?: string;
  startedOn: Date;
}

export async function exportImages(x: ImageExportInput): Promise<{ exports: ExportOutcome[]; images: ExportImage[] }> {
  const { state, req, refs } = x;
  const status = (message: string) => x.progress?.({ type: 'status', message: x.label ? `${x.label}: ${message}` : message, time: Date.now() });
  // Layer compression comes from the first --output that sets it (compression=zstd, compression-level=…).
  // With none set, an image kept only in the local store has uncompressed layers, as dockerd's store
  // does: nothing is gained by gzipping what only `kiln run` will read. Archives and pushes get gzip.
  const chosen = req.outputs.find((o) => o.attrs.compression || o.attrs['compression-level']);
  const localOnly = req.outputs.every((o) => o.type === 'image' && !o.push);
  const compression = chosen ? compressionFromAttrs(chosen.attrs) : localOnly ? { compression: 'uncompressed' as const, digestOnly: true } : {};
  const queue = new PQueue({ concurrency: 2 });
  const images: ExportImage[] = await Promise.all(
    x.conversions.map(async (c, i) => {
      const ref = refs[i]!;
      if (ref.kind !== 'layers') throw new Error('build result is a local directory, not an image');
      const layers = await Promise.all(ref.layers.map((l) => queue.add(() => layerBlob(state, l, { ...compression, sourceDateEpoch: req.sourceDateEpoch })) as Promise<Awaited<ReturnType<typeof layerBlob>>>));
      const config: ImageConfig = finalImageConfig(c.image as ImageConfig, layers.map((l, j) => ({ diffId: l.diffId, created: ref.layers[j]!.created })), req.sourceDateEpoch);
      return {
        platform: x.platforms[i]!,
        config,
        layers: layers.map((l) => ({ diffId: l.diffId, digest: l.blob.digest, size: l.blob.size, mediaType: l.blob.mediaType, from: l.blob.from })),
      };
    }),
  );
  const full = 'vertexRefs' in x.solved ? x.solved : undefined;
  if (full && req.cacheTo?.some((c) => c.type === 'inline')) {
    x.conversions.forEach((c, i) => c.output && addInlineCache(images[i]!, refs[i]!, x.def, full, x.cache.usedContents));
  }
  if (req.attest && (req.attest.sbom || req.attest.provenance)) {
    status(`attestations: ${[req.attest.sbom && 'sbom', req.attest.provenance && `provenance (mode=${req.attest.provenance})`].filter(Boolean).join(', ')}`);
    await attachAttestations(req.attest, images, refs, x.conversions, {
      dockerfile: req.dockerfile, buildArgs: req.buildArgs, target: req.target, labels: req.labels, contextDir: req.contextDir, ignorePatterns: x.ignorePatterns,
      secretIds: Object.keys(req.secrets ?? {}), sshIds: Object.keys(req.ssh ?? {}), noCache: req.noCache, sourceDateEpoch: req.sourceDateEpoch, startedOn: x.startedOn,
      fileHash: (real) => x.fileHasher(real), names: req.outputs.flatMap((o) => ('names' in o ? o.names : [])),
    });
  }
  status(`exporting ${images.map((i) => formatPlatform(i.platform)).join(', ')}`);
  const lazy = new Map(refs.flatMap(remoteLayers).map((l) => [l.blob!.digest, l.remote!]));
  const exports = await runExports(state, images, req.outputs, {
    sourceDateEpoch: req.sourceDateEpoch,
    fetchBlob: lazy.size ? (digest) => lazy.get(digest)?.fetchBlob() ?? Promise.resolve() : undefined,
    onWarning: x.warn,
    registry: x.registry,
    layerBlobsOptional: 'digestOnly' in compression && compression.digestOnly,
    onPush: (e) => x.progress?.({ type: 'status', message: `push ${e.name}: ${e.digest} ${e.how}`, time: Date.now() }),
  });
  if (full && req.cacheTo?.length) {
    await exportCaches(req.cacheTo, {
      state,
      registry: x.registry,
      def: x.def,
      solved: { ...full, refs },
      contents: x.cache.usedContents,
      imported: x.cache.imported,
      sourceDateEpoch: req.sourceDateEpoch,
      warn: x.warn,
      status,
    });
  }
  return { exports, images };
}
