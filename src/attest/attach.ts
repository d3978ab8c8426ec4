// Makes the attestations a build asked for (--sbom, --provenance) for each platform image it produced, and
// hangs them on the ExportImage; the exporters write them as BuildKit does (src/export/manifests.ts).
import type { Definition, VertexInput } from '../../solver/graph/ops.js';
import type { Ref } from '../../solver/refs.js';
import { FsView } from '../../solver/ops/file-op/view.js';
import { FsOps } from '../../cache/layers/fsops.js';
import { isOpaqueXattrs } from '../../cache/layers/overlay-xattr.js';
import type { ExportImage } from '../export/types.js';
import { formatPlatform, normalizePlatform } from '../../base/oci/platform.js';
import { lstatSync, readdirSync, readFileSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { sbomPredicate, type RootfsReader } from './sbom/index.js';
import type { EntryKind } from './sbom/types.js';
import { contextDigest, provenancePredicate } from './provenance.js';
import { SLSA_PROVENANCE_PREDICATE_TYPE, SPDX_PREDICATE_TYPE, type Attestation } from '../../base/oci/in-toto.js';
import { KILN_VERSION } from '../../base/version.js';

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

/**
 * A RootfsReader over a layer stack (bottom first) without mounting it. Directory listings merge the
 * layers by overlay's rules (topmost entry wins, 0/0 char-device whiteouts hide lower entries, an opaque
 * directory hides the lower layers' content of it); each directory remembers the layers it is visible in,
 * so a walk of the whole tree reads each layer directory once. Single files go through kiln's FsView.
 */
export function layersReader(layerDirsBottomFirst: string[], fsops: FsOps): RootfsReader {
  const topFirst = [...layerDirsBottomFirst].reverse();
  const view = FsView.ofLayers(topFirst, fsops);
  const clean = (p: string) => p.split('/').filter((s) => s && s !== '.').join('/');
  const resolved = async (p: string) => clean(await view.resolve(p, true).catch(() => p));
  const visible = new Map<string, Promise<string[]>>([['', Promise.resolve(topFirst)]]);
  const isWhiteout = (real: string) => {
    try {
      const st = lstatSync(real);
      return st.isCharacterDevice() && st.rdev === 0;
    } catch {
      return false;
    }
  };
  const opaque = (real: string) => fsops.llistxattrs(real).then((x) => isOpaqueXattrs(x), () => false);
  /** The layers (top first) in which directory `rel` exists and is not hidden by an upper layer. */
  const layersOf = (rel: string): Promise<string[]> => {
    let p = visible.get(rel);
    if (!p) {
      p = (async () => {
        const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
        const out: string[] = [];
        const candidates = await layersOf(parent);
        for (const [i, layer] of candidates.entries()) {
          let st;
          try {
            st = lstatSync(join(layer, rel));
          } catch {
            continue; // absent here: look lower
          }
          if (!st.isDirectory()) break; // a whiteout or a file hides the path below
          out.push(layer);
          // Opaque only matters when a lower layer could hold the directory too.
          if (i < candidates.length - 1 && (await opaque(join(layer, rel)))) break;
        }
        return out;
      })();
      visible.set(rel, p);
    }
    return p;
  };
  const kindOf = (d: Dirent): EntryKind => (d.isDirectory() ? 'dir' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'symlink' : 'other');
  return {
    async readFile(p) {
      // Fast path: the topmost layer holding the name in its (already listed) parent directory.
      const rel = clean(p);
      const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
      for (const layer of await layersOf(parent)) {
        const real = join(layer, rel);
        let st;
        try {
          st = lstatSync(real);
        } catch {
          continue;
        }
        if (st.isFile()) return readFileSync(real);
        break; // a symlink, whiteout or directory: let the full view decide
      }
      return view.readFile(p).catch(() => undefined);
    },
    async readdir(p) {
      const rel = await resolved(p);
      const seen = new Map<string, EntryKind>();
      const hidden = new Set<string>();
      for (const layer of await layersOf(rel)) {
        const dir = join(layer, rel);
        let entries: Dirent[];
        try {
          entries = readdirSync(dir, { withFileTypes: true });
        } catch {
          continue;
        }
        for (const d of entries) {
          if (seen.has(d.name) || hidden.has(d.name)) continue;
          if (d.isCharacterDevice() && isWhiteout(join(dir, d.name))) hidden.add(d.name);
          else seen.set(d.name, kindOf(d));
        }
      }
      return [...seen].map(([name, kind]) => ({ name, kind })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
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
        atts.push({ predicateType: SPDX_PREDICATE_TYPE, predicate: await sbomPredicate(reader, { name: `${name} (${platform})`, created, tool: `kiln-${KILN_VERSION}` }) });
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
