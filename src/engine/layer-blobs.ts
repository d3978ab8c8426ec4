// Turns a built layer dir into a compressed blob in the content store, once: the result is remembered in
// the db by layer id, compression and SOURCE_DATE_EPOCH, so rebuilds and re-exports reuse it. Pulled
// layers already have their blob. The layer's snapshot is also made findable by its diffID, which is how
// `kiln run` finds an image's layers.
import type { State } from '../../cache/state.js';
import { writeLayerTarGzip } from '../../cache/layers/diff.js';
import type { Layer, LayerBlob } from '../../solver/refs.js';
import { OCI_LAYER_GZIP } from '../oci/mediatypes.js';

export interface ExportedLayer {
  diffId: string;
  blob: LayerBlob;
}

interface StoredLayerBlob {
  diffId: string;
  digest: string;
  size: number;
  mediaType: string;
}

export async function layerBlob(state: State, layer: Layer, opts: { sourceDateEpoch?: number } = {}): Promise<ExportedLayer> {
  if (layer.blob && layer.diffId) return { diffId: layer.diffId, blob: layer.blob };
  if (!layer.id) throw new Error(`layer ${layer.dir} has neither a blob nor an id`);
  const key = `layerblob/${layer.id}/gzip/${opts.sourceDateEpoch ?? ''}`;
  const known = (await state.db.get(key)) as StoredLayerBlob | undefined;
  if (known && state.content.has(known.digest)) {
    return { diffId: known.diffId, blob: { digest: known.digest, size: known.size, mediaType: known.mediaType } };
  }
  const written = await state.content.ingestComputed((tmp) => writeLayerTarGzip(layer.dir, tmp, { sourceDateEpoch: opts.sourceDateEpoch }));
  const stored: StoredLayerBlob = { diffId: written.diffId, digest: written.digest, size: written.compressedSize, mediaType: OCI_LAYER_GZIP };
  await state.db.put(key, stored);
  state.snapshots.linkDiffId(written.diffId, layer.dir);
  return { diffId: stored.diffId, blob: { digest: stored.digest, size: stored.size, mediaType: stored.mediaType } };
}
