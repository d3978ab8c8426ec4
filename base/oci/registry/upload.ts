// Writing to a registry (distribution spec "push"): blobs are checked with HEAD first and uploaded only
// when missing, mounted from another repository of the same registry when kiln knows one that has them,
// sent whole (POST + PUT) when small and in chunks (PATCH with Content-Range, then PUT) when large;
// manifests are PUT by digest or tag. Every request carries push scope.
import { closeSync, openSync, readSync } from 'node:fs';
import type { ImageReference } from '../reference.js';
import type { Descriptor } from '../types.js';
import type { RegistryTransport } from './transport.js';
import { NotFoundError, RegistryError } from './errors.js';

/** Blobs up to this size go in one PUT; larger ones in chunks of CHUNK bytes. */
export const MONOLITHIC_LIMIT = 16 * 1024 * 1024;
export const CHUNK = 8 * 1024 * 1024;

export type BlobSource = { path: string } | { bytes: Buffer };

function readRange(src: BlobSource, start: number, length: number): Buffer {
  if ('bytes' in src) return src.bytes.subarray(start, start + length);
  const buf = Buffer.allocUnsafe(length);
  const fd = openSync(src.path, 'r');
  try {
    let off = 0;
    while (off < length) {
      const n = readSync(fd, buf, off, length - off, start + off);
      if (n === 0) throw new Error(`${src.path}: file is shorter than its descriptor says`);
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

function location(res: { headers: Record<string, string | string[] | undefined> }, subject: string): string {
  const loc = res.headers.location;
  if (!loc) throw new RegistryError(`${subject}: the registry started an upload without a Location`);
  return String(Array.isArray(loc) ? loc[0] : loc);
}

function withDigest(url: string, digest: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

export async function blobExists(t: RegistryTransport, ref: ImageReference, digest: string): Promise<boolean> {
  return t.retrying(ref.domain, async () => {
    try {
      const res = await t.send({ method: 'HEAD', ref, path: `blobs/${digest}`, subject: `${ref.name}@${digest}`, kind: 'blob', push: true });
      await res.body.dump();
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  });
}

export interface UploadResult {
  /** skipped: the registry had it; mounted: from another repository; uploaded: sent. */
  how: 'skipped' | 'mounted' | 'uploaded';
}

export async function uploadBlob(t: RegistryTransport, ref: ImageReference, desc: Descriptor, src: BlobSource, opts: { mountFrom?: string } = {}): Promise<UploadResult> {
  if (await blobExists(t, ref, desc.digest)) return { how: 'skipped' };
  const subject = `${ref.name}@${desc.digest}`;
  // A chunked upload that fails part-way resumes in the same session: the registry says (GET on the
  // session, `Range: 0-N`) how much it holds, and only the rest is sent again.
  let session: { url: string; offset: number } | undefined;
  return t.retrying(ref.domain, async () => {
    if (session && desc.size > MONOLITHIC_LIMIT) session = await uploadStatus(t, ref, session.url, subject);
    if (!session) {
      let start;
      if (opts.mountFrom && opts.mountFrom !== ref.path) {
        start = await t.send({ method: 'POST', ref, path: `blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(opts.mountFrom)}`, subject, kind: 'upload', push: true });
        await start.body.dump();
        if (start.statusCode === 201) return { how: 'mounted' as const };
      } else {
        start = await t.send({ method: 'POST', ref, path: 'blobs/uploads/', subject, kind: 'upload', push: true });
        await start.body.dump();
      }
      session = { url: location(start, subject), offset: 0 };
    }
    if (desc.size <= MONOLITHIC_LIMIT) {
      const url = session.url;
      session = undefined; // a failed whole-blob PUT starts over
      const res = await t.send({ method: 'PUT', ref, path: '', url: withDigest(url, desc.digest), body: readRange(src, 0, desc.size), headers: { 'content-type': 'application/octet-stream' }, subject, kind: 'upload', push: true });
      await res.body.dump();
      return { how: 'uploaded' as const };
    }
    for (let off = session.offset; off < desc.size; off = session.offset) {
      const chunk = readRange(src, off, Math.min(CHUNK, desc.size - off));
      const res = await t.send({
        method: 'PATCH',
        ref,
        path: '',
        url: session.url,
        body: chunk,
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${off + chunk.length - 1}` },
        subject,
        kind: 'upload',
        push: true,
      });
      await res.body.dump();
      session = { url: location(res, subject), offset: off + chunk.length };
    }
    const done = await t.send({ method: 'PUT', ref, path: '', url: withDigest(session.url, desc.digest), body: Buffer.alloc(0), subject, kind: 'upload', push: true });
    await done.body.dump();
    return { how: 'uploaded' as const };
  });
}

/** Where an upload session stands; undefined when the registry no longer knows it (start again). */
async function uploadStatus(t: RegistryTransport, ref: ImageReference, url: string, subject: string): Promise<{ url: string; offset: number } | undefined> {
  try {
    const res = await t.send({ method: 'GET', ref, path: '', url, subject, kind: 'upload', push: true });
    await res.body.dump();
    const range = res.headers.range;
    const m = /^0-([0-9]+)$/.exec(String(Array.isArray(range) ? range[0] : (range ?? '')));
    return { url: res.headers.location ? location(res, subject) : url, offset: m ? Number(m[1]) + 1 : 0 };
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/**
 * Asks the registry to mount a blob from another repository; true when it did (201). A registry that
 * cannot mount answers with an upload session instead (202), which is cancelled.
 */
export async function mountBlob(t: RegistryTransport, ref: ImageReference, digest: string, from: string): Promise<boolean> {
  const subject = `${ref.name}@${digest}`;
  return t.retrying(ref.domain, async () => {
    const res = await t.send({ method: 'POST', ref, path: `blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, subject, kind: 'upload', push: true });
    await res.body.dump();
    if (res.statusCode === 201) return true;
    const loc = res.headers.location;
    if (loc) {
      const cancel = await t.send({ method: 'DELETE', ref, path: '', url: String(Array.isArray(loc) ? loc[0] : loc), subject, kind: 'upload', push: true }).catch(() => undefined);
      await cancel?.body.dump();
    }
    return false;
  });
}

export async function putManifest(t: RegistryTransport, ref: ImageReference, reference: string, bytes: Buffer, mediaType: string): Promise<void> {
  await t.retrying(ref.domain, async () => {
    const res = await t.send({ method: 'PUT', ref, path: `manifests/${reference}`, body: bytes, headers: { 'content-type': mediaType }, subject: `${ref.name}:${reference}`, kind: 'manifest', push: true });
    await res.body.dump();
  });
}
