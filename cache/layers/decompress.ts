// A layer blob → its uncompressed tar bytes, chosen by media type and checked against the data's magic
// bytes (a gzip-typed blob that is not gzip fails clearly instead of as a baffling tar error). zstd is
// decoded by fzstd (pure JS: Node 20's zlib has no zstd).
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { layerCompressionOf, type LayerCompression } from '../../base/oci/mediatypes.js';
import { UserError } from '../../base/errors.js';

/** A layer's bytes are not what its media type promises, or are corrupt. */
export class LayerFormatError extends UserError {}

export function compressionOfLayer(mediaType: string): LayerCompression {
  const c = layerCompressionOf(mediaType);
  if (!c) throw new LayerFormatError(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  return c;
}

function sniff(head: Buffer): LayerCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Yields the uncompressed bytes of `input`; `what` names the layer in errors. */
export async function* decompressLayer(input: AsyncIterable<Buffer>, compression: LayerCompression, what: string): AsyncGenerator<Buffer> {
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
  const found = sniff(head);
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
