// Image reference normalisation as BuildKit applies it to FROM (distribution/reference
// ParseNormalizedNamed + TagNameOnly): `busybox` → `docker.io/library/busybox:latest`.
import { DockerfileSyntaxError } from '../errors.js';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[a-fA-F0-9:]+\](?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

export interface ImageReference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

export function parseImageReference(ref: string): ImageReference {
  const invalid = (why = 'invalid reference format'): never => { throw new DockerfileSyntaxError(why); };
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) invalid();
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) invalid();
  }
  if (rest === '') invalid();
  let domain = 'docker.io';
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === 'index.docker.io') domain = 'docker.io';
  if (domain === 'docker.io' && !path.includes('/')) path = 'library/' + path;
  if (path !== path.toLowerCase()) invalid(`invalid reference format: repository name (${path}) must be lowercase`);
  if (!DOMAIN.test(domain) || !path.split('/').every((c) => COMPONENT.test(c))) invalid();
  return { domain, path, tag, digest };
}

export function formatImageReference(r: ImageReference): string {
  return `${r.domain}/${r.path}${r.tag ? ':' + r.tag : ''}${r.digest ? '@' + r.digest : ''}`;
}

/** Normalised name with `:latest` added when there is neither tag nor digest. */
export function normalizeImageRef(ref: string): string {
  const r = parseImageReference(ref);
  if (!r.tag && !r.digest) r.tag = 'latest';
  return formatImageReference(r);
}
