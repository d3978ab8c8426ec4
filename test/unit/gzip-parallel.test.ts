// Layers are gzipped in 1 MiB pieces on every core (cache/layers/gzip-parallel.ts). What a user relies on:
// any gunzip reads the blob back whole, and the blob's digest depends only on the content, never on the
// machine's core count or on how the tar stream happened to be chunked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gunzipSync, gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { createParallelGzip, DEFAULT_GZIP_LEVEL, GZIP_PIECE } from '../../cache/layers/gzip-parallel.js';

/** Compressible but not trivial: random words, like a tree of text and binaries. */
function content(size: number, seed: number): Buffer {
  const words = Array.from({ length: 512 }, (_, i) => createHash('sha256').update(`${seed}-${i}`).digest('hex').slice(0, 3 + (i % 9)));
  const out = Buffer.alloc(size);
  let at = 0;
  for (let i = 0; at < size; i++) at += out.write(`${words[(i * 7919 + seed) % words.length]} `, at);
  randomBytes(4096).copy(out, Math.floor(size / 2)); // an incompressible stretch
  return out;
}

async function compress(data: Buffer, threads: number, chunk: number, level?: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) pieces.push(data.subarray(i, i + chunk));
  return buffer(Readable.from(pieces).pipe(createParallelGzip({ threads, ...(level === undefined ? {} : { level }) })));
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A plain gzip stream at kiln's default layer level. */
const plain = (b: Buffer) => gzipSync(b, { level: DEFAULT_GZIP_LEVEL });

test('a layer of one piece or less is byte for byte what a plain gzip stream gives; so is an empty one', async () => {
  for (const size of [0, 1, 1000, GZIP_PIECE - 1, GZIP_PIECE]) {
    const data = content(size, size);
    assert.deepEqual(await compress(data, 2, 65536), plain(data), `size ${size}`);
  }
  const small = content(3000, 1);
  assert.deepEqual(await compress(small, 2, 500, 1), gzipSync(small, { level: 1 }), 'level 1');
});

test('a large layer: gunzip and the gzip program read it back whole; the bytes do not depend on cores or chunking', async () => {
  const data = content(3 * GZIP_PIECE + 12345, 7);
  const outs = [await compress(data, 1, 65536), await compress(data, 2, 1 << 20), await compress(data, 4, 777_777), await compress(data, 8, data.length)];
  for (const out of outs) assert.equal(digest(out), digest(outs[0]!));
  assert.ok(gunzipSync(outs[0]!).equals(data));
  const gz = spawnSync('gzip', ['-dc'], { input: outs[0], maxBuffer: 64 << 20 });
  assert.equal(gz.status, 0, gz.stderr?.toString());
  assert.equal(digest(gz.stdout), digest(data));
  // one member per piece, in order
  const members = [0, 1, 2, 3].map((i) => plain(data.subarray(i * GZIP_PIECE, (i + 1) * GZIP_PIECE)));
  assert.equal(digest(outs[0]!), digest(Buffer.concat(members)));
});

test('an input of exactly two pieces makes two members, with no empty one after them, on any core count', async () => {
  const data = content(2 * GZIP_PIECE, 3);
  const want = Buffer.concat([plain(data.subarray(0, GZIP_PIECE)), plain(data.subarray(GZIP_PIECE))]);
  for (const threads of [1, 2, 3]) assert.equal(digest(await compress(data, threads, 100_000)), digest(want), `threads ${threads}`);
});
