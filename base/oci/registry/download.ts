// Streaming a blob to a file: hashed as it arrives, written in ~1 MiB batches, resumed with a Range
// request after a dropped connection (or restarted when the server ignores Range), deleted on failure.
import { open, rm, type FileHandle } from 'node:fs/promises';
import { DigestCounter, SizeMismatchError, parseDigest } from '../digest.js';
import type { ImageReference } from '../reference.js';
import type { Descriptor } from '../types.js';
import { RegistryError } from './errors.js';
import { meteredBody, type FetchLimits } from './fetch-limits.js';
import type { RegistryTransport, ResponseData } from './transport.js';

const WRITE_BATCH = 1 << 20;

/** A body that ended early or a Range answer we cannot use: try again. */
class TransientDownloadError extends RegistryError {
  readonly retryable = true;
}

export async function downloadBlobToFile(
  transport: RegistryTransport,
  ref: ImageReference,
  desc: Descriptor,
  destPath: string,
  onProgress?: (bytes: number) => void,
): Promise<void> {
  parseDigest(desc.digest, `${ref.name} layer`);
  const subject = `${ref.name}@${desc.digest}`;
  const fh = await open(destPath, 'w');
  let counter = new DigestCounter();
  let written = 0; // == counter.bytes after every flush
  let ok = false;
  try {
    await transport.retrying(ref.domain, async () => {
      const resumeFrom = written;
      if (resumeFrom > 0 && resumeFrom >= desc.size) {
        // Every byte arrived before the connection failed: nothing left to fetch.
        counter.verify(desc.digest, subject, desc.size);
        return;
      }
      const headers: Record<string, string> = {};
      if (resumeFrom > 0) headers.range = `bytes=${resumeFrom}-`;
      const res = await transport.send({ method: 'GET', ref, path: `blobs/${desc.digest}`, headers, subject, kind: 'blob' });
      if (headers.range && !resumedAt(res, resumeFrom)) {
        // The server sent the whole blob (or an unexpected range): start over from byte 0.
        counter = new DigestCounter();
        written = 0;
        await fh.truncate(0);
        onProgress?.(0);
        if (res.statusCode === 206) {
          res.body.destroy();
          throw new TransientDownloadError(`${subject}: unusable range response`);
        }
      }
      await streamBody(res, transport.limits, fh, desc.size, subject, counter, (n) => {
        written = n;
        onProgress?.(n);
      }, written);
      counter.verify(desc.digest, subject, desc.size);
    });
    ok = true;
  } finally {
    await fh.close();
    if (!ok) await rm(destPath, { force: true });
  }
}

/** True when a Range request was answered with exactly the bytes from `offset` on. */
function resumedAt(res: ResponseData, offset: number): boolean {
  if (res.statusCode !== 206) return false;
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
  return m !== null && Number(m[1]) === offset;
}

/**
 * Appends the body at `offset`, hashing every byte. Whatever arrived before a failure is flushed first,
 * so the file and the hash always agree and the next attempt can resume where this one stopped.
 */
async function streamBody(
  res: ResponseData,
  limits: FetchLimits,
  fh: FileHandle,
  size: number,
  subject: string,
  counter: DigestCounter,
  onWritten: (bytes: number) => void,
  offset: number,
): Promise<void> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let position = offset;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const batch = pending;
    pending = [];
    const n = pendingBytes;
    pendingBytes = 0;
    await fh.writev(batch, position);
    position += n;
    onWritten(position);
  };
  try {
    for await (const chunk of meteredBody(res.body as AsyncIterable<Buffer>, limits, subject)) {
      counter.update(chunk);
      if (counter.bytes > size) {
        // More bytes than the descriptor says: the content is wrong whatever its hash.
        pending = [];
        pendingBytes = 0;
        throw new SizeMismatchError(size, counter.bytes, subject);
      }
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= WRITE_BATCH) await flush();
    }
  } finally {
    await flush();
  }
  if (counter.bytes < size) throw new TransientDownloadError(`${subject}: body ended after ${counter.bytes} of ${size} bytes`);
}
