// type=docker: a tar that `docker load` reads: manifest.json (Config, RepoTags, Layers) naming blobs, plus
// the OCI layout files, as BuildKit's docker exporter (containerd's archive exporter) writes it. A docker
// tar holds one image per platform only, so multi-platform requests are refused as buildx refuses them.
import type { Writable } from 'node:stream';
import type { ContentStore } from '../../cache/content-store.js';
import { parseReference } from '../../base/oci/reference.js';
import { blobPath, writeArchiveTar, type ArchiveEntry } from './archive.js';
import { writeImageManifests, type WrittenManifests } from './manifests.js';
import { ociLayoutEntries } from './oci-archive.js';
import { ExportError, type ExportRequest } from './types.js';

/** The docker-load manifest.json for a single-platform export. */
export function dockerManifestJson(req: ExportRequest, written: WrittenManifests): Buffer {
  const repoTags: string[] = [];
  for (const name of req.names) {
    const ref = parseReference(name, { defaultTag: false });
    // docker load can only tag by name:tag; names pinned by digest are listed in index.json only.
    if (ref.tag !== undefined && ref.digest === undefined) repoTags.push(ref.familiarString());
  }
  const entry = {
    Config: blobPath(written.configs[0]!.digest),
    RepoTags: repoTags,
    Layers: req.images[0]!.layers.map((l) => blobPath(l.digest)),
  };
  return Buffer.from(JSON.stringify([entry]));
}

export function checkDockerExportable(req: ExportRequest): void {
  if (req.images.length > 1) throw new ExportError('docker exporter does not currently support exporting manifest lists');
}

/** Writes the request as a docker-loadable tar to `out` (ended when done). */
export async function writeDockerArchive(req: ExportRequest, content: ContentStore, out: Writable): Promise<WrittenManifests> {
  checkDockerExportable(req);
  const written = writeImageManifests(req, content);
  const entries: ArchiveEntry[] = [...ociLayoutEntries(req, written), { path: 'manifest.json', kind: 'file', bytes: dockerManifestJson(req, written) }];
  await writeArchiveTar(entries, content, out, req.sourceDateEpoch ?? 0);
  return written;
}
