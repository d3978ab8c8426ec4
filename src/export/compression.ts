// Layer compression for export (gzip, zstd, none) into the content store. Decompression has one home for
// every reader: cache/layers/decompress.ts.
//
// zstd: Node 20's zlib has none. Compression spawns Debian's `zstd` program as a stream (apt package
// `zstd`): it is the reference encoder, multi-threaded, and its output is what other tools produce; the
// pure-JS/WASM encoders on npm are either slow, buffer the whole input, or download a binary at install.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Duplex, PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createParallelGzip } from '../../cache/layers/gzip-parallel.js';
import type { ContentStore } from '../../cache/content-store.js';
import { DigestCounter } from '../../base/oci/digest.js';
import { layerTypeFor, type LayerCompression } from '../../base/oci/mediatypes.js';
import { ExportError } from './types.js';

const CHUNK = 1 << 20;

export interface CompressOptions {
  compression: LayerCompression;
  /** gzip 0–9 (default 6, as BuildKit); zstd 1–22 (default 3, as BuildKit). */
  level?: number;
  /** Media type family of the result (default OCI). */
  ociMediaTypes?: boolean;
}

export interface CompressedLayer {
  /** The blob's digest in the content store. */
  digest: string;
  size: number;
  mediaType: string;
  /** sha256 of the uncompressed tar. */
  diffId: string;
}

function checkLevel(opts: CompressOptions): number | undefined {
  const { compression, level } = opts;
  if (level === undefined) return undefined;
  const [lo, hi] = compression === 'gzip' ? [0, 9] : compression === 'zstd' ? [1, 22] : [0, 0];
  if (compression === 'none' || !Number.isInteger(level) || level < lo || level > hi) {
    const range = compression === 'none' ? 'uncompressed layers take no level' : `expected ${lo}-${hi}`;
    throw new ExportError(`invalid compression-level ${level} for ${compression}: ${range}`);
  }
  return level;
}

/** Counts and hashes what passes through. */
function hashing(counter: DigestCounter): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      counter.update(chunk);
      cb(null, chunk);
    },
  });
}

/** The `zstd` program as a duplex stream; `done` settles when it exits. */
function zstdProcess(args: string[]): { stream: Duplex; done: Promise<void> } {
  const child = spawn('zstd', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new ExportError('zstd compression needs the zstd program (apt-get install zstd)') : err);
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`zstd ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${stderr.trim()}`));
    });
  });
  return { stream: Duplex.from({ writable: child.stdin, readable: child.stdout }), done };
}

function compressor(opts: CompressOptions): { stream: Duplex; done: Promise<void> } {
  const level = checkLevel(opts);
  switch (opts.compression) {
    case 'gzip':
      // Node's gzip header has mtime 0 and no name: output depends on the input and level only.
      return { stream: createParallelGzip(level === undefined ? {} : { level }), done: Promise.resolve() };
    case 'zstd': {
      const l = level ?? 3;
      return zstdProcess(['-q', '-c', '--no-progress', ...(l > 19 ? ['--ultra'] : []), `-${l}`, '-']);
    }
    case 'none':
      return { stream: new PassThrough(), done: Promise.resolve() };
    default:
      throw new ExportError(`unknown compression ${JSON.stringify(opts.compression)}: expected gzip, zstd or uncompressed`);
  }
}

/** Compresses an uncompressed layer tar stream into the content store. */
export async function compressLayerStream(input: Readable, content: ContentStore, opts: CompressOptions): Promise<CompressedLayer> {
  const { stream, done } = compressor(opts);
  const diff = new DigestCounter();
  const blob = new DigestCounter();
  const tmp = join(content.ingestDir, `compress-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    const [piped, exited] = await Promise.allSettled([pipeline(input, hashing(diff), stream, hashing(blob), createWriteStream(tmp, { highWaterMark: CHUNK })), done]);
    // The compressor's own failure (e.g. no zstd program) says more than the broken pipe it causes.
    if (exited.status === 'rejected') throw exited.reason;
    if (piped.status === 'rejected') throw piped.reason;
    const digest = blob.digest();
    await content.ingest(digest, async (ingestPath) => renameSync(tmp, ingestPath), { size: blob.bytes });
    return {
      digest,
      size: blob.bytes,
      mediaType: layerTypeFor(opts.compression, opts.ociMediaTypes === false ? 'docker' : 'oci'),
      diffId: diff.digest(),
    };
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Compresses the uncompressed layer tar at `tarPath` (read in 1 MiB chunks) into the content store. */
export function compressLayer(tarPath: string, content: ContentStore, opts: CompressOptions): Promise<CompressedLayer> {
  return compressLayerStream(createReadStream(tarPath, { highWaterMark: CHUNK }), content, opts);
}
