// A content store the client serves on its session (containerd.services.content.v1.Content, the store
// chosen by the buildkit-attachable-store-id header): buildx serves its `--cache-to/--cache-from
// type=local` directories this way, as `local:<dir>`. Blobs are read and written whole, and verified.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { protoDir } from './proto.js';
import { SessionCallError, type ClientSession } from './session-grpc.js';

const SERVICE = '/containerd.services.content.v1.Content';
const STORE_HEADER = 'buildkit-attachable-store-id';
const NOT_FOUND = 5;
const CHUNK = 1024 * 1024;

let root: protobuf.Root | undefined;
function type(name: string): protobuf.Type {
  if (!root) {
    root = new protobuf.Root();
    const dir = protoDir();
    root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : join(dir, target));
    root.loadSync('content.proto', { keepCase: true });
  }
  return root.lookupType(`containerd.services.content.v1.${name}`);
}

const encode = (name: string, value: Record<string, unknown>) => Buffer.from(type(name).encode(type(name).fromObject(value)).finish());
const decode = <T>(name: string, bytes: Uint8Array) => type(name).toObject(type(name).decode(bytes), { longs: Number, enums: Number, defaults: true, bytes: Buffer }) as T;

export class SessionContentError extends Error {}

export class ClientContentStore {
  private readonly header: Record<string, string>;

  constructor(
    private readonly session: ClientSession,
    readonly storeId: string,
  ) {
    this.header = { [STORE_HEADER]: storeId };
  }

  /** True when the client's session offers a content store at all. */
  static offered(session: ClientSession): boolean {
    return session.supports(`${SERVICE}/Info`);
  }

  /** The blob's size in the client's store, or undefined when the store lacks it. */
  async size(digest: string): Promise<number | undefined> {
    try {
      const res = decode<{ info?: { size: number } }>('InfoResponse', await this.session.unary(`${SERVICE}/Info`, encode('InfoRequest', { digest }), this.header));
      return res.info?.size ?? 0;
    } catch (err) {
      if (err instanceof SessionCallError && err.code === NOT_FOUND) return undefined;
      throw err;
    }
  }

  /** Reads a blob into `path`, checking its digest (and size, when known). */
  async readTo(digest: string, path: string, expectedSize?: number): Promise<void> {
    const call = this.session.open(`${SERVICE}/Read`, this.header);
    await call.send(encode('ReadContentRequest', { digest, offset: 0, size: 0 }));
    call.end();
    const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    const fh = await open(tmp, 'w');
    const hash = createHash('sha256');
    let size = 0;
    try {
      for (let m = await call.recv(); m; m = await call.recv()) {
        const part = decode<{ offset: number; data: Buffer }>('ReadContentResponse', m);
        if (part.offset !== size) throw new SessionContentError(`${digest}: the client sent bytes at ${part.offset}, expected ${size}`);
        hash.update(part.data);
        await fh.write(part.data);
        size += part.data.length;
        if (expectedSize !== undefined && size > expectedSize) throw new SessionContentError(`${digest}: the client sent more than ${expectedSize} bytes`);
      }
      await fh.close();
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) throw new SessionContentError(`${digest}: the client sent content with digest ${got}`);
      if (expectedSize !== undefined && size !== expectedSize) throw new SessionContentError(`${digest}: the client sent ${size} bytes, expected ${expectedSize}`);
      await rename(tmp, path);
    } catch (err) {
      call.cancel();
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Writes the file at `path` as blob `digest` into the client's store, unless the store has it. Returns the bytes sent. */
  async writeFrom(path: string, digest: string): Promise<number> {
    if ((await this.size(digest)) !== undefined) return 0;
    const total = statSync(path).size;
    const call = this.session.open(`${SERVICE}/Write`, this.header);
    // One response per request: read them as they come, so neither side stalls.
    const responses = (async () => {
      let last: { action: number; digest: string } | undefined;
      for (let m = await call.recv(); m; m = await call.recv()) last = decode<{ action: number; digest: string }>('WriteContentResponse', m);
      return last;
    })();
    responses.catch(() => {}); // awaited below; a failed send must not leave it unhandled
    const ref = `kiln-${digest}-${randomBytes(4).toString('hex')}`;
    const fd = openSync(path, 'r');
    try {
      let offset = 0;
      do {
        const buf = Buffer.alloc(Math.min(CHUNK, total - offset));
        const n = buf.length ? readSync(fd, buf, 0, buf.length, offset) : 0;
        const last = offset + n >= total;
        // WRITE = 1, COMMIT = 2
        await call.send(encode('WriteContentRequest', { action: last ? 2 : 1, ref, total, expected: digest, offset, data: buf.subarray(0, n) }));
        offset += n;
        if (last) break;
      } while (offset < total);
    } finally {
      closeSync(fd);
    }
    call.end();
    const done = await responses;
    if (!done || done.action !== 2) throw new SessionContentError(`${digest}: the client did not commit the blob`);
    return total;
  }
}
