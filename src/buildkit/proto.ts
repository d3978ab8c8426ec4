// kiln's .proto files for BuildKit's API (proto/buildkit), loaded at runtime: services through
// @grpc/proto-loader (keepCase, int64 as strings, enums as strings), the messages that travel inside
// session streams (fsutil packets, LLB ops) through protobufjs directly.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** The repository's proto/buildkit dir, found from this module whether it runs from dist/src or dist/bundle. */
export function protoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'proto', 'buildkit');
    if (existsSync(join(p, 'control.proto'))) return p;
    dir = dirname(dir);
  }
  throw new Error('proto/buildkit/control.proto not found next to the kiln installation');
}

interface Services {
  Control: grpc.ServiceClientConstructor;
  LLBBridge: grpc.ServiceClientConstructor;
}

let services: Services | undefined;
export function buildkitServices(): Services {
  if (!services) {
    const dir = protoDir();
    const def = protoLoader.loadSync(['control.proto', 'gateway.proto'], { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [dir] });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      moby: { buildkit: { v1: { Control: grpc.ServiceClientConstructor; frontend: { LLBBridge: grpc.ServiceClientConstructor } } } };
    };
    services = { Control: pkg.moby.buildkit.v1.Control, LLBBridge: pkg.moby.buildkit.v1.frontend.LLBBridge };
  }
  return services;
}

let root: protobuf.Root | undefined;
function messages(): protobuf.Root {
  if (!root) {
    const dir = protoDir();
    root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : join(dir, target));
    root.loadSync(['fsutil.proto', 'ops.proto', 'filesync.proto', 'secrets.proto', 'auth.proto', 'sshforward.proto'], { keepCase: true });
  }
  return root;
}

/** Encodes/decodes one message type; decode gives plain objects (int64 as numbers, enums as numbers, defaults filled). */
export interface Codec<T> {
  encode(value: T): Buffer;
  decode(bytes: Uint8Array): T;
}

export function codec<T>(name: string): Codec<T> {
  const type = messages().lookupType(name);
  return {
    encode: (value) => Buffer.from(type.encode(type.fromObject(value as Record<string, unknown>)).finish()),
    decode: (bytes) => type.toObject(type.decode(bytes), { longs: Number, enums: Number, defaults: true, bytes: Buffer, oneofs: true }) as T,
  };
}
