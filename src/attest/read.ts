// Reads an image's attestations back from a registry (kiln imagetools inspect --format '{{json .SBOM}}'):
// the index's attestation manifests, matched to their images by vnd.docker.reference.digest, and the
// in-toto statements in their layers, by predicate type.
import type { RegistryClient } from '../../base/oci/registry/client.js';
import type { ImageReference } from '../../base/oci/reference.js';
import { parseManifest } from '../../base/oci/manifest.js';
import { formatPlatform } from '../../base/oci/platform.js';
import type { Descriptor } from '../../base/oci/types.js';
import { UserError } from '../../base/errors.js';
import {
  ATTESTATION_MANIFEST_TYPE,
  IN_TOTO_MEDIA_TYPE,
  REFERENCE_DIGEST_ANNOTATION,
  REFERENCE_TYPE_ANNOTATION,
  SLSA_PROVENANCE_PREDICATE_TYPE,
  SPDX_PREDICATE_TYPE,
  type InTotoStatement,
} from '../../base/oci/in-toto.js';

export interface PlatformAttestations {
  platform: string;
  manifest: Descriptor;
  statements: InTotoStatement[];
}

/** Attestations of every image in the index `rootBytes` (the manifest list or index `ref` names). */
export async function readAttestations(client: RegistryClient, ref: ImageReference, rootBytes: Buffer, contentType?: string): Promise<PlatformAttestations[]> {
  const parsed = parseManifest(rootBytes, { ref: ref.toString(), contentType });
  if (parsed.kind !== 'index') return [];
  const images = parsed.index.manifests.filter((d) => d.annotations?.[REFERENCE_TYPE_ANNOTATION] !== ATTESTATION_MANIFEST_TYPE);
  const out: PlatformAttestations[] = [];
  for (const img of images) {
    const att = parsed.index.manifests.find((d) => d.annotations?.[REFERENCE_TYPE_ANNOTATION] === ATTESTATION_MANIFEST_TYPE && d.annotations?.[REFERENCE_DIGEST_ANNOTATION] === img.digest);
    const statements: InTotoStatement[] = [];
    if (att) {
      const m = await client.getManifest(ref.withDigest(att.digest));
      const am = parseManifest(m.bytes, { ref: `${ref.name}@${att.digest}`, contentType: m.mediaType });
      if (am.kind !== 'manifest') throw new UserError(`${ref.name}@${att.digest}: attestation manifest is an index`);
      for (const l of am.manifest.layers) {
        if (l.mediaType !== IN_TOTO_MEDIA_TYPE) continue;
        statements.push(JSON.parse((await client.getBlob(ref, l.digest)).toString('utf8')) as InTotoStatement);
      }
    }
    out.push({ platform: img.platform ? formatPlatform(img.platform) : 'unknown', manifest: img, statements });
  }
  return out;
}

/** buildx's shapes: {"SPDX": doc} / {"SLSA": predicate} for one platform, a map by platform for several. */
export function attestationView(all: PlatformAttestations[], kind: 'SBOM' | 'Provenance'): unknown {
  const type = kind === 'SBOM' ? SPDX_PREDICATE_TYPE : SLSA_PROVENANCE_PREDICATE_TYPE;
  const key = kind === 'SBOM' ? 'SPDX' : 'SLSA';
  const per = all.map((a) => {
    const s = a.statements.find((st) => st.predicateType === type);
    return [a.platform, s ? { [key]: s.predicate } : undefined] as const;
  });
  const present = per.filter(([, v]) => v !== undefined);
  if (all.length === 1) return per[0]![1] ?? null;
  return present.length ? Object.fromEntries(present) : null;
}

/**
 * The subset of Go templates `--format` takes: text with `{{json .Field}}` / `{{.Field}}` where Field is
 * SBOM, Provenance, Name or Manifest.
 */
export function renderFormat(format: string, fields: Record<string, () => Promise<unknown>>): Promise<string> {
  const parts: (string | Promise<string>)[] = [];
  let last = 0;
  const re = /\{\{\s*(json\s+)?\.([A-Za-z]*)\s*\}\}/g;
  for (let m = re.exec(format); m; m = re.exec(format)) {
    parts.push(format.slice(last, m.index));
    const name = m[2]!;
    const get = name === '' ? fields[''] : fields[name];
    if (!get) throw new UserError(`invalid --format: unknown field .${name} (expected .SBOM, .Provenance, .Name or .Manifest)`);
    const json = !!m[1];
    parts.push(get().then((v) => (json || typeof v !== 'string' ? JSON.stringify(v, null, json ? 2 : 0) : v)));
    last = m.index + m[0].length;
  }
  parts.push(format.slice(last));
  if (/\{\{/.test(format.replace(re, ''))) throw new UserError(`invalid --format "${format}": only {{json .Field}} and {{.Field}} are supported`);
  return Promise.all(parts).then((p) => p.join(''));
}
