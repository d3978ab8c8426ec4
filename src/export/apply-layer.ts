// Applies an image's layer tars, in order, onto a plain directory with OCI whiteout semantics (the merged
// tree that type=local and type=tar export): `.wh.NAME` deletes NAME from the layers below, `.wh..wh..opq`
// in a directory hides everything the layers below put there. The tars go through kiln's one tar stack
// (cache/layers: decompress.ts, tar-reader.ts, apply.ts in its 'merge' form): names stay bytes, ids of any
// size, binary xattrs (security.capability) and nanosecond mtimes are kept, devices are made by the
// fsops helper. Paths never leave the root: `..` is refused and a symlink met on the way to an entry is
// replaced by a real directory rather than followed.
import { DigestCounter } from '../../base/oci/digest.js';
import { LayerApplier } from '../../cache/layers/apply.js';
import { decompressLayer, LayerFormatError, type ArchiveCompression } from '../../cache/layers/decompress.js';
import { FsOps } from '../../cache/layers/fsops.js';
import { TarFormatError } from '../../cache/layers/tar-header.js';
import { TarReader } from '../../cache/layers/tar-reader.js';
import { ExportError } from './types.js';

const isRoot = process.getuid?.() === 0;

export interface LayerInput {
  /** The blob's bytes as stored. */
  data: AsyncIterable<Buffer>;
  compression: ArchiveCompression;
  /** Names the layer in errors. */
  what: string;
  /** When given, the uncompressed tar must hash to it. */
  diffId?: string;
}

/** A merged tree being built in `root`: apply() each layer in order, then finish() (or close() on failure). */
export class MergedTree {
  private readonly ops = FsOps.start();
  private readonly applier: LayerApplier;

  constructor(readonly root: string) {
    // Owners and devices need root; without it the tree is the caller's own, and holds no device nodes.
    this.applier = new LayerApplier(root, this.ops, 'the exported tree', 'merge', { inside: 'the image root', error: (m) => new ExportError(m), chown: isRoot, unprivileged: !isRoot });
  }

  async apply(layer: LayerInput): Promise<void> {
    this.applier.nextLayer(layer.what);
    const reader = new TarReader();
    const counter = new DigestCounter();
    try {
      for await (const chunk of decompressLayer(layer.data, layer.compression, layer.what)) {
        counter.update(chunk);
        if (reader.done) continue; // hash trailing padding, write nothing
        for (const ev of reader.feed(chunk)) {
          const p = this.applier.apply(ev);
          if (p) await p;
        }
      }
      reader.end();
    } catch (err) {
      if (err instanceof TarFormatError) throw new ExportError(`${layer.what}: ${err.message}`, { cause: err });
      if (err instanceof LayerFormatError) throw new ExportError(err.message, { cause: err });
      throw err;
    } finally {
      this.applier.close();
    }
    const actual = counter.digest();
    if (layer.diffId && actual !== layer.diffId) {
      throw new ExportError(`${layer.what}: uncompressed content is ${actual}, but the image config says diffID ${layer.diffId}`);
    }
  }

  /** Sets xattrs and times once every layer is in (children change a dir's mtime), then stops the helper. */
  async finish(): Promise<void> {
    try {
      await this.applier.finish();
    } finally {
      await this.ops.close();
    }
  }

  /** Stops the helper after a failure. */
  async close(): Promise<void> {
    this.applier.close();
    await this.ops.close();
  }
}

/** Runs `fill` on a merged tree in `dir`, then sets its xattrs and times (or stops the helper on failure). */
export async function intoTree(dir: string, fill: (tree: MergedTree) => Promise<void>): Promise<void> {
  const tree = new MergedTree(dir);
  try {
    await fill(tree);
  } catch (err) {
    await tree.close();
    throw err;
  }
  await tree.finish();
}
