// A layer blob → a snapshot dir (overlay upperdir form). The blob is decompressed, hashed (the diffID is
// the sha256 of the uncompressed tar) and written into a temp dir beside `destDir` in one pass; the temp
// dir is renamed into place only when the tar was complete and the diffID matched, so a snapshot dir that
// exists is always whole.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { DigestCounter, DigestMismatchError, parseDigest } from '../../base/oci/digest.js';
import { LayerApplier } from './apply.js';
import { compressionOfLayer, decompressLayer, LayerFormatError } from './decompress.js';
import { FsOps } from './fsops.js';
import { TarFormatError } from './tar-header.js';
import { TarReader } from './tar-reader.js';

export { LayerFormatError } from './decompress.js';

export interface UnpackOptions {
  mediaType: string;
  /** When given, the uncompressed tar must hash to it, or nothing is left at destDir. */
  expectedDiffId?: string;
}

/**
 * Unpacks a layer into `destDir` (which must not exist yet). If another unpack of the same content
 * finished first (destDir appeared meanwhile), that one is kept. Returns the diffID and the uncompressed size.
 */
export async function unpackLayer(input: Readable, destDir: string, opts: UnpackOptions): Promise<{ diffId: string; size: number }> {
  const what = `layer ${opts.expectedDiffId ?? basename(destDir)}`;
  const compression = compressionOfLayer(opts.mediaType);
  if (opts.expectedDiffId) parseDigest(opts.expectedDiffId, `expected diffID of ${destDir}`);
  const parent = dirname(destDir);
  mkdirSync(parent, { recursive: true });
  const ops = FsOps.start(); // first: if the helper cannot be built, no temp dir is left behind
  // A name no snapshot can have (SnapshotStore.cleanTemp removes leftovers of killed unpacks).
  const tmp = join(parent, `.${basename(destDir)}.unpack-${process.pid}-${randomBytes(4).toString('hex')}`);

  try {
    mkdirSync(tmp, 0o755);
    chmodSync(tmp, 0o755); // the root of an overlay layer: not subject to umask
    const counter = new DigestCounter();
    const reader = new TarReader();
    const applier = new LayerApplier(tmp, ops, what);
    // A tar or path error may just be the symptom of corrupt content: keep decompressing and hashing to
    // the end so that corruption is reported as such (gzip error, diffID mismatch) rather than as its symptom.
    let formatError: LayerFormatError | undefined;
    try {
      for await (const chunk of decompressLayer(input, compression, what)) {
        counter.update(chunk);
        if (formatError || reader.done) continue; // hash trailing padding, write nothing
        try {
          for (const ev of reader.feed(chunk)) {
            const p = applier.apply(ev);
            if (p) await p;
          }
        } catch (err) {
          formatError = asFormatError(err, what);
          if (!formatError) throw err;
          applier.close();
        }
      }
      if (!formatError) reader.end();
    } catch (err) {
      throw asFormatError(err, what) ?? err;
    } finally {
      applier.close();
      await applier.settled(); // nothing may still be made in tmp when it is removed
    }
    const diffId = counter.digest();
    if (opts.expectedDiffId && diffId !== opts.expectedDiffId) throw new DigestMismatchError(opts.expectedDiffId, diffId, `diffID of ${what}`);
    if (formatError) throw formatError;
    await applier.finish();
    try {
      renameSync(tmp, destDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(destDir))) throw err;
      rmSync(tmp, { recursive: true, force: true }); // a concurrent unpack won: same content
    }
    return { diffId, size: counter.bytes };
  } catch (err) {
    input.destroy();
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    await ops.close();
  }
}

function asFormatError(err: unknown, what: string): LayerFormatError | undefined {
  if (err instanceof LayerFormatError) return err;
  if (err instanceof TarFormatError) return new LayerFormatError(`${what}: ${err.message}`, { cause: err });
  // Names are checked per component (NAME_MAX); a whole path past PATH_MAX only shows up here.
  if ((err as NodeJS.ErrnoException).code === 'ENAMETOOLONG') return new LayerFormatError(`${what}: an entry's path is too long for the file system`, { cause: err });
  return undefined;
}
