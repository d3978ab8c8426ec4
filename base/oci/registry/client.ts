// The registry client kiln pulls with: manifests, platform resolution, and verified blobs over one
// keep-alive connection pool.
import { DigestMismatchError, isDigest, parseDigest, sha256Digest, verifyBuffer } from '../digest.js';
import { parseManifest, type ParsedManifest } from '../manifest.js';
import { MANIFEST_ACCEPT, isIndexType, isManifestType } from '../mediatypes.js';
import type { ImageReference } from '../reference.js';
import { resolvePlatformImage } from '../resolve.js';
import type { Descriptor, Platform, ResolvedImage } from '../types.js';
import { CredentialStore, type CredentialProvider } from './credentials.js';
import { downloadBlobToFile } from './download.js';
import { insecureRegistriesFromEnv } from './endpoint.js';
import { RegistryError } from './errors.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';
import { readBytes, RegistryTransport } from './transport.js';
import { blobExists, mountBlob, putManifest, uploadBlob, type BlobSource, type UploadResult } from './upload.js';
import { KILN_VERSION } from '../../version.js';
import { deleteManifest, listTags } from './tags.js';

// containerd refuses manifests above 4 MiB; so does kiln (a bigger one is an attack or a mistake).
const MAX_MANIFEST_BYTES = 4 << 20;
// getBlob is for configs and other small JSON; layers go through downloadBlob.
const MAX_SMALL_BLOB_BYTES = 64 << 20;

export interface RegistryClientOptions {
  /** Default: read from `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  credentials?: CredentialProvider;
  userAgent?: string;
  /** host[:port] reached over plain HTTP, in addition to loopback and `$KILN_INSECURE_REGISTRIES`. */
  insecureRegistries?: string[];
  retry?: Partial<RetryPolicy>;
}

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  parsed: ParsedManifest;
}

// What one client keeps of content it fetched by digest (manifests, configs): immutable, so a build's
// resolver and its pull share one fetch. Per repository, so a blob is never served across repositories.
const MEMO_MAX_ITEM_BYTES = 1 << 20;
const MEMO_MAX_TOTAL_BYTES = 32 << 20;

export class RegistryClient {
  private readonly transport: RegistryTransport;
  private readonly memo = new Map<string, FetchedManifest | Buffer>();
  private memoBytes = 0;

  constructor(opts: RegistryClientOptions = {}) {
    this.transport = new RegistryTransport({
      credentials: opts.credentials ?? CredentialStore.fromDockerConfig(),
      userAgent: opts.userAgent ?? `kiln/${KILN_VERSION}`,
      insecureRegistries: [...insecureRegistriesFromEnv(), ...(opts.insecureRegistries ?? [])],
      retry: { ...DEFAULT_RETRY, ...opts.retry },
    });
  }

  /**
   * Fetches a manifest or index by tag or digest. Bytes fetched by digest must hash to it; bytes fetched
   * by tag must hash to the registry's Docker-Content-Digest when it sends one.
   */
  async getManifest(ref: ImageReference, opts: { accept?: string[]; size?: number } = {}): Promise<FetchedManifest> {
    const subject = ref.toString();
    const accept = (opts.accept ?? MANIFEST_ACCEPT).join(', ');
    const known = ref.digest && !opts.accept ? this.recall(ref, ref.digest, opts.size) : undefined;
    if (known && !Buffer.isBuffer(known)) return known;
    const fetched = await this.transport.retrying(ref.domain, async () => {
      const res = await this.transport.send({
        method: 'GET',
        ref,
        path: `manifests/${ref.manifestReference}`,
        headers: { accept },
        subject,
        kind: 'manifest',
      });
      // A manifest named by a descriptor is cut off past the descriptor's size.
      const limit = opts.size !== undefined ? Math.min(opts.size, MAX_MANIFEST_BYTES) : MAX_MANIFEST_BYTES;
      const bytes = await readBytes(res, limit, true, subject).catch((err: unknown) => {
        if (err instanceof RegistryError) throw new RegistryError(limit === opts.size ? `${subject}: manifest larger than its descriptor's size (${limit} bytes)` : `${subject}: manifest larger than ${MAX_MANIFEST_BYTES} bytes`);
        throw err;
      });
      const digest = sha256Digest(bytes);
      const claimed = headerValue(res.headers['docker-content-digest']);
      const expected = ref.digest ?? (claimed && isDigest(claimed) ? claimed : undefined);
      if (expected !== undefined && expected !== digest) throw new DigestMismatchError(expected, digest, `manifest ${subject}`);
      const parsed = parseManifest(bytes, { ref: subject, contentType: headerValue(res.headers['content-type']) });
      return { bytes, digest, mediaType: parsed.mediaType, parsed };
    });
    if (!opts.accept) this.remember(ref, fetched.digest, fetched, fetched.bytes.length);
    return fetched;
  }

  private memoKey(ref: ImageReference, digest: string): string {
    return `${ref.domain}/${ref.path}@${digest}`;
  }

  /** Content this client already fetched (and verified) from the same repository under `digest`. */
  private recall(ref: ImageReference, digest: string, size?: number): FetchedManifest | Buffer | undefined {
    const hit = this.memo.get(this.memoKey(ref, digest));
    const length = hit === undefined ? 0 : Buffer.isBuffer(hit) ? hit.length : hit.bytes.length;
    return hit !== undefined && (size === undefined || size === length) ? hit : undefined;
  }

  private remember(ref: ImageReference, digest: string, value: FetchedManifest | Buffer, length: number): void {
    if (length > MEMO_MAX_ITEM_BYTES || this.memoBytes + length > MEMO_MAX_TOTAL_BYTES) return;
    const key = this.memoKey(ref, digest);
    if (this.memo.has(key)) return;
    this.memo.set(key, value);
    this.memoBytes += length;
  }

  /** Follows the reference (through an index if it names one) to `platform`'s manifest and config, verified. */
  async resolveImage(ref: ImageReference, platform: Platform): Promise<ResolvedImage> {
    const root = await this.getManifest(ref);
    return resolvePlatformImage(
      root,
      platform,
      async (desc) => {
        if (isIndexType(desc.mediaType) || isManifestType(desc.mediaType)) {
          return (await this.getManifest(ref.pinned(desc.digest), { size: desc.size })).bytes;
        }
        return this.getBlob(ref, desc.digest, desc.size);
      },
      ref.toString(),
    );
  }

  /** A whole (small) blob in memory, verified against `digest` (and `size`: more bytes are not read). */
  async getBlob(ref: ImageReference, digest: string, size?: number): Promise<Buffer> {
    parseDigest(digest, ref.name);
    const known = this.recall(ref, digest, size);
    if (Buffer.isBuffer(known)) return known;
    const subject = `${ref.name}@${digest}`;
    const bytes = await this.transport.retrying(ref.domain, async () => {
      const res = await this.transport.send({ method: 'GET', ref, path: `blobs/${digest}`, subject, kind: 'blob' });
      const limit = size !== undefined ? Math.min(size, MAX_SMALL_BLOB_BYTES) : MAX_SMALL_BLOB_BYTES;
      const bytes = await readBytes(res, limit, true, subject).catch((err: unknown) => {
        if (err instanceof RegistryError) throw new RegistryError(limit === size ? `${subject}: blob larger than its descriptor's size (${size} bytes)` : `${subject}: blob larger than ${MAX_SMALL_BLOB_BYTES} bytes; download it to a file`);
        throw err;
      });
      verifyBuffer(bytes, digest, subject, size);
      return bytes;
    });
    this.remember(ref, digest, bytes, bytes.length);
    return bytes;
  }

  /**
   * Streams a blob to `destPath`, verifying size and sha256; retries transient failures, resuming with a
   * Range request where the server allows it. `onProgress` gets the bytes written so far. On failure
   * `destPath` is removed.
   */
  async downloadBlob(ref: ImageReference, desc: Descriptor, destPath: string, onProgress?: (bytes: number) => void): Promise<void> {
    await downloadBlobToFile(this.transport, ref, desc, destPath, onProgress);
  }

  /** Uploads a blob unless the registry has it (HEAD first); mounts it from `mountFrom` when possible. */
  uploadBlob(ref: ImageReference, desc: Descriptor, src: BlobSource, opts: { mountFrom?: string } = {}): Promise<UploadResult> {
    return uploadBlob(this.transport, ref, desc, src, opts);
  }

  /** Whether the repository has the blob (HEAD). */
  hasBlob(ref: ImageReference, digest: string): Promise<boolean> {
    return blobExists(this.transport, ref, digest);
  }

  /** Mounts a blob from another repository of the same registry; false when the registry did not. */
  mountBlob(ref: ImageReference, digest: string, from: string): Promise<boolean> {
    return mountBlob(this.transport, ref, digest, from);
  }

  /** PUTs a manifest or index under a digest or tag. */
  putManifest(ref: ImageReference, reference: string, bytes: Buffer, mediaType: string): Promise<void> {
    return putManifest(this.transport, ref, reference, bytes, mediaType);
  }

  /** Every tag of the repository. */
  listTags(ref: ImageReference): Promise<string[]> {
    return listTags(this.transport, ref);
  }

  /** Deletes a manifest by digest; registries may refuse (405 when deletion is disabled). */
  deleteManifest(ref: ImageReference, digest: string): Promise<void> {
    return deleteManifest(this.transport, ref, digest);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
