// Image signatures in cosign's registry format (sigstore's "Signature Specification"): for an image with
// manifest digest sha256:HEX in REPO, a manifest tagged `sha256-HEX.sig` in the same repository whose
// layers are simple-signing payloads (application/vnd.dev.cosign.simplesigning.v1+json) naming the
// digest, each annotated with dev.cosignproject.cosign/signature = base64 of an ECDSA P-256 / SHA-256
// (ASN.1 DER) signature over the payload bytes. Signing again appends a layer; verifying checks every
// layer's signature with the public key and that its payload names the digest the reference resolves to.
import { createSign, createVerify, type KeyObject } from 'node:crypto';
import { sha256Digest } from '../../base/oci/digest.js';
import type { RegistryClient } from '../../base/oci/registry/client.js';
import { NotFoundError, RegistryError } from '../../base/oci/registry/errors.js';
import type { ImageReference } from '../../base/oci/reference.js';
import { parseManifest } from '../../base/oci/manifest.js';
import type { Descriptor, ImageManifest } from '../../base/oci/types.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../../base/oci/mediatypes.js';
import { serializeConfig, serializeManifest } from '../../base/oci/canonical-json.js';
import type { ImageConfig } from '../../base/oci/types.js';
import { UserError } from '../../base/errors.js';

export const SIMPLESIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

export class VerificationError extends UserError {}

export interface SimpleSigningPayload {
  critical: { identity: { 'docker-reference': string }; image: { 'docker-manifest-digest': string }; type: string };
  optional: Record<string, string> | null;
}

/** `sha256-HEX.sig`: the tag cosign stores an image's signatures under. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** The repository as cosign (go-containerregistry) names it: Docker Hub is index.docker.io. */
function dockerReference(ref: ImageReference): string {
  return `${ref.domain === 'docker.io' ? 'index.docker.io' : ref.domain}/${ref.path}`;
}

export function simpleSigningPayload(ref: ImageReference, digest: string, annotations?: Record<string, string>): Buffer {
  const payload: SimpleSigningPayload = {
    critical: { identity: { 'docker-reference': dockerReference(ref) }, image: { 'docker-manifest-digest': digest }, type: COSIGN_SIGNATURE_TYPE },
    optional: annotations && Object.keys(annotations).length ? annotations : null,
  };
  return Buffer.from(JSON.stringify(payload));
}

export function signPayload(payload: Buffer, key: KeyObject): string {
  return createSign('sha256').update(payload).sign(key).toString('base64');
}

export function verifyPayload(payload: Buffer, signature: string, key: KeyObject): boolean {
  try {
    return createVerify('sha256').update(payload).verify(key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** The digest `ref` names: its own digest, or what its tag points at now. */
export async function resolveDigest(client: RegistryClient, ref: ImageReference): Promise<string> {
  if (ref.digest) return ref.digest;
  return (await client.getManifest(ref)).digest;
}

async function existingSignatures(client: RegistryClient, ref: ImageReference, digest: string): Promise<ImageManifest | undefined> {
  try {
    const m = await client.getManifest(ref.withTag(signatureTag(digest)));
    const parsed = parseManifest(m.bytes, { ref: `${ref.name}:${signatureTag(digest)}`, contentType: m.mediaType });
    return parsed.kind === 'manifest' ? parsed.manifest : undefined;
  } catch (err) {
    if (err instanceof NotFoundError || (err instanceof RegistryError && err.status === 404)) return undefined;
    throw err;
  }
}

export interface SignResult {
  digest: string;
  signatureRef: string;
  /** false when an identical signature was there already. */
  added: boolean;
}

/** Signs the image `ref` names (by digest) and pushes the signature to `REPO:sha256-HEX.sig`. */
export async function signImage(client: RegistryClient, ref: ImageReference, key: KeyObject, opts: { annotations?: Record<string, string>; digest?: string } = {}): Promise<SignResult> {
  const digest = opts.digest ?? (await resolveDigest(client, ref));
  const payload = simpleSigningPayload(ref, digest, opts.annotations);
  const signature = signPayload(payload, key);
  const sigRef = ref.withTag(signatureTag(digest));
  const existing = await existingSignatures(client, ref, digest);
  const payloadDigest = sha256Digest(payload);
  const layers: Descriptor[] = [...(existing?.layers ?? [])];
  // ECDSA signatures are randomised: the same payload signed by the same key again is still one entry.
  const same = await Promise.all(
    layers.filter((l) => l.digest === payloadDigest && l.annotations?.[SIGNATURE_ANNOTATION]).map((l) => verifyPayload(payload, l.annotations![SIGNATURE_ANNOTATION]!, key)),
  );
  if (same.some(Boolean)) return { digest, signatureRef: sigRef.toString(), added: false };
  const layer: Descriptor = { mediaType: SIMPLESIGNING_MEDIA_TYPE, digest: payloadDigest, size: payload.length, annotations: { [SIGNATURE_ANNOTATION]: signature } };
  layers.push(layer);
  await client.uploadBlob(ref, layer, { bytes: payload });
  // The config is only there for registries that need one (cosign writes the same shape).
  const config = serializeConfig({
    architecture: '',
    created: '0001-01-01T00:00:00Z',
    history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })),
    os: '',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    config: {},
  } as unknown as ImageConfig);
  const configDesc: Descriptor = { mediaType: OCI_CONFIG, digest: sha256Digest(config), size: config.length };
  await client.uploadBlob(ref, configDesc, { bytes: config });
  const manifest = serializeManifest({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers });
  await client.putManifest(sigRef, signatureTag(digest), manifest, OCI_MANIFEST);
  return { digest, signatureRef: sigRef.toString(), added: true };
}

export interface VerifiedSignature {
  payload: SimpleSigningPayload;
  signature: string;
}

/** Checks the signatures of the image `ref` names now; throws VerificationError when none verifies. */
export async function verifyImage(client: RegistryClient, ref: ImageReference, key: KeyObject): Promise<{ digest: string; verified: VerifiedSignature[] }> {
  const digest = await resolveDigest(client, ref);
  const sigs = await existingSignatures(client, ref, digest);
  if (!sigs || sigs.layers.length === 0) throw new VerificationError(`${ref.toString()}: no signatures found for ${digest} (no ${ref.name}:${signatureTag(digest)})`);
  const verified: VerifiedSignature[] = [];
  let badSignature = 0;
  let wrongDigest = 0;
  for (const l of sigs.layers) {
    const sig = l.annotations?.[SIGNATURE_ANNOTATION];
    if (l.mediaType !== SIMPLESIGNING_MEDIA_TYPE || !sig) continue;
    const payload = await client.getBlob(ref, l.digest);
    if (!verifyPayload(payload, sig, key)) {
      badSignature++;
      continue;
    }
    let doc: SimpleSigningPayload;
    try {
      doc = JSON.parse(payload.toString('utf8'));
    } catch {
      badSignature++;
      continue;
    }
    if (doc?.critical?.image?.['docker-manifest-digest'] !== digest || doc.critical.type !== COSIGN_SIGNATURE_TYPE) {
      wrongDigest++;
      continue;
    }
    verified.push({ payload: doc, signature: sig });
  }
  if (!verified.length) {
    const why = [badSignature && `${badSignature} signed by another key or corrupt`, wrongDigest && `${wrongDigest} for another image`].filter(Boolean).join(', ');
    throw new VerificationError(`${ref.toString()}: no matching signatures for ${digest}${why ? ` (${why})` : ''}`);
  }
  return { digest, verified };
}
