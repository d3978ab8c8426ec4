// containerd's content API (containerd.services.content.v1.Content) on kiln serve's BuildKit endpoint:
// read-only, over the caller's tenant's content store, so `buildx history inspect` can read the image a
// build record names (its manifest or index, and what that lists). Writes and deletes are refused.
import { openSync, readSync, closeSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { errorMessage } from '../../base/errors.js';
import type { ContentStore } from '../../cache/content-store.js';
import type { BuildkitHost } from './host.js';
import { protoDir } from './proto.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const CHUNK = 1024 * 1024;

let service: grpc.ServiceClientConstructor | undefined;
/** The Content service definition from kiln's proto/buildkit/content.proto (also the client of a session's store). */
export function contentServiceDef(): grpc.ServiceClientConstructor {
  if (!service) {
    const def = protoLoader.loadSync(['content.proto'], { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir()] });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { containerd: { services: { content: { v1: { Content: grpc.ServiceClientConstructor } } } } };
    service = pkg.containerd.services.content.v1.Content;
  }
  return service;
}

/** The media type and size of a stored manifest or index (undefined when the store lacks it or it is not JSON). */
export function describeBlob(store: ContentStore, digest: string): { media_type: string; digest: string; size: string; annotations: Record<string, string> } | undefined {
  if (!DIGEST.test(digest) || !store.has(digest)) return undefined;
  const size = store.size(digest);
  if (size > 4 * 1024 * 1024) return undefined;
  try {
    const doc = JSON.parse(store.readBytes(digest).toString('utf8')) as { mediaType?: string; manifests?: unknown };
    const mediaType = doc.mediaType ?? (Array.isArray(doc.manifests) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');
    return { media_type: mediaType, digest, size: String(size), annotations: {} };
  } catch {
    return undefined;
  }
}

const notFound = (digest: string): Partial<grpc.StatusObject> => ({ code: grpc.status.NOT_FOUND, details: `content digest ${digest}: not found` });
const refused = (what: string): Partial<grpc.StatusObject> => ({ code: grpc.status.PERMISSION_DENIED, details: `${what}: this builder's content store is read-only` });

export class ContentService {
  constructor(private readonly host: BuildkitHost) {}

  private async storeOf(call: { metadata: grpc.Metadata; getAuthContext?: () => unknown }): Promise<ContentStore> {
    const tenant = this.host.identify(call);
    return (await this.host.tenant(tenant)).state.content;
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      Info: (call: grpc.ServerUnaryCall<{ digest: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        this.storeOf(call).then(
          (store) => {
            const d = call.request.digest;
            if (!DIGEST.test(d) || !store.has(d)) return cb(notFound(d));
            cb(null, { info: { digest: d, size: String(store.size(d)), labels: {} } });
          },
          (err) => cb({ code: grpc.status.UNAUTHENTICATED, details: `refused: ${errorMessage(err)}` }),
        );
      },
      Read: (call: grpc.ServerWritableStream<{ digest: string; offset: string; size: string }, unknown>) => void this.read(call),
      Update: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(refused('update')),
      Status: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(refused('status')),
      Abort: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(refused('abort')),
      Write: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.emit('error', refused('write')),
    };
  }

  private async read(call: grpc.ServerWritableStream<{ digest: string; offset: string; size: string }, unknown>): Promise<void> {
    let store: ContentStore;
    try {
      store = await this.storeOf(call);
    } catch (err) {
      call.emit('error', { code: grpc.status.UNAUTHENTICATED, details: `refused: ${errorMessage(err)}` });
      return;
    }
    const d = call.request.digest;
    if (!DIGEST.test(d) || !store.has(d)) {
      call.emit('error', notFound(d));
      return;
    }
    const total = store.size(d);
    let offset = Math.max(0, Number(call.request.offset) || 0);
    const want = Number(call.request.size) || 0;
    const end = want > 0 ? Math.min(total, offset + want) : total;
    const fd = openSync(store.path(d), 'r');
    try {
      while (offset < end && !call.cancelled) {
        const buf = Buffer.alloc(Math.min(CHUNK, end - offset));
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n <= 0) break;
        const ok = call.write({ offset: String(offset), data: buf.subarray(0, n) });
        offset += n;
        if (!ok) await new Promise((r) => call.once('drain', r));
      }
    } finally {
      closeSync(fd);
    }
    call.end();
  }
}
