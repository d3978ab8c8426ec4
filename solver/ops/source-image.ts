// docker-image:// sources. The key is the image's manifest digest for the vertex's platform (pinned refs
// need no network); executing pulls whatever layers are missing and returns the image's layer stack.
import { createHash } from 'node:crypto';
import type { SourceOp } from '../graph/ops.js';
import type { OpContext, OpImpl } from '../op.js';
import type { Ref, Layer } from '../refs.js';
import { ImageReference, parseReference } from '../../base/oci/reference.js';
import { pullImage } from '../../cache/pull.js';
import { formatPlatform, normalizePlatform } from '../../base/oci/platform.js';
import type { ImageManifest, ImageConfig, Platform } from '../../base/oci/types.js';

const PREFIX = 'docker-image://';

function platformOf(ctx: OpContext): Platform {
  return normalizePlatform(ctx.vertex.platform ?? ctx.env.hostPlatform);
}

/** The local image for the ref (pinned: the manifest with that digest), if every layer is unpacked here. */
async function localImage(ctx: OpContext, ref: ImageReference, platform: string) {
  const images = ctx.env.state.images;
  let record = await images.get(ref.toString());
  if (!record && ref.digest) record = await images.get(new ImageReference(ref.domain, ref.path, ref.tag ?? 'latest').toString());
  const entry = record?.platforms.find((p) => p.platform === platform && (!ref.digest || p.manifestDigest === ref.digest || record!.digest === ref.digest));
  if (!entry) return undefined;
  const { content, snapshots } = ctx.env.state;
  if (!content.has(entry.manifestDigest) || !content.has(entry.configDigest)) return undefined;
  const config = content.readJSON<ImageConfig>(entry.configDigest);
  const manifest = content.readJSON<ImageManifest>(entry.manifestDigest);
  if (!(config.rootfs?.diff_ids ?? []).every((d) => snapshots.has(d))) return undefined;
  return { manifest, config, manifestDigest: entry.manifestDigest };
}

export const sourceImageOp: OpImpl<SourceOp> = {
  async cacheMap(op, ctx) {
    const ref = parseReference(op.identifier.slice(PREFIX.length));
    // A pinned ref names its content; BuildKit keys image sources by the manifest digest they resolve to.
    const id = ref.digest ?? (await ctx.env.registry.resolveImage(ref, platformOf(ctx))).manifestDigest;
    return { digest: `sha256:${createHash('sha256').update(`docker-image\0${id}\0${formatPlatform(platformOf(ctx))}`).digest('hex')}`, deps: [] };
  },

  async exec(op, _inputs, ctx): Promise<Ref> {
    const ref = parseReference(op.identifier.slice(PREFIX.length));
    const platform = platformOf(ctx);
    const state = ctx.env.state;
    let image = await localImage(ctx, ref, formatPlatform(platform));
    if (!image) {
      const pulled = await pullImage(state, ref, {
        platform,
        client: ctx.env.registry,
        onEvent: (ev) => {
          if (ev.kind === 'layer' && ev.status === 'unpacked') ctx.progress.log('stderr', `unpacked ${ev.digest}\n`);
        },
      });
      image = {
        manifest: state.content.readJSON<ImageManifest>(pulled.image.manifestDigest),
        config: pulled.config,
        manifestDigest: pulled.image.manifestDigest,
      };
    }
    const diffIds = image.config.rootfs?.diff_ids ?? [];
    const layers: Layer[] = image.manifest.layers.map((desc, i) => ({
      dir: state.snapshots.dir(diffIds[i]!),
      diffId: diffIds[i]!,
      blob: { digest: desc.digest, size: desc.size, mediaType: desc.mediaType, from: ref.name },
    }));
    return { kind: 'layers', layers };
  },
};
