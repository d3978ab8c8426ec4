// Image references, parsed as docker/distribution's `reference` package does (ParseNormalizedNamed +
// TagNameOnly): `busybox` is docker.io/library/busybox:latest, a first path component is a registry only
// if it has a '.' or ':' or is `localhost` (or has uppercase letters), and repository paths are lowercase.
import { UserError } from '../errors.js';
import { parseDigest } from './digest.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const NAME_TOTAL_LENGTH_MAX = 255;

// The grammar of distribution/reference's regexp.go.
const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagPat = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;
const REFERENCE_RE = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const DOMAIN_RE = new RegExp(`^${domainAndPort}$`);
const TAG_RE = new RegExp(`^${tagPat}$`);
const ANCHORED_HEX64_RE = /^[a-f0-9]{64}$/;

export class InvalidReferenceError extends UserError {}

export class ImageReference {
  /** Registry as written in the reference, normalised (`docker.io` for Docker Hub), e.g. `127.0.0.1:5000`. */
  readonly domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;

  constructor(domain: string, path: string, tag?: string, digest?: string) {
    this.domain = domain;
    this.path = path;
    this.tag = tag;
    this.digest = digest;
  }

  /** domain/path, e.g. `docker.io/library/busybox`. */
  get name(): string {
    return `${this.domain}/${this.path}`;
  }

  /** What to ask the registry's manifests endpoint for: the digest when pinned, else the tag. */
  get manifestReference(): string {
    return this.digest ?? this.tag ?? DEFAULT_TAG;
  }

  /** The fully-qualified form: `docker.io/library/busybox:latest`, `host:5000/a/b:t@sha256:…`. */
  toString(): string {
    return this.name + (this.tag !== undefined ? `:${this.tag}` : '') + (this.digest !== undefined ? `@${this.digest}` : '');
  }

  /** The short name a user of docker would type: `busybox`, `user/app`, `ghcr.io/x/y`. */
  familiarName(): string {
    if (this.domain !== DEFAULT_DOMAIN) return this.name;
    if (this.path.startsWith(OFFICIAL_REPO_PREFIX) && !this.path.slice(OFFICIAL_REPO_PREFIX.length).includes('/')) {
      return this.path.slice(OFFICIAL_REPO_PREFIX.length);
    }
    return this.path;
  }

  /** familiarName plus tag and digest: `busybox:latest`. */
  familiarString(): string {
    return this.familiarName() + (this.tag !== undefined ? `:${this.tag}` : '') + (this.digest !== undefined ? `@${this.digest}` : '');
  }

  withTag(tag: string): ImageReference {
    if (!TAG_RE.test(tag)) throw new InvalidReferenceError(`invalid tag ${JSON.stringify(tag)} for ${this.name}`);
    return new ImageReference(this.domain, this.path, tag, undefined);
  }

  withDigest(digest: string): ImageReference {
    parseDigest(digest, this.name);
    return new ImageReference(this.domain, this.path, this.tag, digest);
  }

  /** Same repository, pinned to `digest` only (the tag dropped), as a pull by digest. */
  pinned(digest: string): ImageReference {
    parseDigest(digest, this.name);
    return new ImageReference(this.domain, this.path, undefined, digest);
  }
}

/** Splits a name into registry and remainder as distribution's splitDockerDomain does. */
function splitDockerDomain(name: string): [string, string] {
  const i = name.indexOf('/');
  let domain: string;
  let remainder: string;
  if (i === -1 || (!/[.:]/.test(name.slice(0, i)) && name.slice(0, i) !== 'localhost' && name.slice(0, i).toLowerCase() === name.slice(0, i))) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = name.slice(0, i);
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return [domain, remainder];
}

export interface ParseReferenceOptions {
  /** Add the `latest` tag when neither tag nor digest is given (default true, like docker pull). */
  defaultTag?: boolean;
}

/**
 * Parses a user-typed image reference into its normalised form. Throws InvalidReferenceError with
 * distribution's wording (`invalid reference format: repository name (X) must be lowercase`, …).
 */
export function parseReference(s: string, opts: ParseReferenceOptions = {}): ImageReference {
  const bad = (why: string) => new InvalidReferenceError(`invalid reference format${why}: ${JSON.stringify(s)}`);
  if (s === '') throw new InvalidReferenceError('invalid reference format: repository name must have at least one component');
  if (ANCHORED_HEX64_RE.test(s)) {
    throw new InvalidReferenceError(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const [domain, remainder] = splitDockerDomain(s);
  const tagSep = remainder.indexOf(':');
  const remote = tagSep > -1 ? remainder.slice(0, tagSep) : remainder;
  const atSep = remote.indexOf('@');
  const remoteName = atSep > -1 ? remote.slice(0, atSep) : remote;
  if (remoteName.toLowerCase() !== remoteName) {
    throw new InvalidReferenceError(`invalid reference format: repository name (${remoteName}) must be lowercase`);
  }
  const full = `${domain}/${remainder}`;
  const m = REFERENCE_RE.exec(full);
  if (!m) {
    if (REFERENCE_RE.test(full.toLowerCase())) throw bad(': repository name must be lowercase');
    throw bad('');
  }
  const name = m[1]!;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw new InvalidReferenceError(`invalid reference format: repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters: ${JSON.stringify(s)}`);
  }
  const tag = m[2];
  const digest = m[3];
  if (digest !== undefined) parseDigest(digest, s);
  // The domain split must agree with the regexp's idea of the name (it always does after normalisation).
  const path = name.slice(domain.length + 1);
  if (!DOMAIN_RE.test(domain)) throw bad('');
  const useDefaultTag = (opts.defaultTag ?? true) && tag === undefined && digest === undefined;
  return new ImageReference(domain, path, useDefaultTag ? DEFAULT_TAG : tag, digest);
}

/** True when `s` parses as an image reference. */
export function isValidReference(s: string): boolean {
  try {
    parseReference(s);
    return true;
  } catch {
    return false;
  }
}
