// The final image config: the converter's config with rootfs filled from the built layers and history
// reconciled with them the way BuildKit's exporter does (normalizeLayersAndHistory): one non-empty
// history entry per layer, each layer-making entry dated when its layer was made, metadata entries
// dated like the layer before them. Because a cached layer keeps its date, a cached rebuild gives the
// same image digest.
import type { HistoryEntry, ImageConfig } from '../../base/oci/types.js';

export interface FinalLayer {
  diffId: string;
  created?: string;
}

export function finalImageConfig(base: ImageConfig, layers: FinalLayer[], sourceDateEpoch?: number): ImageConfig {
  const config: ImageConfig = { ...base, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } };
  let history: HistoryEntry[] = [...(base.history ?? [])];
  const nonEmpty = history.filter((h) => !h.empty_layer).length;
  if (nonEmpty > layers.length) {
    // More layer-making entries than layers: the extras (from the bottom) become empty.
    let seen = 0;
    history = history.map((h) => {
      if (h.empty_layer) return h;
      seen++;
      return seen > layers.length ? { ...h, empty_layer: true } : h;
    });
  } else if (nonEmpty < layers.length) {
    for (let i = nonEmpty; i < layers.length; i++) history.push({ created_by: '', comment: 'buildkit.exporter.image.v0' });
  }
  // Layer-making entries take their layer's time.
  let layerIndex = 0;
  history = history.map((h) => {
    if (h.empty_layer) return h;
    const layer = layers[layerIndex++];
    return h.created || !layer?.created ? h : { ...h, created: layer.created };
  });
  // The rest: the first new layer's time, then the time of the entry before them (as BuildKit).
  let fill = history.find((h, i) => h.created && history.slice(0, i).some((x) => !x.created))?.created ?? [...history].reverse().find((h) => h.created)?.created;
  let missing = false;
  history = history.map((h) => {
    if (h.created) {
      if (missing) fill = h.created;
      return h;
    }
    missing = true;
    return fill ? { ...h, created: fill } : h;
  });
  const epoch = sourceDateEpoch !== undefined ? new Date(sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z') : undefined;
  if (epoch) history = history.map((h) => (!h.created || h.created > epoch ? { ...h, created: epoch } : h));
  config.history = history;
  config.created = epoch ?? history.at(-1)?.created ?? new Date().toISOString();
  return config;
}
