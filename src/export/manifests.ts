// Image configs, manifests and (for several platforms) the index, written to the content store as
// deterministic JSON: the same request always gives the same root digest.
import type { ContentStore } from '../../cache/content-store.js';
import {
  DOCKER_CONFIG,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
  layerCompressionOf,
  layerTypeFor,
} from '../../base/oci/mediatypes.js';
import { formatPlatform, normalizePlatform } from '../../base/oci/platform.js';
import type { Descriptor, ImageConfig, ImageManifest } from '../../base/oci/types.js';
import { serializeConfig, serializeIndex, serializeManifest } from '../../base/oci/canonical-json.js';
import { ExportError, type ExportImage, type ExportRequest } from './types.js';
import {
  ATTESTATION_MANIFEST_TYPE,
  IN_TOTO_MEDIA_TYPE,
  PREDICATE_TYPE_ANNOTATION,
  REFERENCE_DIGEST_ANNOTATION,
  REFERENCE_TYPE_ANNOTATION,
  inTotoStatement,
} from '../../base/oci/in-toto.js';

export interface WrittenManifests {
  /** What a name points at: the index when there are several platforms, else the one manifest. */
  root: Descriptor;
  /** One per image, in request order, each with its platform. */
  manifests: Descriptor[];
  /** The config of each image, in request order. */
  configs: Descriptor[];
  /** Whether OCI media types were written (zstd layers force them, as BuildKit does). */
  ociMediaTypes: boolean;
  /** Attestation manifests (in the index after the images) and their configs and in-toto layers. */
  attestationManifests?: Descriptor[];
  attestationBlobs?: Descriptor[];
}

/** Whether the request's documents use OCI types: asked for (default yes), or forced by zstd layers. */
export function usesOciMediaTypes(req: ExportRequest): boolean {
  if (req.ociMediaTypes ?? true) return true;
  // Docker's schema 2 has no zstd layer type that clients accept; BuildKit turns OCI types on here too.
  return req.images.some((img) => img.layers.some((l) => layerCompressionOf(l.mediaType) === 'zstd'));
}

function epochISO(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
}

/** SOURCE_DATE_EPOCH: no timestamp in the config may be later than the epoch. */
function clampTimes(config: ImageConfig, epoch: number | undefined): ImageConfig {
  if (epoch === undefined) return config;
  const limit = epoch * 1000;
  const clamp = (t: string | undefined) => (t === undefined || Date.parse(t) > limit || Number.isNaN(Date.parse(t)) ? epochISO(epoch) : t);
  return {
    ...config,
    created: clamp(config.created),
    ...(config.history ? { history: config.history.map((h) => ({ ...h, created: clamp(h.created) })) } : {}),
  };
}

function checkImage(img: ExportImage, content: ContentStore, what: string, blobsOptional = false): void {
  const diffIds = img.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== img.layers.length) {
    throw new ExportError(`${what}: config lists ${diffIds.length} diff_ids but the image has ${img.layers.length} layers`);
  }
  img.layers.forEach((l, i) => {
    if (diffIds[i] !== l.diffId) throw new ExportError(`${what}: layer ${i} has diffID ${l.diffId} but the config lists ${diffIds[i]}`);
    if (layerCompressionOf(l.mediaType) === undefined) throw new ExportError(`${what}: layer ${l.digest} has unknown media type ${l.mediaType}`);
    if (!blobsOptional && !content.has(l.digest)) throw new ExportError(`${what}: layer blob ${l.digest} is missing from the content store`);
  });
}

function writeOne(img: ExportImage, req: ExportRequest, oci: boolean, content: ContentStore): { manifest: Descriptor; config: Descriptor } {
  const platform = normalizePlatform(img.platform);
  const what = `image for ${formatPlatform(platform)}`;
  checkImage(img, content, what, req.layerBlobsOptional);
  const configBytes = serializeConfig(clampTimes(img.config, req.sourceDateEpoch));
  const config: Descriptor = { mediaType: oci ? OCI_CONFIG : DOCKER_CONFIG, digest: content.putBytes(configBytes), size: configBytes.length };
  const annotations = { ...req.annotations?.manifest, ...img.annotations };
  if (!oci && Object.keys(annotations).length > 0) {
    throw new ExportError(`${what}: manifest annotations need OCI media types (set oci-mediatypes=true)`);
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: oci ? OCI_MANIFEST : DOCKER_MANIFEST,
    config,
    layers: img.layers.map((l) => ({
      mediaType: layerTypeFor(layerCompressionOf(l.mediaType)!, oci ? 'oci' : 'docker'),
      digest: l.digest,
      size: l.size,
    })),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
  const bytes = serializeManifest(manifest);
  return {
    manifest: { mediaType: manifest.mediaType!, digest: content.putBytes(bytes), size: bytes.length, platform },
    config,
  };
}

/**
 * An image's attestations as BuildKit stores them: an OCI manifest (platform unknown/unknown) whose
 * layers are in-toto statements about the image manifest, referenced from the index by annotations.
 */
function writeAttestations(img: ExportImage, manifest: Descriptor, req: ExportRequest, content: ContentStore): { manifest: Descriptor; blobs: Descriptor[] } {
  const platform = formatPlatform(normalizePlatform(img.platform));
  const layers: Descriptor[] = img.attestations!.map((att) => {
    const bytes = Buffer.from(JSON.stringify(inTotoStatement(att, manifest.digest, req.names, platform)));
    return { mediaType: IN_TOTO_MEDIA_TYPE, digest: content.putBytes(bytes), size: bytes.length, annotations: { [PREDICATE_TYPE_ANNOTATION]: att.predicateType } };
  });
  const configBytes = serializeConfig({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } } as ImageConfig);
  const config: Descriptor = { mediaType: OCI_CONFIG, digest: content.putBytes(configBytes), size: configBytes.length };
  const bytes = serializeManifest({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers });
  const desc: Descriptor = {
    mediaType: OCI_MANIFEST,
    digest: content.putBytes(bytes),
    size: bytes.length,
    annotations: { [REFERENCE_DIGEST_ANNOTATION]: manifest.digest, [REFERENCE_TYPE_ANNOTATION]: ATTESTATION_MANIFEST_TYPE },
    platform: { architecture: 'unknown', os: 'unknown' },
  };
  return { manifest: desc, blobs: [config, ...layers] };
}

/** Writes every config, manifest and the index (if any) of `req` to `content`. Layer blobs must be there. */
export function writeImageManifests(req: ExportRequest, content: ContentStore): WrittenManifests {
  if (req.images.length === 0) throw new ExportError('nothing to export: the build produced no image');
  const seen = new Set<string>();
  for (const img of req.images) {
    const p = formatPlatform(normalizePlatform(img.platform));
    if (seen.has(p)) throw new ExportError(`two images for platform ${p} in one export`);
    seen.add(p);
  }
  const oci = usesOciMediaTypes(req);
  const written = req.images.map((img) => writeOne(img, req, oci, content));
  const manifests = written.map((w) => w.manifest);
  const configs = written.map((w) => w.config);
  const indexAnnotations = req.annotations?.index ?? {};
  // An image with attestations is always an index (as in BuildKit): the attestation manifests follow the images.
  const attested = req.images.flatMap((img, i) => (img.attestations?.length ? [writeAttestations(img, manifests[i]!, req, content)] : []));
  const extra = attested.length ? { attestationManifests: attested.map((a) => a.manifest), attestationBlobs: attested.flatMap((a) => a.blobs) } : {};
  // A wasi/wasm image is always an index too: runtimes (containerd's wasm shims) pick it by the index platform.
  const wasm = req.images.some((img) => img.platform.architecture === 'wasm');
  if (req.images.length === 1 && !attested.length && !wasm) {
    if (Object.keys(indexAnnotations).length > 0) throw new ExportError('index annotations need a multi-platform image (there is no index for one platform)');
    const { platform: _platform, ...root } = manifests[0]!;
    return { root, manifests, configs, ociMediaTypes: oci };
  }
  if (!oci && Object.keys(indexAnnotations).length > 0) throw new ExportError('index annotations need OCI media types (set oci-mediatypes=true)');
  const bytes = serializeIndex({
    schemaVersion: 2,
    mediaType: oci ? OCI_INDEX : DOCKER_MANIFEST_LIST,
    manifests: [...manifests, ...(extra.attestationManifests ?? [])],
    ...(Object.keys(indexAnnotations).length ? { annotations: indexAnnotations } : {}),
  });
  const root: Descriptor = { mediaType: oci ? OCI_INDEX : DOCKER_MANIFEST_LIST, digest: content.putBytes(bytes), size: bytes.length };
  return { root, manifests, configs, ociMediaTypes: oci, ...extra };
}
