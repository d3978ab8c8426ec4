// Tar writer over a chunked output: headers (with a PAX header when ustar cannot hold a field), data
// read straight from file descriptors into ~1 MiB chunks, and the end-of-archive blocks. The chunks are
// hashed as they leave (the diffID) and handed on whole, which keeps zlib fed with large inputs.
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { BLOCK, encodeBlockInto, newHeader, paxOverrides, type TarHeader } from './tar-header.js';
import { encodePaxRecords } from './tar-pax.js';

export const CHUNK_SIZE = 1 << 20;

// Chunks are zeroed when allocated and each byte is written at most once, so padding and header blocks
// need no filling: skipping over bytes leaves zeros.
export class ChunkedOutput {
  private buf = Buffer.alloc(CHUNK_SIZE);
  private pos = 0;
  private ready: Buffer[] = [];
  private readonly hash = createHash('sha256');
  /** Bytes handed on so far (the uncompressed size once ended). */
  bytes = 0;

  constructor(private readonly emit: (chunk: Buffer) => Promise<void> | void) {}

  append(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, CHUNK_SIZE - this.pos);
      data.copy(this.buf, this.pos, off, off + n);
      this.pos += n;
      off += n;
      if (this.pos === CHUNK_SIZE) this.rotate();
    }
  }

  /**
   * The next 512 bytes of the output, zeroed, to be filled in place (a header block). Everything before
   * a header is 512-byte aligned and a chunk is a whole number of blocks, so a block never straddles two.
   */
  block(): Buffer {
    if (this.pos % BLOCK !== 0) throw new Error('tar output is not at a block boundary');
    // Rotate before, not after: a chunk is hashed when it rotates, and this block is not written yet.
    if (this.pos === CHUNK_SIZE) this.rotate();
    const b = this.buf.subarray(this.pos, this.pos + BLOCK);
    this.pos += BLOCK;
    return b;
  }

  zeros(n: number): void {
    while (n > 0) {
      const k = Math.min(n, CHUNK_SIZE - this.pos);
      this.pos += k;
      n -= k;
      if (this.pos === CHUNK_SIZE) this.rotate();
    }
  }

  /** Copies exactly `n` bytes of an open file into the output (synchronous reads: fast for small files). */
  async copyFromFd(fd: number, n: number, path: string): Promise<void> {
    while (n > 0) {
      if (this.pos === CHUNK_SIZE) {
        this.rotate();
        await this.drain();
      }
      const k = readSync(fd, this.buf, this.pos, Math.min(n, CHUNK_SIZE - this.pos), null);
      if (k === 0) throw new Error(`${path} shrank while it was being packed`);
      this.pos += k;
      n -= k;
    }
    if (this.pos === CHUNK_SIZE) this.rotate();
  }

  /** Hands completed chunks on, waiting for the consumer (backpressure). */
  async drain(): Promise<void> {
    while (this.ready.length) {
      const p = this.emit(this.ready.shift()!);
      if (p) await p;
    }
  }

  get pendingBytes(): number {
    return this.ready.length * CHUNK_SIZE;
  }

  /** Hands on everything, including the last partial chunk. */
  async end(): Promise<void> {
    if (this.pos > 0) {
      const last = this.buf.subarray(0, this.pos);
      this.hash.update(last);
      this.bytes += last.length;
      this.ready.push(last);
      this.buf = Buffer.allocUnsafe(0);
      this.pos = 0;
    }
    await this.drain();
  }

  digest(): string {
    return 'sha256:' + this.hash.digest('hex');
  }

  private rotate(): void {
    this.hash.update(this.buf);
    this.bytes += this.buf.length;
    this.ready.push(this.buf);
    this.buf = Buffer.alloc(CHUNK_SIZE);
    this.pos = 0;
  }
}

function paxHeaderName(name: string): string {
  const base = name.replace(/\/+$/, '').split('/').pop() ?? '';
  return `PaxHeaders.0/${base}`.replace(/[^\x20-\x7e]/g, '_').slice(0, 100);
}

export class TarWriter {
  constructor(readonly out: ChunkedOutput) {}

  /** Writes the header block(s) for `h`; for a file, `h.size` data bytes and padDataTo() must follow. */
  writeHeader(h: TarHeader): void {
    const pax = paxOverrides(h);
    if (pax.size > 0) {
      const records = encodePaxRecords(pax);
      const paxHeader = newHeader({ name: paxHeaderName(h.name), size: records.length });
      encodeBlockInto(this.out.block(), paxHeader, 'x');
      this.out.append(records);
      this.out.zeros(padding(records.length));
    }
    encodeBlockInto(this.out.block(), h);
  }

  /** Zero padding after `size` data bytes. */
  padData(size: number): void {
    this.out.zeros(padding(size));
  }

  /** The two zero blocks that end an archive. */
  finish(): void {
    this.out.zeros(2 * BLOCK);
  }
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Streams `out` chunks, honouring backpressure and failing on the stream's error. */
export function writableSink(out: Writable): (chunk: Buffer) => Promise<void> | void {
  let error: Error | undefined;
  out.on('error', (err) => (error ??= err));
  return (chunk) => {
    if (error) throw error;
    if (out.destroyed) throw new Error('the output was closed');
    if (out.write(chunk)) return;
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        out.off('drain', onDrain);
        out.off('error', done);
        out.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(error ?? new Error('layer output closed early'));
      out.on('drain', onDrain);
      out.on('error', done);
      out.on('close', onClose);
    });
  };
}
