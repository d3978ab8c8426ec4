// The LLB messages (proto/buildkit/ops.proto, package pb) as kiln decodes them: plain objects, int64 as
// numbers, enums as numbers, a oneof's set member named by its group field (`op`, `action`, `user`).
export interface PbInput {
  digest: string;
  index: number;
}

export interface PbPlatform {
  Architecture: string;
  OS: string;
  Variant: string;
}

export interface PbMount {
  input: number;
  selector: string;
  dest: string;
  output: number;
  readonly: boolean;
  mountType: number;
  TmpfsOpt: { size: number } | null;
  cacheOpt: { ID: string; sharing: number } | null;
  secretOpt: { ID: string; uid: number; gid: number; mode: number; optional: boolean } | null;
  SSHOpt: { ID: string; uid: number; gid: number; mode: number; optional: boolean } | null;
}

export interface PbExecOp {
  meta: {
    args: string[];
    env: string[];
    cwd: string;
    user: string;
    hostname: string;
    proxy_env: Record<string, string> | null;
    extraHosts: { Host: string; IP: string }[];
    ulimit: unknown[];
    cgroupParent: string;
    validExitCodes: number[];
  } | null;
  mounts: PbMount[];
  network: number;
  security: number;
  secretenv: { ID: string; name: string; optional: boolean }[];
  cdiDevices: unknown[];
}

export interface PbUserOpt {
  user?: 'byName' | 'byID';
  byName?: { name: string; input: number } | null;
  byID?: number;
}

export interface PbChownOpt {
  user: PbUserOpt | null;
  group: PbUserOpt | null;
}

export interface PbFileAction {
  input: number;
  secondaryInput: number;
  output: number;
  action?: 'copy' | 'mkfile' | 'mkdir' | 'rm' | 'symlink';
  copy?: {
    src: string;
    dest: string;
    owner: PbChownOpt | null;
    mode: number;
    followSymlink: boolean;
    dirCopyContents: boolean;
    attemptUnpackDockerCompatibility: boolean;
    createDestPath: boolean;
    allowWildcard: boolean;
    allowEmptyWildcard: boolean;
    timestamp: number;
    include_patterns: string[];
    exclude_patterns: string[];
    alwaysReplaceExistingDestPaths: boolean;
  };
  mkfile?: { path: string; mode: number; data: Buffer; owner: PbChownOpt | null; timestamp: number };
  mkdir?: { path: string; mode: number; makeParents: boolean; owner: PbChownOpt | null; timestamp: number };
  rm?: { path: string; allowNotFound: boolean; allowWildcard: boolean };
  symlink?: unknown;
}

export interface PbOp {
  inputs: PbInput[];
  op?: 'exec' | 'source' | 'file' | 'build' | 'merge' | 'diff';
  exec?: PbExecOp;
  source?: { identifier: string; attrs: Record<string, string> };
  file?: { actions: PbFileAction[] };
  merge?: { inputs: { input: number }[] };
  platform: PbPlatform | null;
}

export interface PbOpMetadata {
  ignore_cache?: boolean;
  description?: Record<string, string>;
}

/** pb.Definition as Control.Solve carries it. */
export interface WireDefinition {
  def: Buffer[];
  metadata?: Record<string, PbOpMetadata> | null;
}
