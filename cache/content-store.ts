// The content store: blobs (layers, configs, manifests, indexes) by sha256, under content/blobs/sha256.
// Blobs arrive through `ingest` (a temp file in content/ingest that is verified, fsynced and renamed into
// place), so a blob path that exists always holds exactly its digest's bytes. Small blobs are re-verified
// on every read; layer blobs are verified as they stream (openVerified).
import { createHash, hash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { fsyncPath, writeFileAtomic } from './atomic.js';
import { UserError } from '../base/errors.js';

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

export class ContentDigestError extends UserError {}

function hexOf(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new ContentDigestError(`invalid digest ${JSON.stringify(digest)}: expected sha256:<64 hex digits>`);
  return m[1]!;
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${hash('sha256', data, 'hex')}`;
}

export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;

  constructor(root: string) {
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.ingestDir = join(root, 'ingest');
    mkdirSync(this.blobsDir, { recursive: true });
    mkdirSync(this.ingestDir, { recursive: true });
  }

  path(digest: string): string {
    return join(this.blobsDir, hexOf(digest));
  }

  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  size(digest: string): number {
    return statSync(this.path(digest)).size;
  }

  /** Stores bytes; when expectedDigest is given it must match. Returns the digest. */
  putBytes(data: Uint8Array, expectedDigest?: string): string {
    const digest = sha256Digest(data);
    if (expectedDigest && expectedDigest !== digest) {
      throw new ContentDigestError(`digest mismatch: expected ${expectedDigest}, got ${digest}`);
    }
    if (!this.has(digest)) writeFileAtomic(this.path(digest), data);
    return digest;
  }

  /**
   * Ingests a blob written by `write` to a temp path (e.g. a registry download that verifies as it goes).
   * The file is re-hashed only when `verify` is true; it is fsynced and renamed into place.
   */
  async ingest(digest: string, write: (tmpPath: string) => Promise<void>, opts: { verify?: boolean; size?: number } = {}): Promise<void> {
    const target = this.path(digest);
    if (existsSync(target)) return;
    const tmp = join(this.ingestDir, `${hexOf(digest)}-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await write(tmp);
      if (opts.size !== undefined) {
        const actual = statSync(tmp).size;
        if (actual !== opts.size) throw new ContentDigestError(`size mismatch for ${digest}: expected ${opts.size} bytes, got ${actual}`);
      }
      if (opts.verify) {
        const actual = await hashFile(tmp);
        if (actual !== digest) throw new ContentDigestError(`digest mismatch: expected ${digest}, got ${actual}`);
      }
      fsyncPath(tmp);
      renameSync(tmp, target);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /**
   * Ingests a blob whose digest is known only after writing it (a layer being compressed): `write`
   * fills a temp path and returns the digest; the file is fsynced and renamed into place.
   */
  async ingestComputed<T extends { digest: string }>(write: (tmpPath: string) => Promise<T>): Promise<T> {
    const tmp = join(this.ingestDir, `new-${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      const result = await write(tmp);
      const target = this.path(result.digest);
      if (!existsSync(target)) {
        fsyncPath(tmp);
        renameSync(tmp, target);
      }
      return result;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  /** Reads a (small) blob, verifying its digest. */
  readBytes(digest: string): Buffer {
    const data = readFileSync(this.path(digest));
    const actual = sha256Digest(data);
    if (actual !== digest) throw new ContentDigestError(`content store blob ${digest} is corrupt (it hashes to ${actual})`);
    return data;
  }

  readJSON<T>(digest: string): T {
    return JSON.parse(this.readBytes(digest).toString('utf8')) as T;
  }

  /** A stream of the blob that fails at its end if the bytes do not hash to the digest. */
  openVerified(digest: string): Readable {
    const h = createHash('sha256');
    const check = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        h.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        const actual = `sha256:${h.digest('hex')}`;
        cb(actual === digest ? null : new ContentDigestError(`content store blob ${digest} is corrupt (it hashes to ${actual})`));
      },
    });
    const src = createReadStream(this.path(digest), { highWaterMark: 1 << 20 });
    src.on('error', (err) => check.destroy(err));
    return src.pipe(check);
  }

  remove(digest: string): void {
    rmSync(this.path(digest), { force: true });
  }

  list(): string[] {
    return readdirSync(this.blobsDir).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /** Removes temp files left by a killed process. Only safe while holding the state lock. */
  cleanIngest(): void {
    for (const name of readdirSync(this.ingestDir)) rmSync(join(this.ingestDir, name), { force: true, recursive: true });
  }
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}
