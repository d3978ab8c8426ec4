// The final image config: the converter's config with rootfs filled from the built layers and history
// reconciled with them the way BuildKit's exporter does (normalizeLayersAndHistory): one non-empty
// history entry per layer.
import type { HistoryEntry, ImageConfig } from '../oci/types.js';

export function finalImageConfig(base: ImageConfig, diffIds: string[], sourceDateEpoch?: number): ImageConfig {
  const config: ImageConfig = { ...base, rootfs: { type: 'layers', diff_ids: diffIds } };
  let history: HistoryEntry[] = [...(base.history ?? [])];
  const nonEmpty = history.filter((h) => !h.empty_layer).length;
  if (nonEmpty > diffIds.length) {
    // More layer-making entries than layers: the extras (from the bottom) become empty.
    let seen = 0;
    history = history.map((h) => {
      if (h.empty_layer) return h;
      seen++;
      return seen > diffIds.length ? { ...h, empty_layer: true } : h;
    });
  } else if (nonEmpty < diffIds.length) {
    const created = history.at(-1)?.created ?? config.created;
    for (let i = nonEmpty; i < diffIds.length; i++) history.push({ created, created_by: '', comment: 'buildkit.exporter.image.v0' });
  }
  const epoch = sourceDateEpoch !== undefined ? new Date(sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z') : undefined;
  if (epoch) history = history.map((h) => (h.created && h.created > epoch ? { ...h, created: epoch } : h));
  config.history = history;
  if (epoch) config.created = epoch;
  else if (!config.created) config.created = new Date().toISOString();
  return config;
}
