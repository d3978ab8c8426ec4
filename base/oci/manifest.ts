// Parsing and validating manifests, indexes and image configs from their bytes. The document decides what
// it is: a registry's Content-Type is only a hint used when the body carries no mediaType of its own.
import { UserError } from '../errors.js';
import { parseDigest } from './digest.js';
import {
  OCI_INDEX,
  OCI_MANIFEST,
  isIndexType,
  isManifestType,
  isSchema1Type,
} from './mediatypes.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from './types.js';

/** A manifest or index that cannot be used: not JSON, wrong shape, schema 1, unknown type. */
export class ManifestError extends UserError {}
/** An image config that cannot be used. */
export class ImageConfigError extends UserError {}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bareContentType(ct: string | undefined): string | undefined {
  return ct?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/** Checks one descriptor; `fail` turns a reason into the caller's error. */
function checkDescriptor(v: unknown, where: string, fail: (why: string) => Error): Descriptor {
  if (!isObject(v)) throw fail(`${where} is not an object`);
  if (typeof v.mediaType !== 'string' || v.mediaType === '') throw fail(`${where} has no mediaType`);
  if (typeof v.digest !== 'string') throw fail(`${where} has no digest`);
  try {
    parseDigest(v.digest);
  } catch (err) {
    throw fail(`${where}: ${(err as Error).message}`);
  }
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw fail(`${where} has an invalid size`);
  if (v.urls !== undefined && (!Array.isArray(v.urls) || !v.urls.every((u) => typeof u === 'string'))) throw fail(`${where} has invalid urls`);
  if (v.annotations !== undefined && !isStringMap(v.annotations)) throw fail(`${where} has invalid annotations`);
  if (v.platform !== undefined) checkPlatform(v.platform, `${where}.platform`, fail);
  return v as unknown as Descriptor;
}

function checkPlatform(v: unknown, where: string, fail: (why: string) => Error): Platform {
  if (!isObject(v) || typeof v.os !== 'string' || typeof v.architecture !== 'string') {
    throw fail(`${where} needs string os and architecture`);
  }
  if (v.variant !== undefined && typeof v.variant !== 'string') throw fail(`${where}.variant is not a string`);
  return v as unknown as Platform;
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** JSON bytes that must hold one object; `fail` makes the error naming the document. */
function parseJSONObject(bytes: Buffer | string, fail: (why: string) => Error): Json {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (err) {
    throw fail(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(doc)) throw fail('not a JSON object');
  return doc;
}

/**
 * Parses manifest or index bytes. `ref` names the image in error messages; `contentType` is the registry's
 * Content-Type, used only when the document has no mediaType. Schema 1 manifests are rejected.
 */
export function parseManifest(bytes: Buffer | string, opts: { ref?: string; contentType?: string } = {}): ParsedManifest {
  const subject = opts.ref ? `manifest for ${opts.ref}` : 'manifest';
  const fail = (why: string) => new ManifestError(`malformed ${subject}: ${why}`);
  const doc = parseJSONObject(bytes, fail);
  const ct = bareContentType(opts.contentType);
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (doc.schemaVersion === 1 || isSchema1Type(declared) || (declared === undefined && isSchema1Type(ct))) {
    throw new ManifestError(
      `${opts.ref ?? 'image'}: Docker schema 1 manifests are not supported (deprecated since 2017); re-push the image with a current client`,
    );
  }
  if (doc.schemaVersion !== 2) throw fail(`unsupported schemaVersion ${JSON.stringify(doc.schemaVersion)} (expected 2)`);
  if (doc.mediaType !== undefined && typeof doc.mediaType !== 'string') throw fail('mediaType is not a string');

  let mediaType: string;
  if (declared !== undefined) mediaType = declared;
  else if (ct && (isIndexType(ct) || isManifestType(ct))) mediaType = ct;
  else if ('manifests' in doc) mediaType = OCI_INDEX;
  else if ('config' in doc || 'layers' in doc) mediaType = OCI_MANIFEST;
  else throw fail('neither an image manifest nor an index (no config, layers or manifests)');
  if (!isIndexType(mediaType) && !isManifestType(mediaType)) throw fail(`unsupported media type ${mediaType}`);
  if (doc.annotations !== undefined && !isStringMap(doc.annotations)) throw fail('annotations must map strings to strings');
  if (doc.subject !== undefined) checkDescriptor(doc.subject, 'subject', fail);

  if (isIndexType(mediaType)) {
    if ('config' in doc || 'layers' in doc) throw fail(`an index (${mediaType}) must not have config or layers`);
    if (!Array.isArray(doc.manifests)) throw fail('manifests is not an array');
    doc.manifests.forEach((d, i) => checkDescriptor(d, `manifests[${i}]`, fail));
    return { kind: 'index', mediaType, index: doc as unknown as ImageIndex };
  }
  if ('manifests' in doc) throw fail(`an image manifest (${mediaType}) must not have manifests`);
  checkDescriptor(doc.config, 'config', fail);
  if (!Array.isArray(doc.layers)) throw fail('layers is not an array');
  doc.layers.forEach((d, i) => checkDescriptor(d, `layers[${i}]`, fail));
  return { kind: 'manifest', mediaType, manifest: doc as unknown as ImageManifest };
}

/** Parses an image config (OCI or Docker), checking what kiln relies on: os, architecture, rootfs.diff_ids. */
export function parseImageConfig(bytes: Buffer | string, opts: { ref?: string } = {}): ImageConfig {
  const fail = (why: string) => new ImageConfigError(`malformed image config${opts.ref ? ` for ${opts.ref}` : ''}: ${why}`);
  const doc = parseJSONObject(bytes, fail);
  if (typeof doc.os !== 'string' || doc.os === '') throw fail('no os');
  if (typeof doc.architecture !== 'string' || doc.architecture === '') throw fail('no architecture');
  if (!isObject(doc.rootfs) || doc.rootfs.type !== 'layers' || !Array.isArray(doc.rootfs.diff_ids)) {
    throw fail('rootfs must be {"type":"layers","diff_ids":[…]}');
  }
  for (const [i, d] of doc.rootfs.diff_ids.entries()) {
    if (typeof d !== 'string') throw fail(`rootfs.diff_ids[${i}] is not a string`);
    try {
      parseDigest(d);
    } catch (err) {
      throw fail(`rootfs.diff_ids[${i}]: ${(err as Error).message}`);
    }
  }
  if (doc.config !== undefined && doc.config !== null && !isObject(doc.config)) throw fail('config is not an object');
  if (doc.history !== undefined && !Array.isArray(doc.history)) throw fail('history is not an array');
  return doc as ImageConfig;
}

/** The platform an image config declares. */
export function configPlatform(config: ImageConfig): Platform {
  const p: Platform = { os: config.os, architecture: config.architecture };
  if (config.variant) p.variant = config.variant;
  if (config['os.version']) p['os.version'] = config['os.version'];
  if (config['os.features']?.length) p['os.features'] = config['os.features'];
  return p;
}
