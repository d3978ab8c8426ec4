// The public shapes of the Dockerfile → graph conversion: options in, graph + image config out.
import type { Definition, GraphPlatform, VertexInput } from '../../../solver/graph/ops.js';
import type { LintWarning } from '../lint/linter.js';
import type { ContainerConfig, HealthConfig } from '../../../base/oci/types.js';

export type { GraphPlatform } from '../../../solver/graph/ops.js';

export type HealthcheckJSON = HealthConfig;

/** The `config` member of an OCI/Docker image config, keeping fields kiln does not know. */
export type ContainerConfigJSON = ContainerConfig & { [key: string]: unknown };

export interface HistoryJSON {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** An image config as JSON (OCI image-spec config, Docker extensions in `config`). */
export interface ImageConfigJSON {
  created?: string;
  author?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  'os.version'?: string;
  config?: ContainerConfigJSON;
  rootfs?: { type: string; diff_ids: string[] };
  history?: HistoryJSON[];
  [key: string]: unknown;
}

export interface ImageMetaResolver {
  /** Resolves an image ref for a platform (BuildKit's ResolveImageConfig): the ref pinned by digest and its config. */
  resolve(ref: string, platform: GraphPlatform): Promise<{ ref: string; digest: string; config: ImageConfigJSON }>;
}

export type NamedContext =
  | { kind: 'image'; ref: string }
  | { kind: 'local'; name: string; /** Patterns of the dir's own .dockerignore. */ excludes?: string[] }
  | { kind: 'oci-layout'; identifier: string };

export interface ConvertOptions {
  dockerfile: string;
  dockerfileName?: string;
  target?: string;
  buildArgs?: Record<string, string>;
  targetPlatform: GraphPlatform;
  buildPlatform: GraphPlatform;
  namedContexts?: Record<string, NamedContext>;
  contextName?: string;
  dockerignorePatterns?: string[];
  resolver: ImageMetaResolver;
  sourceDateEpoch?: number;
  noCache?: boolean;
  noCacheFilter?: string[];
  labels?: Record<string, string>;
  /**
   * `--check`: only lint. Every stage is checked when no target is given, nothing fails the conversion:
   * an error comes back as the warning with `checkError`.
   */
  check?: boolean;
}

export interface ConvertWarning {
  line?: number;
  message: string;
  /** A build check (lint rule) result, as BuildKit reports it. */
  lint?: LintWarning;
  /** In check mode: the error that ended the conversion. */
  checkError?: boolean;
}

export interface ConvertResult {
  definition: Definition;
  /** null = the target is empty scratch with no ops */
  output: VertexInput | null;
  image: ImageConfigJSON;
  baseImage?: { ref: string; digest: string };
  warnings: ConvertWarning[];
  stagesUsed: string[];
}
