// The one decompressor of every compressed tar kiln reads: layer blobs (told by media type, checked
// against the data's magic bytes, so a gzip-typed blob that is not gzip fails clearly instead of as a
// baffling tar error), exports and ADD archives (told by their magic bytes alone). gzip is Node's zlib,
// zstd is fzstd (pure JS: Node 20's zlib has no zstd); ADD's bzip2 and xz run the system's programs.
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { layerCompressionOf, type LayerCompression } from '../../base/oci/mediatypes.js';
import { UserError } from '../../base/errors.js';

/** A layer's bytes are not what its media type promises, or are corrupt. */
export class LayerFormatError extends UserError {}

/** Compressions of archives a Dockerfile ADDs (Docker's DecompressStream), a superset of layers'. */
export type ArchiveCompression = LayerCompression | 'bzip2' | 'xz';

export function compressionOfLayer(mediaType: string): LayerCompression {
  const c = layerCompressionOf(mediaType);
  if (!c) throw new LayerFormatError(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  return c;
}

/** The compression that the first bytes of a stream show ('none' for anything else). */
export function sniffCompression(head: Buffer): ArchiveCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

function sniff(head: Buffer): LayerCompression {
  const c = sniffCompression(head);
  return c === 'bzip2' || c === 'xz' ? 'none' : c;
}

/** Yields the uncompressed bytes of `input`; `what` names the layer in errors. */
export async function* decompressLayer(input: AsyncIterable<Buffer>, compression: ArchiveCompression, what: string): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  let ended = false;
  while (head.length < 4) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head = head.length ? Buffer.concat([head, r.value]) : r.value;
  }
  const found = compression === 'bzip2' || compression === 'xz' ? sniffCompression(head) : sniff(head);
  if (head.length > 0 && found !== compression) {
    throw new LayerFormatError(`${what}: media type says ${compression === 'none' ? 'uncompressed tar' : compression} but the data is ${found === 'none' ? 'not compressed' : found}`);
  }
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    if (ended) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }

  if (compression === 'none') {
    yield* all();
  } else if (compression === 'gzip') {
    if (head.length === 0) throw new LayerFormatError(`${what}: gzip data is empty`);
    const source = Readable.from(all(), { objectMode: false });
    const gunzip = createGunzip();
    source.on('error', (err) => gunzip.destroy(err));
    source.pipe(gunzip);
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (err) {
      if (typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).code!.startsWith('Z_')) {
        throw new LayerFormatError(`${what}: gzip data is corrupt (${(err as Error).message})`, { cause: err });
      }
      throw err;
    } finally {
      source.destroy();
      gunzip.destroy();
    }
  } else if (compression === 'bzip2' || compression === 'xz') {
    yield* viaProgram(compression, all(), what);
  } else {
    if (head.length === 0) throw new LayerFormatError(`${what}: zstd data is empty`);
    const out: Buffer[] = [];
    // fzstd may reuse its window buffer, so copy what it hands over.
    const z = new ZstdDecompress((data) => out.push(Buffer.from(data)));
    const push = (chunk: Uint8Array, final: boolean) => {
      try {
        z.push(chunk, final);
      } catch (err) {
        throw new LayerFormatError(`${what}: zstd data is corrupt (${(err as Error).message})`, { cause: err });
      }
    };
    for await (const chunk of all()) {
      push(chunk, false);
      yield* out.splice(0);
    }
    push(new Uint8Array(0), true);
    yield* out.splice(0);
  }
}

/** bzip2/xz through the system's program (`-dc`), failing with its message when the data is corrupt. */
async function* viaProgram(program: 'bzip2' | 'xz', input: AsyncIterable<Buffer>, what: string): AsyncGenerator<Buffer> {
  const child = spawn(program, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new LayerFormatError(`${what}: ${program} data needs the ${program} program, which is not installed`) : err),
    );
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new LayerFormatError(`${what}: ${program} data is corrupt (${stderr.trim().split('\n').pop() || signal || `exit ${code}`})`)),
    );
  });
  exited.catch(() => {}); // awaited below
  child.stdin.on('error', () => {}); // a program that quits early: its exit status says why
  const feeding = Readable.from(input, { objectMode: false }).pipe(child.stdin);
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    await exited;
  } finally {
    feeding.destroy();
    if (child.exitCode === null) child.kill();
  }
}
