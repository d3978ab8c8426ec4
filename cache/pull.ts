// Pulls an image from a registry into the local state: manifest, config and layer blobs into the content
// store (verified), each layer unpacked once into its snapshot, and the name recorded in the image store.
// Layers download in parallel; a layer whose snapshot already exists is not downloaded at all.
import PQueue from 'p-queue';
import type { State } from './state.js';
import type { ImageRecord, StoredPlatformImage } from './image-store.js';
import type { RegistryClient } from '../base/oci/registry/client.js';
import { ImageReference } from '../base/oci/reference.js';
import type { ImageConfig, Platform } from '../base/oci/types.js';
import { formatPlatform } from '../base/oci/platform.js';
import { isIndexType } from '../base/oci/mediatypes.js';
import { parseManifest } from '../base/oci/manifest.js';

export type PullEvent =
  | { kind: 'resolved'; ref: string; digest: string; platform: string }
  | { kind: 'layer'; digest: string; status: 'exists' | 'downloading' | 'downloaded' | 'unpacked'; size: number }
  | { kind: 'done'; ref: string; digest: string; downloadedBytes: number };

export interface PullOptions {
  platform: Platform;
  client: RegistryClient;
  onEvent?: (ev: PullEvent) => void;
  concurrency?: number;
}

export interface PulledImage {
  record: ImageRecord;
  image: StoredPlatformImage;
  config: ImageConfig;
}

export async function pullImage(state: State, ref: ImageReference, opts: PullOptions): Promise<PulledImage> {
  const emit = opts.onEvent ?? (() => {});
  const resolved = await opts.client.resolveImage(ref, opts.platform);
  const platform = formatPlatform(opts.platform);
  emit({ kind: 'resolved', ref: ref.toString(), digest: resolved.manifestDigest, platform });

  const config = resolved.config;
  const layers = resolved.manifest.layers;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layers.length) {
    throw new Error(`${ref}: manifest has ${layers.length} layers but its config lists ${diffIds.length} diff_ids`);
  }

  let downloaded = 0;
  const queue = new PQueue({ concurrency: opts.concurrency ?? 4 });
  await Promise.all(
    layers.map((desc, i) =>
      queue.add(async () => {
        const diffId = diffIds[i]!;
        if (state.snapshots.has(diffId)) {
          emit({ kind: 'layer', digest: desc.digest, status: 'exists', size: desc.size });
          return;
        }
        if (!state.content.has(desc.digest)) {
          emit({ kind: 'layer', digest: desc.digest, status: 'downloading', size: desc.size });
          await state.content.ingest(desc.digest, (tmp) => opts.client.downloadBlob(ref, desc, tmp), { size: desc.size });
          downloaded += desc.size;
          emit({ kind: 'layer', digest: desc.digest, status: 'downloaded', size: desc.size });
        }
        await state.snapshots.ensure(diffId, () => state.content.openVerified(desc.digest), desc.mediaType);
        emit({ kind: 'layer', digest: desc.digest, status: 'unpacked', size: desc.size });
      }),
    ),
  );

  // Metadata blobs last: an image is recorded only once everything it names is present.
  state.content.putBytes(resolved.configBytes, resolved.configDigest);
  state.content.putBytes(resolved.manifestBytes, resolved.manifestDigest);
  if (resolved.indexBytes && resolved.indexDigest) state.content.putBytes(resolved.indexBytes, resolved.indexDigest);
  // A build pulls `name:tag@<platform manifest>`: recorded under the tag's index, each platform joins the
  // others, so the next build of any of them finds its platform here and asks the registry nothing.
  const tagIndex = resolved.indexDigest ? undefined : await indexOfTag(state, ref, opts.client);
  if (tagIndex?.bytes) state.content.putBytes(tagIndex.bytes, tagIndex.digest);

  const image: StoredPlatformImage = {
    platform,
    manifestDigest: resolved.manifestDigest,
    configDigest: resolved.configDigest,
    size: resolved.manifest.config.size + layers.reduce((n, l) => n + l.size, 0),
  };
  const record = await state.images.put({
    // A pinned `name:tag@digest` is recorded as `name:tag`: the tag is now resolved here, and later
    // builds reuse it without asking the registry (as BuildKit does) until --pull.
    name: ref.tag ? new ImageReference(ref.domain, ref.path, ref.tag).toString() : ref.toString(),
    digest: resolved.indexDigest ?? tagIndex?.digest ?? resolved.manifestDigest,
    mediaType: resolved.indexMediaType ?? tagIndex?.mediaType ?? resolved.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json',
    updated: new Date().toISOString(),
    platforms: [image],
  });
  emit({ kind: 'done', ref: ref.toString(), digest: record.digest, downloadedBytes: downloaded });
  return { record, image, config };
}

/**
 * For a pull of `name:tag@digest`: the index the tag names, when that index lists the pulled manifest (the
 * one recorded already, else the registry's answer for the tag; best effort). Undefined otherwise: the
 * pinned manifest is then recorded alone, as before.
 */
async function indexOfTag(state: State, ref: ImageReference, client: RegistryClient): Promise<{ digest: string; mediaType: string; bytes?: Buffer } | undefined> {
  if (!ref.digest || !ref.tag) return undefined;
  const tagRef = new ImageReference(ref.domain, ref.path, ref.tag);
  const lists = (bytes: Buffer) => {
    const parsed = parseManifest(bytes);
    return parsed.kind === 'index' && parsed.index.manifests.some((m) => m.digest === ref.digest) ? parsed : undefined;
  };
  const old = await state.images.get(tagRef.toString());
  if (old && isIndexType(old.mediaType) && state.content.has(old.digest)) {
    try {
      if (lists(state.content.readBytes(old.digest))) return { digest: old.digest, mediaType: old.mediaType };
    } catch {
      // unreadable: ask the registry below
    }
  }
  try {
    const root = await client.getManifest(tagRef);
    const parsed = lists(root.bytes);
    return parsed ? { digest: root.digest, mediaType: parsed.mediaType, bytes: root.bytes } : undefined;
  } catch {
    return undefined; // the tag is gone or unreachable: record the manifest alone
  }
}
