// oci-layout:// sources (--build-context NAME=oci-layout://DIR[:TAG]): the image is read from an OCI
// layout on this machine; its layers are copied into the content store and unpacked once, like pulls.
import { createHash } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import type { SourceOp } from '../graph/ops.js';
import type { OpImpl, OpContext } from '../op.js';
import type { Layer } from '../refs.js';
import { parseLayoutRef } from '../../base/oci/layout-ref.js';
import { layoutBlobPath, readLayoutBlob, resolveLayoutImage } from '../../base/oci/layout.js';
import { parseImageConfig, parseManifest } from '../../base/oci/manifest.js';
import { normalizePlatform } from '../../base/oci/platform.js';
import type { ImageManifest } from '../../base/oci/types.js';
import { SolveError } from '../op.js';

async function manifestOf(op: SourceOp, ctx: OpContext): Promise<{ manifest: ImageManifest; digest: string; diffIds: string[]; dir: string }> {
  const ref = parseLayoutRef(op.identifier);
  if (ref.digest) {
    const parsed = parseManifest(await readLayoutBlob(ref.dir, ref.digest), { ref: op.identifier });
    if (parsed.kind !== 'manifest') throw new SolveError(`${op.identifier}: not an image manifest`);
    const config = parseImageConfig(await readLayoutBlob(ref.dir, parsed.manifest.config), { ref: op.identifier });
    return { manifest: parsed.manifest, digest: ref.digest, diffIds: config.rootfs?.diff_ids ?? [], dir: ref.dir };
  }
  const r = await resolveLayoutImage(ref.dir, ref.tag, normalizePlatform(ctx.vertex.platform ?? ctx.env.hostPlatform));
  return { manifest: r.manifest, digest: r.manifestDigest, diffIds: r.config.rootfs?.diff_ids ?? [], dir: ref.dir };
}

export const sourceOciLayoutOp: OpImpl<SourceOp> = {
  async cacheMap(op, ctx) {
    const { digest } = await manifestOf(op, ctx);
    return { digest: `sha256:${createHash('sha256').update(`oci-layout\0${digest}`).digest('hex')}`, deps: [] };
  },
  async exec(op, _inputs, ctx) {
    const { manifest, diffIds, dir } = await manifestOf(op, ctx);
    const { content, snapshots } = ctx.env.state;
    const layers: Layer[] = [];
    for (const [i, desc] of manifest.layers.entries()) {
      const diffId = diffIds[i]!;
      if (!snapshots.has(diffId)) {
        await content.ingest(desc.digest, async (tmp) => copyFileSync(layoutBlobPath(dir, desc.digest), tmp), { verify: true, size: desc.size });
        await snapshots.ensure(diffId, () => content.openVerified(desc.digest), desc.mediaType);
      }
      layers.push({ dir: snapshots.dir(diffId), diffId, blob: { digest: desc.digest, size: desc.size, mediaType: desc.mediaType } });
    }
    return { kind: 'layers', layers };
  },
};
