// Several writers, one cache (docs/cache-format.md, "Several writers"): each writer's cache manifest is its
// own content-addressed document, annotated with who wrote it and when; an OCI index under the cache's tag
// gathers the newest manifest of each writer. This module is the pure part: writer identity and options,
// the per-writer tag name, and the merge + compaction of index entries.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { UserError } from '../../base/errors.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../base/oci/mediatypes.js';
import type { Descriptor, ImageIndex, ImageManifest } from '../../base/oci/types.js';
import { CACHE_ARTIFACT_TYPE } from './format.js';

/** Annotation on a cache manifest and its index entry: the writer's id. */
export const WRITER_ANNOTATION = 'io.kiln.cache.writer';
/** Annotation on a cache manifest and its index entry: when it was written (ISO 8601). */
export const CREATED_ANNOTATION = 'io.kiln.cache.created';

export const DEFAULT_KEEP_WRITERS = 32;
export const DEFAULT_KEEP_AGE_MS = 14 * 86_400_000;

export interface WriterOptions {
  /** Who writes: `writer=NAME`, or one id per machine and state dir. */
  id: string;
  /** Compaction: the newest manifests of at most this many writers are kept. */
  keepWriters: number;
  /** Compaction: manifests older than this are dropped (the writer's own new one never is). */
  keepAgeMs: number;
}

export class CacheWriterOptionError extends UserError {}

const sha12 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);

/** A tag-safe writer id: `[A-Za-z0-9_.-]`, at most 48 characters (longer names are hashed). */
export function writerId(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[.-]+/, '');
  if (safe && safe.length <= 48) return safe;
  return `h${sha12(name)}`;
}

function parseAge(text: string): number | undefined {
  const m = /^([0-9]+)(h|d)$/.exec(text.trim());
  return m ? Number(m[1]) * (m[2] === 'h' ? 3_600_000 : 86_400_000) : undefined;
}

/** Checks the writer attributes of a `--cache-to` (`writer=`, `keep-writers=`, `keep-age=`). */
export function writerOptions(attrs: Record<string, string>, stateRoot: string, flagText = '--cache-to', env: NodeJS.ProcessEnv = process.env): WriterOptions {
  const bad = (why: string) => new CacheWriterOptionError(`invalid value "${flagText}" for flag --cache-to: ${why}`);
  let keepWriters = DEFAULT_KEEP_WRITERS;
  if (attrs['keep-writers'] !== undefined) {
    keepWriters = Number(attrs['keep-writers']);
    if (!/^[0-9]+$/.test(attrs['keep-writers']) || keepWriters < 1 || keepWriters > 1000) throw bad('keep-writers must be a number from 1 to 1000');
  }
  let keepAgeMs = DEFAULT_KEEP_AGE_MS;
  if (attrs['keep-age'] !== undefined) {
    const age = parseAge(attrs['keep-age']);
    if (age === undefined || age <= 0) throw bad('keep-age must be a duration in hours or days, like 36h or 14d');
    keepAgeMs = age;
  }
  if (attrs.writer !== undefined && attrs.writer.trim() === '') throw bad('writer= needs a name');
  return { id: attrs.writer !== undefined ? writerId(attrs.writer) : defaultWriterId(stateRoot, env), keepWriters, keepAgeMs };
}

/** Branch variables of common CI systems, first set wins. */
const CI_BRANCH_VARS = ['GITHUB_HEAD_REF', 'GITHUB_REF_NAME', 'CI_COMMIT_REF_NAME', 'BUILDKITE_BRANCH', 'CIRCLE_BRANCH', 'BRANCH_NAME'];

/**
 * Without writer=: one id per machine and state dir (its next export replaces its own manifest), prefixed
 * by the CI branch when a CI variable names one, so one runner building several branches keeps each.
 */
export function defaultWriterId(stateRoot: string, env: NodeJS.ProcessEnv = process.env): string {
  const machine = `m${sha12(`${hostname()}\0${stateRoot}`)}`;
  const branch = CI_BRANCH_VARS.map((v) => env[v]).find((b) => b && b.trim());
  if (!branch) return machine;
  const safe = branch.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[.-]+/, '');
  return `${safe && safe.length <= 32 ? safe : `h${sha12(branch)}`}.${machine}`;
}

/** The tag a writer's newest manifest is also pushed under, next to the cache's tag. */
export function writerTagPrefix(tag: string): string {
  return `${tag.length <= 64 ? tag : `h${sha12(tag)}`}.w.`;
}
export function writerTag(tag: string, id: string): string {
  return writerTagPrefix(tag) + id;
}

/** One writer's manifest as the index names it. */
export interface WriterEntry {
  writer: string;
  created: string;
  desc: Descriptor;
}

export function writerAnnotations(id: string, created: string): Record<string, string> {
  return { [WRITER_ANNOTATION]: id, [CREATED_ANNOTATION]: created };
}

/** The entry for a cache manifest, from its own annotations (undefined when it has none). */
export function entryOfManifest(m: ImageManifest, desc: Descriptor): WriterEntry | undefined {
  const writer = m.annotations?.[WRITER_ANNOTATION];
  const created = m.annotations?.[CREATED_ANNOTATION];
  if (!writer || !created || Number.isNaN(Date.parse(created))) return undefined;
  return { writer, created, desc: { mediaType: OCI_MANIFEST, digest: desc.digest, size: desc.size, annotations: writerAnnotations(writer, created) } };
}

/** Whether an index is a kiln multi-writer cache index. */
export function isCacheIndex(index: ImageIndex): boolean {
  return index.artifactType === CACHE_ARTIFACT_TYPE;
}

/** The entries of a cache index; entries without a writer or time (not kiln's) are named by digest. */
export function entriesOfIndex(index: ImageIndex): WriterEntry[] {
  return index.manifests.map((d) => {
    const created = d.annotations?.[CREATED_ANNOTATION];
    return {
      writer: d.annotations?.[WRITER_ANNOTATION] ?? `digest-${d.digest.slice(7, 19)}`,
      created: created && !Number.isNaN(Date.parse(created)) ? created : new Date(0).toISOString(),
      desc: d,
    };
  });
}

/** Newest first (ties by digest, so every writer orders the same way). */
export function newestFirst(entries: WriterEntry[]): WriterEntry[] {
  return [...entries].sort((a, b) => Date.parse(b.created) - Date.parse(a.created) || (a.desc.digest < b.desc.digest ? -1 : 1));
}

/**
 * The entries to keep: the newest manifest of each writer, none older than keepAge, at most keepWriters of
 * them, newest first. `mine` (the manifest just written) is always kept.
 */
export function compact(entries: WriterEntry[], opts: Pick<WriterOptions, 'keepWriters' | 'keepAgeMs'>, now: number, mine?: WriterEntry): { kept: WriterEntry[]; dropped: WriterEntry[] } {
  const byWriter = new Map<string, WriterEntry>();
  const dropped: WriterEntry[] = [];
  for (const e of newestFirst(entries)) {
    if (mine && e.desc.digest === mine.desc.digest) continue;
    if (byWriter.has(e.writer) || e.writer === mine?.writer) dropped.push(e);
    else byWriter.set(e.writer, e);
  }
  const kept: WriterEntry[] = mine ? [mine] : [];
  for (const e of newestFirst([...byWriter.values()])) {
    if (now - Date.parse(e.created) > opts.keepAgeMs || kept.length >= opts.keepWriters) dropped.push(e);
    else kept.push(e);
  }
  return { kept: newestFirst(kept), dropped };
}

/** The index gathering the kept entries (the document under the cache's tag). */
export function cacheIndex(entries: WriterEntry[]): Buffer {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    artifactType: CACHE_ARTIFACT_TYPE,
    manifests: newestFirst(entries).map((e) => ({ mediaType: OCI_MANIFEST, digest: e.desc.digest, size: e.desc.size, annotations: writerAnnotations(e.writer, e.created) })),
  };
  return Buffer.from(JSON.stringify(index));
}
