// type=oci: an OCI image layout (oci-layout, index.json, blobs/sha256/…) as a tar stream or a directory.
// index.json names the root once per image name, annotated as containerd's archive exporter (and so
// BuildKit) does: io.containerd.image.name = the full name, org.opencontainers.image.ref.name = its tag.
import type { Writable } from 'node:stream';
import type { ContentStore } from '../../cache/content-store.js';
import { OCI_INDEX } from '../../base/oci/mediatypes.js';
import { parseReference } from '../../base/oci/reference.js';
import type { Descriptor, ImageIndex } from '../../base/oci/types.js';
import { blobEntries, writeArchiveDir, writeArchiveTar, type ArchiveEntry } from './archive.js';
import { serializeIndex } from '../../base/oci/canonical-json.js';
import { writeImageManifests, type WrittenManifests } from './manifests.js';
import type { ExportRequest } from './types.js';

export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
export const CREATED_ANNOTATION = 'org.opencontainers.image.created';
export const OCI_LAYOUT_FILE = Buffer.from('{"imageLayoutVersion":"1.0.0"}');

/** The OCI ref.name for a full name: its tag, or the whole name when it has none (pinned by digest). */
export function ociRefName(name: string): string {
  const ref = parseReference(name, { defaultTag: false });
  return ref.tag !== undefined && ref.digest === undefined ? ref.tag : name;
}

/** index.json's entries: the root descriptor, once per name (or once, unnamed). */
export function layoutIndexEntries(root: Descriptor, names: string[], sourceDateEpoch?: number): Descriptor[] {
  // BuildKit stamps the root with its creation time; kiln only does so for a fixed SOURCE_DATE_EPOCH, so
  // that exporting the same build twice gives the same bytes.
  const base: Record<string, string> = { ...root.annotations };
  if (sourceDateEpoch !== undefined) base[CREATED_ANNOTATION] = new Date(sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z');
  const withAnnotations = (extra: Record<string, string>): Descriptor => {
    const annotations = { ...base, ...extra };
    return Object.keys(annotations).length ? { ...root, annotations } : { ...root };
  };
  if (names.length === 0) return [withAnnotations({})];
  return names.map((name) => withAnnotations({ [IMAGE_NAME_ANNOTATION]: name, [REF_NAME_ANNOTATION]: ociRefName(name) }));
}

/** Every blob the export references: root, manifests, configs and layers. */
export function exportedBlobs(req: ExportRequest, written: WrittenManifests): Descriptor[] {
  const out: Descriptor[] = [written.root, ...written.manifests, ...written.configs, ...(written.attestationManifests ?? []), ...(written.attestationBlobs ?? [])];
  for (const img of req.images) for (const l of img.layers) out.push({ mediaType: l.mediaType, digest: l.digest, size: l.size });
  return out;
}

/** The files of an OCI layout for an export whose manifests are written. */
export function ociLayoutEntries(req: ExportRequest, written: WrittenManifests): ArchiveEntry[] {
  const index: ImageIndex = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: layoutIndexEntries(written.root, req.names, req.sourceDateEpoch) };
  return [
    { path: 'oci-layout', kind: 'file', bytes: OCI_LAYOUT_FILE },
    { path: 'index.json', kind: 'file', bytes: serializeIndex(index) },
    ...blobEntries(exportedBlobs(req, written)),
  ];
}

/** Writes the request as an OCI layout tar to `out` (ended when done). */
export async function writeOciArchive(req: ExportRequest, content: ContentStore, out: Writable): Promise<WrittenManifests> {
  const written = writeImageManifests(req, content);
  await writeArchiveTar(ociLayoutEntries(req, written), content, out, req.sourceDateEpoch ?? 0);
  return written;
}

/** Writes the request as an OCI layout directory (index.json is replaced, blobs are added). */
export function writeOciLayoutDir(req: ExportRequest, content: ContentStore, dir: string): WrittenManifests {
  const written = writeImageManifests(req, content);
  writeArchiveDir(ociLayoutEntries(req, written), content, dir);
  return written;
}
