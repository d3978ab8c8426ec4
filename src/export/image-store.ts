// Records a built image in the local image store, so `kiln images` lists it and `kiln run NAME` finds it.
// Each name points at the root (index or manifest) with the per-platform manifest and config digests;
// the platform strings are normalised the way the CLI looks them up (linux/amd64, linux/arm64/v8).
import type { ImageRecord, ImageStore, StoredPlatformImage } from '../../cache/image-store.js';
import { formatPlatform, normalizePlatform } from '../../base/oci/platform.js';
import type { ContentStore } from '../../cache/content-store.js';
import { writeImageManifests, type WrittenManifests } from './manifests.js';
import type { ExportRequest } from './types.js';

/** The per-platform entries of a written export: sizes count config plus compressed layers. */
export function platformEntries(req: ExportRequest, written: WrittenManifests): StoredPlatformImage[] {
  return req.images.map((img, i) => ({
    platform: formatPlatform(normalizePlatform(img.platform)),
    manifestDigest: written.manifests[i]!.digest,
    configDigest: written.configs[i]!.digest,
    size: written.configs[i]!.size + img.layers.reduce((n, l) => n + l.size, 0),
  }));
}

/** Names every `req.names` entry after the written root. Returns the records as stored. */
export async function recordImage(images: ImageStore, req: ExportRequest, written: WrittenManifests, now = new Date()): Promise<ImageRecord[]> {
  const platforms = platformEntries(req, written);
  const out: ImageRecord[] = [];
  for (const name of req.names) {
    out.push(
      await images.put({
        name,
        digest: written.root.digest,
        mediaType: written.root.mediaType,
        updated: now.toISOString(),
        platforms: platforms.map((p) => ({ ...p })),
      }),
    );
  }
  return out;
}

/** type=image (kiln's default): manifests into the state's content store and the names into its image store. */
export async function exportToImageStore(req: ExportRequest, state: { content: ContentStore; images: ImageStore }): Promise<{ written: WrittenManifests; records: ImageRecord[] }> {
  const written = writeImageManifests(req, state.content);
  return { written, records: await recordImage(state.images, req, written) };
}
