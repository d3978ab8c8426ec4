// What the solver hands the exporters after a build: per platform, the image config and its layers (each an
// uncompressed tar's diffID plus the compressed blob already in the content store).
import type { ImageConfig, Platform } from '../../base/oci/types.js';
import { UserError } from '../../base/errors.js';
import type { Attestation } from '../../base/oci/in-toto.js';

/** One layer of a built image; the blob `digest` is in the content store. */
export interface ExportLayer {
  /** sha256 of the uncompressed layer tar (what rootfs.diff_ids lists). */
  diffId: string;
  /** sha256 of the blob as stored (compressed or not, per mediaType). */
  digest: string;
  size: number;
  mediaType: string;
  /** `registry/repository` holding this blob already (a push to the same registry mounts it). */
  from?: string;
}

export interface ExportImage {
  platform: Platform;
  /** The image config with rootfs.diff_ids filled in (one per layer, in order). */
  config: ImageConfig;
  layers: ExportLayer[];
  /** Annotations of this platform's manifest. */
  annotations?: Record<string, string>;
  /** In-toto attestations (SBOM, provenance) of this image: written as an attestation manifest in the index. */
  attestations?: Attestation[];
}

export interface ExportRequest {
  images: ExportImage[];
  /** Normalised references to tag, e.g. docker.io/library/app:latest. */
  names: string[];
  /** Default true; false writes Docker image manifest v2 schema 2 media types. */
  ociMediaTypes?: boolean;
  annotations?: { index?: Record<string, string>; manifest?: Record<string, string> };
  /** SOURCE_DATE_EPOCH (seconds): clamps config/history timestamps and fixes archive mtimes. */
  sourceDateEpoch?: number;
  /**
   * Uncompressed layers whose blobs were not written (kiln's local store keeps the unpacked layer; its
   * tar is deterministic and is written when an export or push needs the bytes).
   */
  layerBlobsOptional?: boolean;
}

/** A request the exporters cannot satisfy (bad combination of options, wrong layer count…). */
export class ExportError extends UserError {}
