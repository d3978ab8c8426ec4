// The low-level build graph's op values (kiln's LLB). Every op is plain JSON; its digest covers the op
// and its inputs, never descriptions or progress metadata. Frontends build these; the solver runs them.

export interface GraphPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Where a source comes from: `docker-image://REF`, `local://NAME` (a context the client sends),
 * `oci-layout://DIR[:TAG]`, `https://…` / `http://…` (a single file). */
export interface SourceOp {
  kind: 'source';
  identifier: string;
  /** Source-specific attributes: include/exclude patterns, checksum, filename, … (sorted in digest). */
  attrs?: Record<string, string>;
}

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';

export interface ExecMount {
  /** Index into the vertex inputs; -1 mounts scratch (empty). */
  input: number;
  /** Path inside the container. The rootfs mount has dest "/". */
  dest: string;
  /** Sub-path of the input to mount. */
  selector?: string;
  readonly?: boolean;
  /** Output index this mount's changes produce, or -1 when discarded. */
  output: number;
  type: MountType;
  cache?: { id: string; sharing: 'shared' | 'private' | 'locked' };
  tmpfs?: { size?: number };
  secret?: { id: string; uid: number; gid: number; mode: number; optional: boolean; env?: string };
  /** SSH agent socket forwarded from the client (`RUN --mount=type=ssh`); dest is the socket path. */
  ssh?: { id: string; uid: number; gid: number; mode: number; optional: boolean };
}

export interface ExecOp {
  kind: 'exec';
  args: string[];
  env: string[];
  cwd: string;
  user: string;
  hostname?: string;
  mounts: ExecMount[];
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
  /** Exit codes that count as success (default [0]). */
  validExitCodes?: number[];
  /** Proxy variables from --build-arg (HTTP_PROXY…): set in the process env, not part of the image or history. */
  proxyEnv?: Record<string, string>;
  /**
   * The dest of a writable bind mount of scratch whose contents, not the rootfs, are the result (a
   * BuildKit LLB exec whose mount output is used; src/buildkit/llb). Unset: the rootfs is the result.
   */
  resultMount?: string;
}

export interface ChownOpt {
  /** A name (resolved in the destination's /etc/passwd|group) or a number. */
  user?: { id?: number; name?: string };
  group?: { id?: number; name?: string };
}

export interface CopyAction {
  type: 'copy';
  /** Input index for the source state (-1 = scratch). */
  src: number;
  srcPath: string;
  destPath: string;
  owner?: ChownOpt;
  mode?: number;
  /** A symbolic mode (`go-w`, `a+X`) applied to each copied file relative to its own mode; wins over mode. */
  modeStr?: string;
  followSymlink?: boolean;
  dirCopyContents?: boolean;
  attemptUnpackDockerCompatibility?: boolean;
  createDestPath?: boolean;
  allowWildcard?: boolean;
  allowEmptyWildcard?: boolean;
  includePatterns?: string[];
  excludePatterns?: string[];
  /** Keep the source's parent directories (COPY --parents). */
  parents?: boolean;
  alwaysReplaceExistingDestPaths?: boolean;
  /** Fixed mtime (SOURCE_DATE_EPOCH), seconds. */
  timestamp?: number;
}

export interface MkdirAction {
  type: 'mkdir';
  path: string;
  mode: number;
  makeParents: boolean;
  owner?: ChownOpt;
  timestamp?: number;
}

export interface MkfileAction {
  type: 'mkfile';
  path: string;
  mode: number;
  /** base64 of the content. */
  data: string;
  owner?: ChownOpt;
  timestamp?: number;
}

export interface RmAction {
  type: 'rm';
  path: string;
  allowNotFound: boolean;
  allowWildcard: boolean;
}

export type FileAction = CopyAction | MkdirAction | MkfileAction | RmAction;

export interface FileOp {
  kind: 'file';
  /** Input index of the state the actions apply to (-1 = scratch). */
  base: number;
  actions: FileAction[];
}

/** Stacks the inputs' layers in order (COPY --link rebasing). */
export interface MergeOp {
  kind: 'merge';
}

export type Op = SourceOp | ExecOp | FileOp | MergeOp;

/** A reference to one output of a vertex. */
export interface VertexInput {
  digest: string;
  output: number;
}

export interface VertexMeta {
  /** What progress shows, e.g. `[build 2/4] RUN make`. */
  description?: string;
  /** Dockerfile lines the vertex came from (1-based, inclusive). */
  location?: { file: string; startLine: number; endLine: number };
  /** Skip the cache for this vertex (`--no-cache`, `--no-cache-filter`). */
  ignoreCache?: boolean;
  /** Stage name, for grouping in progress and `--no-cache-filter`. */
  stage?: string;
}

export interface Vertex {
  digest: string;
  op: Op;
  inputs: VertexInput[];
  platform?: GraphPlatform;
  meta: VertexMeta;
}

/** A whole graph, as sent over the wire or printed: vertices in dependency order plus the outputs wanted. */
export interface Definition {
  vertices: Vertex[];
  /** The results the client asked for (the build target). */
  outputs: VertexInput[];
}
