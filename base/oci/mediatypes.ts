// Media types of the OCI image spec and of Docker's image manifest v2 schema 2, and predicates over them.

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
/** Deprecated by the OCI spec but still found in the wild (Windows base layers). */
export const OCI_LAYER_NONDISTRIBUTABLE = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
export const OCI_LAYER_NONDISTRIBUTABLE_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
export const OCI_LAYER_NONDISTRIBUTABLE_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** Docker's uncompressed layer type (rare, but accepted by the daemon). */
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
export const DOCKER_LAYER_ZSTD = 'application/vnd.docker.image.rootfs.diff.tar.zstd';
export const DOCKER_FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
export const DOCKER_PLUGIN_CONFIG = 'application/vnd.docker.plugin.v1+json';

/** Schema 1 types: recognised only so they can be rejected clearly. */
export const DOCKER_MANIFEST_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json';
export const DOCKER_MANIFEST_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

/** What kiln asks registries for, most preferred first. */
export const MANIFEST_ACCEPT: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export function isIndexType(mt: string | undefined): boolean {
  return mt === OCI_INDEX || mt === DOCKER_MANIFEST_LIST;
}

export function isManifestType(mt: string | undefined): boolean {
  return mt === OCI_MANIFEST || mt === DOCKER_MANIFEST;
}

export function isSchema1Type(mt: string | undefined): boolean {
  return mt === DOCKER_MANIFEST_SCHEMA1 || mt === DOCKER_MANIFEST_SCHEMA1_SIGNED;
}

export function isConfigType(mt: string | undefined): boolean {
  return mt === OCI_CONFIG || mt === DOCKER_CONFIG;
}

const layerCompression: Record<string, LayerCompression> = {
  [OCI_LAYER]: 'none',
  [OCI_LAYER_GZIP]: 'gzip',
  [OCI_LAYER_ZSTD]: 'zstd',
  [OCI_LAYER_NONDISTRIBUTABLE]: 'none',
  [OCI_LAYER_NONDISTRIBUTABLE_GZIP]: 'gzip',
  [OCI_LAYER_NONDISTRIBUTABLE_ZSTD]: 'zstd',
  [DOCKER_LAYER]: 'none',
  [DOCKER_LAYER_GZIP]: 'gzip',
  [DOCKER_LAYER_ZSTD]: 'zstd',
  [DOCKER_FOREIGN_LAYER]: 'gzip',
};

export function isLayerType(mt: string | undefined): boolean {
  return mt !== undefined && mt in layerCompression;
}

/** Compression of a layer media type, or undefined when the type is not a known layer type. */
export function layerCompressionOf(mt: string): LayerCompression | undefined {
  return layerCompression[mt];
}

/**
 * Foreign (non-distributable) layers are not pushed to registries: their blobs live at the descriptor's
 * `urls` and are skipped when copying an image between registries.
 */
export function isForeignLayerType(mt: string | undefined): boolean {
  return (
    mt === DOCKER_FOREIGN_LAYER ||
    mt === OCI_LAYER_NONDISTRIBUTABLE ||
    mt === OCI_LAYER_NONDISTRIBUTABLE_GZIP ||
    mt === OCI_LAYER_NONDISTRIBUTABLE_ZSTD
  );
}

/** The layer media type of the same family (OCI or Docker) for a given compression. */
export function layerTypeFor(compression: LayerCompression, family: 'oci' | 'docker' = 'oci'): string {
  if (family === 'docker') {
    return compression === 'gzip' ? DOCKER_LAYER_GZIP : compression === 'zstd' ? DOCKER_LAYER_ZSTD : DOCKER_LAYER;
  }
  return compression === 'gzip' ? OCI_LAYER_GZIP : compression === 'zstd' ? OCI_LAYER_ZSTD : OCI_LAYER;
}
