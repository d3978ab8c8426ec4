// The remote builder protocol (proto/kiln/v1/builder.proto), loaded at runtime with @grpc/proto-loader:
// the .proto is the single source of truth and no generated code is committed. The TypeScript shapes
// below mirror its messages as proto-loader decodes them (keepCase, int64 as strings, enums as strings).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTOCOL_VERSION = 1;
export { KILN_VERSION } from '../../base/version.js';
/** Context file contents and outputs travel in chunks of this size (gRPC's default message limit is 4 MiB). */
export const CHUNK = 64 * 1024;

/** The repository's proto/ dir: found from this module whether it runs from dist/src or dist/bundle. */
function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'proto', 'kiln', 'v1', 'builder.proto');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error('proto/kiln/v1/builder.proto not found next to the kiln installation');
}

let cached: grpc.ServiceClientConstructor | undefined;
export function builderService(): grpc.ServiceClientConstructor {
  if (!cached) {
    const def = protoLoader.loadSync(protoPath(), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { kiln: { v1: { Builder: grpc.ServiceClientConstructor } } };
    cached = pkg.kiln.v1.Builder;
  }
  return cached;
}

export type EntryKind = 'FILE' | 'DIR' | 'SYMLINK';

export interface ContextEntry {
  path: string;
  kind: EntryKind;
  mode: number;
  uid: number;
  gid: number;
  mtime_ns: string;
  size: string;
  digest: string;
  link_target: string;
  hardlink_to: string;
}

export interface OutputMsg {
  type: string;
  attrs: Record<string, string>;
  names: string[];
  push: boolean;
}

export interface BuildStart {
  protocol_version: number;
  frontend: string;
  dockerfile_text: string;
  dockerfile_name: string;
  dockerfile_path: string;
  has_dockerignore: boolean;
  dockerignore: string[];
  target: string;
  build_args: Record<string, string>;
  platforms: string[];
  no_cache: boolean;
  no_cache_filter: string[];
  pull: boolean;
  has_source_date_epoch: boolean;
  source_date_epoch: string;
  labels: Record<string, string>;
  outputs: OutputMsg[];
  network: string;
  context?: { entries: ContextEntry[] } | null;
  secret_ids: string[];
  explain: boolean;
  client: string;
  named_contexts: { name: string; image: string; local?: { entries: ContextEntry[] } | null }[];
  cache_from: CacheSpecMsg[];
  cache_to: CacheSpecMsg[];
  allow: string[];
  extra_hosts: { host: string; ip: string }[];
  /** The client answers need_credentials (registry credentials from its own docker config). */
  session_credentials?: boolean;
}

export interface CacheSpecMsg {
  type: string;
  ref: string;
  mode: string;
  attrs: Record<string, string>;
}

export interface SolveRequest {
  start?: BuildStart;
  file?: { digest: string; data: Buffer; last: boolean };
  secret?: { id: string; value: Buffer };
  credentials?: { id: string; username: string; password: string };
  msg?: string;
}

export interface SyncStats {
  files: number;
  files_uploaded: number;
  bytes_uploaded: string;
  files_reused: number;
}

export interface SolveResult {
  build_id: string;
  digest: string;
  images: { platform: string; config_json: string }[];
  exports: { type: string; digest: string; names: string[] }[];
  warnings: { line: number; message: string }[];
  sync: SyncStats | null;
  explanations_json: string;
}

export interface SolveResponse {
  accepted?: { build_id: string; tenant: string; node: string };
  need_files?: { digests: string[]; done: boolean };
  need_secrets?: { ids: string[] };
  progress?: { json: string };
  output?: { index: number; data: Buffer; last: boolean };
  result?: SolveResult;
  need_credentials?: { id: string; host: string };
  msg?: string;
}

export interface BuildRecordMsg {
  id: string;
  status: 'queued' | 'running' | 'completed' | 'failed' | 'canceled';
  started: string;
  ended: string;
  error: string;
  digest: string;
  platforms: string[];
  client: string;
  logs: string[];
  sync: SyncStats | null;
  /** The history record itself (src/engine/history/store.ts HistoryRecord), as JSON. */
  record_json: string;
}

export interface InfoResponse {
  version: string;
  protocol_version: number;
  name: string;
  platforms: string[];
  workers: { id: string; platforms: string[]; max_parallel: number }[];
  tenant: string;
  running: number;
  queued: number;
}

export interface UsageRecordMsg {
  id: string;
  description: string;
  size: string;
  last_used: string;
  reclaimable: boolean;
}

/** Metadata key of bearer tokens (`authorization: Bearer <token>`). */
export const AUTH_HEADER = 'authorization';
