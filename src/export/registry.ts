// type=image,push=true / type=registry / --push: the built image goes to its registry. Blobs first
// (in parallel; each skipped when the registry has it), then each platform's manifest, then the index,
// and the tags last, so a name never points at something incomplete.
import PQueue from 'p-queue';
import type { ContentStore } from '../../cache/content-store.js';
import { RegistryClient } from '../../base/oci/registry/client.js';
import { parseReference } from '../../base/oci/reference.js';
import type { Descriptor } from '../../base/oci/types.js';
import type { ExportRequest } from './types.js';
import type { WrittenManifests } from './manifests.js';

export interface PushEvent {
  name: string;
  digest: string;
  how: 'skipped' | 'mounted' | 'uploaded' | 'manifest' | 'tagged';
}

function mediaTypeOf(content: ContentStore, d: Descriptor): string {
  return d.mediaType ?? (content.readJSON<{ mediaType?: string }>(d.digest).mediaType as string);
}

export interface PushOptions {
  onEvent?: (e: PushEvent) => void;
  client?: RegistryClient;
  /** Brings a layer blob that is known only remotely (an imported cache) into the content store. */
  fetchBlob?: (digest: string) => Promise<void>;
}

export async function pushImage(req: ExportRequest, written: WrittenManifests, content: ContentStore, opts: PushOptions = {}): Promise<void> {
  const client = opts.client ?? new RegistryClient();
  try {
    for (const name of req.names) {
      const ref = parseReference(name);
      const queue = new PQueue({ concurrency: 4 });
      const blobs = new Map<string, { desc: Descriptor; from?: string }>();
      req.images.forEach((img, i) => {
        blobs.set(written.configs[i]!.digest, { desc: written.configs[i]! });
        for (const l of img.layers) blobs.set(l.digest, { desc: { mediaType: l.mediaType, digest: l.digest, size: l.size }, from: l.from });
      });
      for (const d of written.attestationBlobs ?? []) blobs.set(d.digest, { desc: d });
      await Promise.all(
        [...blobs.values()].map(({ desc: d, from }) =>
          queue.add(async () => {
            // A blob pulled from another repository of the same registry is mounted, not sent again.
            const sameRegistry = from?.startsWith(`${ref.domain}/`) ? from.slice(ref.domain.length + 1) : undefined;
            if (!content.has(d.digest) && opts.fetchBlob) {
              // Not here (a layer of an imported cache): downloaded only if the registry cannot mount it.
              if (await client.hasBlob(ref, d.digest)) return opts.onEvent?.({ name, digest: d.digest, how: 'skipped' });
              if (sameRegistry && sameRegistry !== ref.path && (await client.mountBlob(ref, d.digest, sameRegistry))) return opts.onEvent?.({ name, digest: d.digest, how: 'mounted' });
              await opts.fetchBlob(d.digest);
            }
            const r = await client.uploadBlob(ref, d, { path: content.path(d.digest) }, { mountFrom: sameRegistry });
            opts.onEvent?.({ name, digest: d.digest, how: r.how });
          }),
        ),
      );
      for (const m of [...written.manifests, ...(written.attestationManifests ?? [])]) {
        await client.putManifest(ref, m.digest, content.readBytes(m.digest), mediaTypeOf(content, m));
        opts.onEvent?.({ name, digest: m.digest, how: 'manifest' });
      }
      const root = written.root;
      if (!written.manifests.some((m) => m.digest === root.digest)) {
        await client.putManifest(ref, root.digest, content.readBytes(root.digest), mediaTypeOf(content, root));
      }
      if (ref.tag) {
        await client.putManifest(ref, ref.tag, content.readBytes(root.digest), mediaTypeOf(content, root));
        opts.onEvent?.({ name, digest: root.digest, how: 'tagged' });
      }
    }
  } finally {
    if (!opts.client) await client.close();
  }
}
