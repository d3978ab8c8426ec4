// sha256 digests: computing, validating, and verifying content (buffers and streams) against them.
import { createHash, hash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { UserError } from '../errors.js';

const SHA256_RE = /^sha256:[a-f0-9]{64}$/;
// The OCI digest grammar: algorithm ":" encoded.
const ANY_DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface ParsedDigest {
  algorithm: 'sha256';
  /** 64 lowercase hex characters */
  hex: string;
  /** The whole digest string, `sha256:<hex>` */
  digest: string;
}

export class InvalidDigestError extends UserError {}

/**
 * Validates a digest string. Only sha256 is accepted: it is what every OCI registry and runtime produces,
 * and accepting others would let an attacker pick a weaker hash. `context` names where the digest came from.
 */
export function parseDigest(s: string, context?: string): ParsedDigest {
  if (SHA256_RE.test(s)) return { algorithm: 'sha256', hex: s.slice(7), digest: s };
  const where = context ? ` in ${context}` : '';
  if (ANY_DIGEST_RE.test(s)) {
    const algorithm = s.slice(0, s.indexOf(':'));
    if (algorithm === 'sha256') throw new InvalidDigestError(`invalid digest ${JSON.stringify(s)}${where}: sha256 needs 64 lowercase hex characters`);
    throw new InvalidDigestError(`unsupported digest algorithm ${algorithm}${where} (${s}): only sha256 is supported`);
  }
  throw new InvalidDigestError(`invalid digest ${JSON.stringify(s)}${where}: expected sha256:<64 hex characters>`);
}

export function isDigest(s: string): boolean {
  return SHA256_RE.test(s);
}

/** `sha256:<hex>` of a buffer or string (one-shot: fastest for small inputs). */
export function sha256Digest(data: Buffer | Uint8Array | string): string {
  return 'sha256:' + hash('sha256', data, 'hex');
}

export function sha256Hex(data: Buffer | Uint8Array | string): string {
  return hash('sha256', data, 'hex');
}

/** Content did not hash to the digest it was fetched or stored under. */
export class DigestMismatchError extends UserError {
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly what?: string,
  ) {
    super(`digest mismatch${what ? ` for ${what}` : ''}: expected ${expected}, got ${actual}`);
  }
}

/** Content had a different length than its descriptor says. */
export class SizeMismatchError extends UserError {
  constructor(
    readonly expected: number,
    readonly actual: number,
    readonly what?: string,
  ) {
    super(`size mismatch${what ? ` for ${what}` : ''}: expected ${expected} bytes, got ${actual}`);
  }
}

/** Throws DigestMismatchError (or SizeMismatchError when `size` is given and differs) unless `data` matches. */
export function verifyBuffer(data: Buffer, expected: string, what?: string, size?: number): void {
  if (size !== undefined && data.length !== size) throw new SizeMismatchError(size, data.length, what);
  const actual = sha256Digest(data);
  if (actual !== expected) throw new DigestMismatchError(expected, actual, what);
}

/** Incremental sha256 with a byte count, for content that arrives in pieces. */
export class DigestCounter {
  private h: Hash = createHash('sha256');
  bytes = 0;
  update(chunk: Buffer | Uint8Array): void {
    this.h.update(chunk);
    this.bytes += chunk.length;
  }
  digest(): string {
    return 'sha256:' + this.h.digest('hex');
  }
  /** Throws unless everything fed so far matches the expected digest (and size, if given). */
  verify(expected: string, what?: string, size?: number): void {
    if (size !== undefined && this.bytes !== size) throw new SizeMismatchError(size, this.bytes, what);
    const actual = this.digest();
    if (actual !== expected) throw new DigestMismatchError(expected, actual, what);
  }
}

/** A pass-through stream that feeds `counter` (sha256 and byte count) with what flows through it. */
export function digestingStream(counter: DigestCounter): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      counter.update(chunk);
      cb(null, chunk);
    },
  });
}

/**
 * A pass-through stream that hashes what flows through it and fails at the end (before signalling
 * completion) if the content does not match `expected` or, when given, `size`. Bytes beyond `size` fail
 * early so a lying server cannot make us write unbounded data.
 */
export function verifyingStream(expected: string, opts: { size?: number; what?: string } = {}): Transform {
  parseDigest(expected, opts.what);
  const counter = new DigestCounter();
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      counter.update(chunk);
      if (opts.size !== undefined && counter.bytes > opts.size) {
        cb(new SizeMismatchError(opts.size, counter.bytes, opts.what));
        return;
      }
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      try {
        counter.verify(expected, opts.what, opts.size);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
}
