// The one request type of the engine (docs/design.md, "Build pipeline"). `kiln build` is a request with one
// target, `kiln bake` one with several; `kiln serve` decodes the same type from the wire (src/protocol).
// Everything that changes what a target's RUN steps see (secrets, ssh, network, hosts, DNS, limits,
// entitlements) is a field of its target, never of the request, so two targets of one bake never see
// each other's settings.
import type { Platform } from '../../base/oci/types.js';
import type { CredentialProvider } from '../../base/oci/registry/credentials.js';
import type { Definition } from '../../solver/graph/ops.js';
import type { ConvertResult } from '../../frontends/dockerfile/convert/types.js';
import type { ResultCache } from '../../solver/solver.js';
import type { ProgressSink } from '../../solver/progress.js';
import type { OutputSpec, ExportOutcome } from './exports.js';
import type { ExportImage } from '../export/types.js';
import type { CacheExportSpec, CacheImportSpec } from './remote-cache.js';
import type { AttestOptions } from '../attest/attach.js';
import type { BuildLimits } from './limits.js';
import type { Explanation } from './explain.js';
import type { BuildRecorder } from './history/recorder.js';

export type BuildContextSpec = { kind: 'local'; path: string } | { kind: 'image'; ref: string } | { kind: 'oci-layout'; identifier: string };

/** One target: what to build, where its outputs go, and the settings its RUN steps run with. */
export interface BuildTarget {
  /** The bake target's name (prefixes its messages); unset for `kiln build`. */
  name?: string;
  /** The build context dir; undefined when the Dockerfile came from stdin with no context. */
  contextDir?: string;
  dockerfile: { text: string; name: string; path?: string };
  target?: string;
  buildArgs?: Record<string, string>;
  /** Empty: this machine's platform. */
  platforms?: Platform[];
  buildContexts?: Record<string, BuildContextSpec>;
  noCache?: boolean;
  noCacheFilter?: string[];
  pull?: boolean;
  sourceDateEpoch?: number;
  labels?: Record<string, string>;
  outputs: OutputSpec[];
  /** --cache-from: caches to import (lazily) before solving. */
  cacheFrom?: CacheImportSpec[];
  /** --cache-to: where to export this target's cache records. */
  cacheTo?: CacheExportSpec[];
  /** --sbom / --provenance: attestations attached to each image (src/attest). */
  attest?: AttestOptions;
  // ---- what this target's RUN steps see ----
  /** RUN --mount=type=secret: id → content. */
  secrets?: Record<string, Buffer>;
  /** RUN --mount=type=ssh: id → the SSH agent socket to forward. */
  ssh?: Record<string, string>;
  /** Network for RUN steps that do not ask for one (--network). */
  network?: 'default' | 'none' | 'host';
  /** --add-host entries for RUN's /etc/hosts. */
  extraHosts?: { host: string; ip: string }[];
  /** --dns: resolv.conf for RUN instead of the host's. */
  dns?: { nameservers?: string[]; search?: string[]; options?: string[] };
  /** Granted entitlements (--allow): network.host, security.insecure. */
  allow?: string[];
  /** Resource limits per RUN and per build; the kiln config file's limits are the ceiling (src/engine/limits.ts). */
  limits?: BuildLimits;
  /**
   * A graph made elsewhere, solved as given instead of converting the Dockerfile (a BuildKit LLB
   * definition, src/buildkit/llb): one conversion per platform, and the dirs its local:// sources name.
   * `dockerfile` then only names the build in the history.
   */
  graph?: { conversions: ConvertResult[]; platforms: Platform[]; localDirs: Record<string, string> };
}

/** A build: its targets (solved together, sharing the steps they have in common) and how the build is run. */
export interface BuildRequest {
  targets: BuildTarget[];
  printGraph?: 'json' | 'dot';
  /** --check: only run the build checks (with printGraph set, so nothing is solved); results come back as warnings. */
  check?: boolean;
  /** Explain every cache miss against the last build of the same Dockerfile and target (--explain). */
  explain?: boolean;
  /** Who ran the build, for the history: `local` (default) or a kiln serve tenant. */
  historyOrigin?: string;
  /** Registry credentials (kiln serve: the tenant's); default: the user's docker config. */
  registryCredentials?: CredentialProvider;
  /** ADD http(s):// may not reach this machine's own addresses (kiln serve, unless --allow-local-fetch). */
  denyLocalFetch?: boolean;
  /** With denyLocalFetch: HOST:PORT origins allowed anyway. */
  localFetchAllowed?: string[];
}

/** What the converted build looks like before anything is solved (given to BuildHooks.planned). */
export interface BuildPlan {
  /** All targets' graphs merged. */
  def: Definition;
  /** local://NAME sources → the directory each reads. */
  localDirs: Record<string, string>;
}

/** How the host of the engine (the CLI, kiln serve, a BuildKit API server) takes part in a build. */
export interface BuildHooks {
  progress?: ProgressSink;
  signal?: AbortSignal;
  /** kiln serve: wraps the build cache (to share steps between concurrent builds). */
  wrapCache?: (cache: ResultCache) => ResultCache;
  /** kiln serve: content sha256 (hex) of context files it already knows, by real path. */
  knownFileHash?: (realPath: string) => string | undefined;
  /** After conversion, before a local dir is read or a step runs (kiln serve prepares contexts here). */
  planned?: (plan: BuildPlan) => void | Promise<void>;
  /**
   * The history record of a one-target build, made by the host before the engine runs (kiln serve records
   * a build from the moment it is asked for). The host feeds it progress and finishes it; the engine notes
   * the graph, explanations and results on it. Without it, the engine records each target itself.
   */
  recorder?: BuildRecorder;
}

export interface BuildWarning {
  /** The target's name ('' for `kiln build` and for warnings of the whole build). */
  target: string;
  line?: number;
  message: string;
}

export interface TargetResult {
  name: string;
  exports: ExportOutcome[];
  images: ExportImage[];
  /** Why each step that ran was not cached. */
  explanations: Explanation[];
}

export interface BuildResult {
  /** The printed graph, for --print-graph (nothing was built). */
  graph?: string;
  /** In the order of the request's targets. */
  targets: TargetResult[];
  warnings: BuildWarning[];
  /** Vertices in the merged graph, and how many the targets' graphs had together (shared ones counted per target). */
  vertices: { merged: number; perTarget: number };
}
