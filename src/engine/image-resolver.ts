// Resolves FROM images while the Dockerfile is converted (BuildKit's ResolveImageConfig): the ref pinned
// by digest plus its config. A name already in the local image store for that platform is reused without
// asking the registry (a tag resolved before is reused; BuildKit asks every time, buildkit#5340), so a
// build whose base images are local sends no request at all; `pull` asks the registry again. A pinned
// ref is reused only when the local image has that digest.
import type { State } from '../../cache/state.js';
import type { RegistryClient } from '../../base/oci/registry/client.js';
import { ImageReference, parseReference } from '../../base/oci/reference.js';
import { parseLayoutRef } from '../../base/oci/layout-ref.js';
import { resolveLayoutImage } from '../../base/oci/layout.js';
import { formatPlatform, normalizePlatform } from '../../base/oci/platform.js';
import type { ImageConfig, Platform } from '../../base/oci/types.js';
import type { ImageMetaResolver, ImageConfigJSON } from '../../frontends/dockerfile/convert/types.js';

export class ImageResolver implements ImageMetaResolver {
  private readonly memo = new Map<string, Promise<{ ref: string; digest: string; config: ImageConfigJSON }>>();

  constructor(
    private readonly state: State,
    private readonly registry: RegistryClient,
    private readonly opts: { pull?: boolean } = {},
  ) {}

  resolve(refText: string, platform: Platform) {
    const key = `${refText}\0${formatPlatform(normalizePlatform(platform))}`;
    let p = this.memo.get(key);
    if (!p) {
      p = this.resolveUncached(refText, platform);
      this.memo.set(key, p);
    }
    return p;
  }

  private async resolveUncached(refText: string, platform: Platform) {
    if (refText.startsWith('oci-layout://')) {
      const l = parseLayoutRef(refText);
      const r = await resolveLayoutImage(l.dir, l.tag, normalizePlatform(platform));
      return { ref: refText.replace(/^oci-layout:\/\//, ''), digest: r.manifestDigest, config: r.config as ImageConfigJSON };
    }
    const ref = parseReference(refText);
    const want = formatPlatform(normalizePlatform(platform));
    if (!this.opts.pull) {
      // A pull of `name:tag@digest` is recorded as `name:tag`: found there when the digest is the same.
      let record = await this.state.images.get(ref.toString());
      if (!record && ref.digest && ref.tag) record = await this.state.images.get(new ImageReference(ref.domain, ref.path, ref.tag).toString());
      const entry = record?.platforms.find((p) => p.platform === want && (!ref.digest || p.manifestDigest === ref.digest || record!.digest === ref.digest));
      if (record && entry && this.state.content.has(entry.configDigest)) {
        const config = this.state.content.readJSON<ImageConfig>(entry.configDigest) as ImageConfigJSON;
        const pinned = ref.digest ? ref : ref.withDigest(entry.manifestDigest);
        return { ref: pinned.toString(), digest: entry.manifestDigest, config };
      }
    }
    const resolved = await this.registry.resolveImage(ref, normalizePlatform(platform));
    const pinned = ref.digest ? ref : ref.withDigest(resolved.manifestDigest);
    return { ref: pinned.toString(), digest: resolved.manifestDigest, config: resolved.config as ImageConfigJSON };
  }
}
