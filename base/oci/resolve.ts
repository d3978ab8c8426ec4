// Walks from a manifest or index down to one platform's manifest and config. Shared by the registry client
// and the OCI layout reader, which differ only in where verified bytes come from.
import { UserError } from '../errors.js';
import { verifyBuffer } from './digest.js';
import { configPlatform, parseImageConfig, parseManifest, type ParsedManifest } from './manifest.js';
import { DOCKER_PLUGIN_CONFIG, isConfigType, isIndexType } from './mediatypes.js';
import { selectManifest } from './platform.js';
import type { Descriptor, Platform, ResolvedImage } from './types.js';

export class NotAnImageError extends UserError {}

/** Fetches the content a descriptor names; the resolver verifies digest and size. */
export type DescriptorFetcher = (desc: Descriptor) => Promise<Buffer>;

export interface RootDocument {
  bytes: Buffer;
  digest: string;
  parsed: ParsedManifest;
}

// Indexes may nest (an OCI layout's index.json → image index → manifests); more than this is a loop.
const MAX_INDEX_DEPTH = 8;

/**
 * Resolves `root` to the manifest and config for `platform`. `name` (the reference or layout path) is
 * used in error messages. Every fetched document is checked against its descriptor's digest and size.
 */
export async function resolvePlatformImage(root: RootDocument, platform: Platform, fetch: DescriptorFetcher, name: string): Promise<ResolvedImage> {
  let current = root;
  let manifestDescriptor: Descriptor | undefined;
  const top = root.parsed.kind === 'index' ? root : undefined;
  for (let depth = 0; current.parsed.kind === 'index'; depth++) {
    if (depth >= MAX_INDEX_DEPTH) throw new NotAnImageError(`${name}: indexes nested more than ${MAX_INDEX_DEPTH} deep`);
    const desc = selectEntry(current.parsed.index.manifests, platform, name);
    const bytes = await fetch(desc);
    verifyBuffer(bytes, desc.digest, `${name} manifest ${desc.digest}`, desc.size);
    current = { bytes, digest: desc.digest, parsed: parseManifest(bytes, { ref: `${name}@${desc.digest}`, contentType: desc.mediaType }) };
    manifestDescriptor = desc;
  }
  const manifest = current.parsed.manifest;
  const configDesc = manifest.config;
  if (!isConfigType(configDesc.mediaType) && configDesc.mediaType !== DOCKER_PLUGIN_CONFIG) {
    throw new NotAnImageError(`${name}: not a container image (config media type ${configDesc.mediaType})`);
  }
  const configBytes = await fetch(configDesc);
  verifyBuffer(configBytes, configDesc.digest, `${name} config ${configDesc.digest}`, configDesc.size);
  const config = parseImageConfig(configBytes, { ref: name });
  const imagePlatform = configPlatform(config);
  return {
    ...(top ? { indexDigest: top.digest, indexBytes: top.bytes, indexMediaType: top.parsed.mediaType } : {}),
    manifestDescriptor: manifestDescriptor ?? {
      mediaType: current.parsed.mediaType,
      digest: current.digest,
      size: current.bytes.length,
      platform: imagePlatform,
    },
    manifestDigest: current.digest,
    manifestMediaType: current.parsed.mediaType,
    manifest,
    manifestBytes: current.bytes,
    configDigest: configDesc.digest,
    config,
    configBytes,
    platform: imagePlatform,
  };
}

/**
 * The entry of an index to follow: the best platform match, or, when the index holds only nested indexes
 * without platforms (an OCI layout's index.json pointing at an image index), the single nested index.
 */
function selectEntry(entries: Descriptor[], platform: Platform, name: string): Descriptor {
  const withPlatform = entries.filter((d) => d.platform);
  if (withPlatform.length === 0) {
    const nested = entries.filter((d) => isIndexType(d.mediaType));
    if (nested.length === 1) return nested[0]!;
    if (entries.length === 1) return entries[0]!;
  }
  return selectManifest({ schemaVersion: 2, manifests: entries }, platform, { ref: name });
}
