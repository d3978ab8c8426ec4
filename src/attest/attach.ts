// Makes the attestations a build asked for (--sbom, --provenance) for each platform image it produced, and
// hangs them on the ExportImage; the exporters write them as BuildKit does (src/export/manifests.ts).
import type { Definition, VertexInput } from '../../solver/graph/ops.js';
import type { Ref } from '../../solver/refs.js';
import { FsView } from '../../solver/ops/file-op/view.js';
import { FsOps } from '../../cache/layers/fsops.js';
import type { ExportImage } from '../export/types.js';
import { formatPlatform, normalizePlatform } from '../oci/platform.js';
import { sbomPredicate, type RootfsReader } from './sbom/index.js';
import { contextDigest, provenancePredicate } from './provenance.js';
import { SLSA_PROVENANCE_PREDICATE_TYPE, SPDX_PREDICATE_TYPE, type Attestation } from './statement.js';

export interface AttestOptions {
  /** --sbom=true: an SPDX document of the packages in each image. */
  sbom?: boolean;
  /** --provenance=mode=min|max */
  provenance?: 'min' | 'max';
}

export interface AttestInputs {
  dockerfile: { name: string; text: string };
  buildArgs?: Record<string, string>;
  target?: string;
  labels?: Record<string, string>;
  contextDir?: string;
  ignorePatterns?: string[];
  secretIds?: string[];
  sshIds?: string[];
  noCache?: boolean;
  sourceDateEpoch?: number;
  startedOn: Date;
  fileHash?: (real: string) => string;
  /** Names the images are exported under (SPDX document name). */
  names?: string[];
}

/** A RootfsReader over a layer stack (bottom first), through kiln's overlay view of the layer dirs. */
export function layersReader(layerDirsBottomFirst: string[], fsops: FsOps): RootfsReader {
  const view = FsView.ofLayers([...layerDirsBottomFirst].reverse(), fsops);
  const resolved = async (p: string) => view.resolve(p, true).catch(() => p);
  return {
    readFile: (p) => view.readFile(p).catch(() => undefined),
    async readdir(p) {
      const r = await resolved(p);
      const e = await view.lookup(r);
      if (r !== '' && (!e || !e.stat.isDirectory())) return [];
      return view.readdir(r);
    },
    async kind(p) {
      const e = await view.lookup(p);
      if (!e) return undefined;
      return e.stat.isDirectory() ? 'dir' : e.stat.isFile() ? 'file' : e.stat.isSymbolicLink() ? 'symlink' : 'other';
    },
  };
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * Adds the requested attestations to each image (in place). `refs[i]` is image i's solved filesystem,
 * `graphs[i]` its platform's graph and output.
 */
export async function attachAttestations(opts: AttestOptions, images: ExportImage[], refs: Ref[], graphs: { definition: Definition; output: VertexInput | null }[], inp: AttestInputs): Promise<void> {
  if (!opts.sbom && !opts.provenance) return;
  const finished = new Date();
  const created = inp.sourceDateEpoch !== undefined ? iso(new Date(inp.sourceDateEpoch * 1000)) : iso(finished);
  const ctxDigest = opts.provenance && inp.contextDir ? contextDigest(inp.contextDir, inp.ignorePatterns ?? [], inp.fileHash) : undefined;
  const fsops = opts.sbom ? FsOps.start() : undefined;
  try {
    for (let i = 0; i < images.length; i++) {
      const img = images[i]!;
      const platform = formatPlatform(normalizePlatform(img.platform));
      const atts: Attestation[] = [...(img.attestations ?? [])];
      if (opts.sbom) {
        const ref = refs[i]!;
        const layers = ref.kind === 'layers' ? ref.layers : [];
        // Layers known only from an imported cache are unpacked: the scan reads their files.
        for (const l of layers) if (l.remote) await l.remote.unpack();
        const reader = layersReader(layers.map((l) => l.dir), fsops!);
        const name = inp.names?.[0] ?? 'image';
        atts.push({ predicateType: SPDX_PREDICATE_TYPE, predicate: await sbomPredicate(reader, { name: `${name} (${platform})`, created, tool: 'kiln-0.1.0' }) });
      }
      if (opts.provenance) {
        const g = graphs[i]!;
        atts.push({
          predicateType: SLSA_PROVENANCE_PREDICATE_TYPE,
          predicate: provenancePredicate({
            mode: opts.provenance,
            platform,
            dockerfile: inp.dockerfile,
            buildArgs: inp.buildArgs ?? {},
            target: inp.target,
            labels: inp.labels,
            contextDigest: ctxDigest,
            definition: { vertices: g.definition.vertices, outputs: g.output ? [g.output] : [] },
            startedOn: iso(inp.startedOn),
            finishedOn: iso(finished),
            secretIds: inp.secretIds,
            sshIds: inp.sshIds,
            noCache: inp.noCache,
          }),
        });
      }
      img.attestations = atts;
    }
  } finally {
    await fsops?.close();
  }
}
