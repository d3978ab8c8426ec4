// In-toto statements and the attestation-manifest layout BuildKit uses to attach them to an image index
// (docs.docker.com "Image attestation storage"): one manifest per platform image, platform unknown/unknown,
// pointing at its image by the vnd.docker.reference.* annotations, one in-toto layer per statement.

export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v0.1';
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';
export const ATTESTATION_MANIFEST_TYPE = 'attestation-manifest';
export const SPDX_PREDICATE_TYPE = 'https://spdx.dev/Document';
export const SLSA_PROVENANCE_PREDICATE_TYPE = 'https://slsa.dev/provenance/v0.2';

/** One attestation of a platform image, before its subject (the image manifest digest) is known. */
export interface Attestation {
  predicateType: string;
  predicate: unknown;
}

export interface InTotoSubject {
  name: string;
  digest: Record<string, string>;
}

export interface InTotoStatement {
  _type: string;
  predicateType: string;
  subject: InTotoSubject[];
  predicate: unknown;
}

/** BuildKit's subject names: a docker purl per image name (`_` when the image has no name). */
export function subjectNames(names: string[], platform: string): string[] {
  if (names.length === 0) return ['_'];
  return names.map((n) => {
    const at = n.lastIndexOf(':');
    const slash = n.lastIndexOf('/');
    const [repo, tag] = at > slash ? [n.slice(0, at), n.slice(at + 1)] : [n, 'latest'];
    return `pkg:docker/${repo}@${tag}?platform=${encodeURIComponent(platform)}`;
  });
}

export function inTotoStatement(att: Attestation, manifestDigest: string, names: string[], platform: string): InTotoStatement {
  const [algorithm, hex] = manifestDigest.split(':') as [string, string];
  return {
    _type: IN_TOTO_STATEMENT_TYPE,
    predicateType: att.predicateType,
    subject: subjectNames(names, platform).map((name) => ({ name, digest: { [algorithm]: hex } })),
    predicate: att.predicate,
  };
}
