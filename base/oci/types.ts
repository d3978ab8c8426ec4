// The OCI image spec's JSON structures (which Docker's schema 2 shares field for field). Field names are
// the JSON keys, so parsed documents can be used as-is and written back without renaming.

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  /** Inline content (base64), allowed by OCI image-spec 1.1. */
  data?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** Docker's HEALTHCHECK: durations are nanoseconds, as in the Docker config JSON. */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The execution parameters of an image: OCI `config` plus Docker's extra fields. */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  // Docker-only fields:
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface RootFS {
  type: 'layers';
  diff_ids: string[];
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: ContainerConfig;
  rootfs: RootFS;
  history?: HistoryEntry[];
  /** Docker writes a few more top-level keys (container, docker_version…); they are kept as read. */
  [extra: string]: unknown;
}

/** An image resolved down to one platform's manifest and config, every byte verified. */
export interface ResolvedImage {
  /** The index (or manifest list) the reference pointed at, when it pointed at one. */
  indexDigest?: string;
  indexBytes?: Buffer;
  indexMediaType?: string;
  /** Descriptor of the platform's manifest as listed in the index (or synthesised from the manifest). */
  manifestDescriptor: Descriptor;
  manifestDigest: string;
  manifestMediaType: string;
  manifest: ImageManifest;
  manifestBytes: Buffer;
  configDigest: string;
  config: ImageConfig;
  configBytes: Buffer;
  /** The platform of the image as its config states it. */
  platform: Platform;
}
