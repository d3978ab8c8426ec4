// Reading OCI image layouts (a directory with oci-layout, index.json and blobs/sha256/…): tags from
// `org.opencontainers.image.ref.name`, nested indexes, every blob verified as it is read.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { parseDigest, verifyBuffer } from './digest.js';
import { parseManifest } from './manifest.js';
import { isIndexType, isManifestType, OCI_INDEX } from './mediatypes.js';
import { resolvePlatformImage } from './resolve.js';
import type { Descriptor, ImageIndex, Platform, ResolvedImage } from './types.js';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export class LayoutError extends UserError {}

export interface OciLayout {
  dir: string;
  /** index.json as read */
  index: ImageIndex;
  /** index.json's entries by their ref.name annotation (entries without one are not listed). */
  tags: Map<string, Descriptor>;
}

/** Where a blob lives in a layout: `<dir>/blobs/sha256/<hex>`. */
export function layoutBlobPath(dir: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(dir, 'blobs', algorithm, hex);
}

export async function readOciLayout(dir: string): Promise<OciLayout> {
  let marker: string;
  try {
    marker = await readFile(join(dir, 'oci-layout'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LayoutError(`${dir} is not an OCI image layout (no oci-layout file)`);
    throw new LayoutError(`cannot read ${join(dir, 'oci-layout')}: ${(err as Error).message}`);
  }
  let version: unknown;
  try {
    version = (JSON.parse(marker) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    throw new LayoutError(`${join(dir, 'oci-layout')} is not valid JSON`);
  }
  if (typeof version !== 'string' || !version.startsWith('1.')) {
    throw new LayoutError(`${dir}: unsupported OCI layout version ${JSON.stringify(version)} (expected 1.x)`);
  }
  let indexBytes: Buffer;
  try {
    indexBytes = await readFile(join(dir, 'index.json'));
  } catch (err) {
    throw new LayoutError(`cannot read ${join(dir, 'index.json')}: ${(err as Error).message}`);
  }
  const parsed = parseManifest(indexBytes, { ref: join(dir, 'index.json'), contentType: OCI_INDEX });
  if (parsed.kind !== 'index') throw new LayoutError(`${join(dir, 'index.json')} is not an image index`);
  const tags = new Map<string, Descriptor>();
  for (const d of parsed.index.manifests) {
    const name = d.annotations?.[REF_NAME_ANNOTATION];
    if (name !== undefined && !tags.has(name)) tags.set(name, d);
  }
  return { dir, index: parsed.index, tags };
}

/** A blob of the layout, verified against its digest (and size, when a descriptor is given). */
export async function readLayoutBlob(dir: string, target: Descriptor | string): Promise<Buffer> {
  const digest = typeof target === 'string' ? target : target.digest;
  const size = typeof target === 'string' ? undefined : target.size;
  const path = layoutBlobPath(dir, digest);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LayoutError(`blob ${digest} is missing from OCI layout ${dir}`);
    throw new LayoutError(`cannot read ${path}: ${(err as Error).message}`);
  }
  verifyBuffer(bytes, digest, `blob ${digest} in OCI layout ${dir}`, size);
  return bytes;
}

/** The index.json entry a tag names: an exact ref.name, or a full reference ending in `:tag`. */
function findTag(layout: OciLayout, tag: string): Descriptor | undefined {
  const exact = layout.tags.get(tag);
  if (exact) return exact;
  for (const [name, d] of layout.tags) {
    if (name.endsWith(`:${tag}`) && !name.slice(0, -tag.length - 1).includes('@')) return d;
  }
  return undefined;
}

/**
 * Resolves an image of the layout to `platform`'s manifest and config. `tag` selects an index.json entry
 * by ref.name; without one, a single entry is used, or index.json itself is treated as the image index.
 */
export async function resolveLayoutImage(dir: string, tag: string | undefined, platform: Platform): Promise<ResolvedImage> {
  const layout = await readOciLayout(dir);
  const name = tag !== undefined ? `${dir}:${tag}` : dir;
  const fetch = (desc: Descriptor) => readLayoutBlob(dir, desc);
  let root: Descriptor | undefined;
  if (tag !== undefined) {
    root = findTag(layout, tag);
    if (!root) {
      const known = [...layout.tags.keys()];
      throw new LayoutError(`tag ${JSON.stringify(tag)} not found in OCI layout ${dir}; tags: ${known.length ? known.join(', ') : '(none)'}`);
    }
  } else if (layout.index.manifests.length === 1) {
    root = layout.index.manifests[0]!;
  }
  if (root) {
    if (!isIndexType(root.mediaType) && !isManifestType(root.mediaType)) {
      throw new LayoutError(`${name}: entry ${root.digest} is not an image (media type ${root.mediaType})`);
    }
    const bytes = await fetch(root);
    const parsed = parseManifest(bytes, { ref: `${name}@${root.digest}`, contentType: root.mediaType });
    return resolvePlatformImage({ bytes, digest: root.digest, parsed }, platform, fetch, name);
  }
  if (layout.index.manifests.length === 0) throw new LayoutError(`OCI layout ${dir} holds no images`);
  // Several untagged entries: index.json is the image index (as `docker buildx --output type=oci` writes).
  const bytes = await readFile(join(dir, 'index.json'));
  const resolved = await resolvePlatformImage(
    { bytes, digest: '', parsed: { kind: 'index', mediaType: OCI_INDEX, index: layout.index } },
    platform,
    fetch,
    name,
  );
  // index.json is not a blob: it has no digest to report.
  delete resolved.indexDigest;
  delete resolved.indexBytes;
  delete resolved.indexMediaType;
  return resolved;
}
