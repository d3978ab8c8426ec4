// The contents of a `RUN --mount=type=cache` dir as a kiln cache carries them (docs/cache-format.md,
// "Cache mounts"): one tree document (paths, types, modes, owners, times; files by content digest) and one
// blob per distinct file content. A file is its own blob, uncompressed, so a cache dir in which two files
// changed costs two files' bytes (plus the tree) to export again: the other blobs are already there.
import { gunzipSync, gzipSync } from 'node:zlib';
import { UserError } from '../../base/errors.js';
import type { CacheBlob, CacheConfig } from './format.js';

/** The gzip'd JSON tree of one cache mount. */
export const MOUNT_TREE_MEDIA_TYPE = 'application/vnd.kiln.cache.mount.tree.v1+json+gzip';
/** A file of a cache mount, its bytes as they are (npm tarballs and .debs are compressed already). */
export const MOUNT_FILE_MEDIA_TYPE = 'application/vnd.kiln.cache.mount.file.v1';

/** Blobs of cache mounts (trees and files) in a cache manifest: not layers, their diffID is their digest. */
export function isCacheMountMediaType(mediaType: string): boolean {
  return mediaType === MOUNT_TREE_MEDIA_TYPE || mediaType === MOUNT_FILE_MEDIA_TYPE;
}

export type MountEntry =
  | { path: string; type: 'dir'; mode: number; uid: number; gid: number; mtime: number }
  | { path: string; type: 'file'; mode: number; uid: number; gid: number; mtime: number; size: number; digest: string }
  | { path: string; type: 'symlink'; uid: number; gid: number; target: string };

export interface MountTree {
  version: 1;
  id: string;
  /** Sorted by path; every parent of a path is a `dir` entry before it. */
  entries: MountEntry[];
}

/** How the cache document names a mount: `cacheMounts` in the config, its tree by index into the manifest's layers. */
export interface CacheMountRef {
  id: string;
  tree: number;
  files: number;
  bytes: number;
}
export type CacheConfigWithMounts = CacheConfig & { cacheMounts?: CacheMountRef[] };

/** A mount as an importer sees it: its tree blob, not fetched yet. */
export interface ImportedMount {
  id: string;
  tree: CacheBlob;
  files: number;
  bytes: number;
}

export class MountTreeError extends UserError {}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const MAX_PATH = 4096;
const MAX_ENTRIES = 2_000_000;

export function encodeMountTree(tree: MountTree): { gz: Buffer; json: Buffer } {
  const json = Buffer.from(JSON.stringify(tree));
  // Node writes a zero mtime in the gzip header: the same tree gives the same blob.
  return { gz: gzipSync(json, { level: 6 }), json };
}

/** Parses and checks a tree: relative, normalised paths whose parents are dirs of the tree itself. */
export function decodeMountTree(gz: Buffer, where: string): MountTree {
  const bad = (why: string) => new MountTreeError(`cache mount tree from ${where}: ${why}`);
  let doc: MountTree;
  try {
    doc = JSON.parse(gunzipSync(gz, { maxOutputLength: 1 << 30 }).toString('utf8')) as MountTree;
  } catch (err) {
    throw bad(`unreadable (${(err as Error).message})`);
  }
  if (doc?.version !== 1 || !Array.isArray(doc.entries) || typeof doc.id !== 'string') throw bad('not a kiln cache mount tree');
  if (doc.entries.length > MAX_ENTRIES) throw bad(`too many entries (${doc.entries.length})`);
  const dirs = new Set<string>(['']);
  const seen = new Set<string>();
  const int = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
  for (const e of doc.entries) {
    const p = e?.path;
    if (typeof p !== 'string' || p === '' || p.length > MAX_PATH || p.includes('\0') || p.startsWith('/') || p.split('/').some((c) => c === '' || c === '.' || c === '..')) {
      throw bad(`bad path ${JSON.stringify(p)}`);
    }
    if (seen.has(p)) throw bad(`path ${JSON.stringify(p)} listed twice`);
    seen.add(p);
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (!dirs.has(parent)) throw bad(`${JSON.stringify(p)} is not inside a directory of the tree`);
    if (!int(e.uid) || !int(e.gid)) throw bad(`bad owner for ${JSON.stringify(p)}`);
    if (e.type === 'dir') {
      if (!int(e.mode) || !Number.isFinite(e.mtime)) throw bad(`bad dir entry ${JSON.stringify(p)}`);
      dirs.add(p);
    } else if (e.type === 'file') {
      if (!int(e.mode) || !int(e.size) || !Number.isFinite(e.mtime) || typeof e.digest !== 'string' || !DIGEST.test(e.digest)) throw bad(`bad file entry ${JSON.stringify(p)}`);
    } else if (e.type === 'symlink') {
      if (typeof e.target !== 'string' || e.target === '' || e.target.length > MAX_PATH || e.target.includes('\0')) throw bad(`bad symlink ${JSON.stringify(p)}`);
    } else throw bad(`unknown entry type for ${JSON.stringify(p)}`);
  }
  return doc;
}

/** The mounts named by a cache document, resolved against its blobs (the manifest's layers). */
export function decodeCacheMounts(raw: unknown, blobs: CacheBlob[], where: string): ImportedMount[] {
  const refs = (raw as CacheConfigWithMounts | undefined)?.cacheMounts;
  if (refs === undefined) return [];
  if (!Array.isArray(refs)) throw new MountTreeError(`cache ${where}: cacheMounts is not a list`);
  return refs.map((r) => {
    const tree = blobs[r?.tree];
    if (typeof r?.id !== 'string' || !Number.isInteger(r.tree) || !tree) throw new MountTreeError(`cache ${where}: a cache mount names a tree that does not exist`);
    return { id: r.id, tree, files: Number(r.files) || 0, bytes: Number(r.bytes) || 0 };
  });
}

/**
 * Adds mounts to an encoded cache document: their blobs after the layers (each once), `cacheMounts`
 * naming the trees. Readers that do not know `cacheMounts` see extra, unreferenced blobs only.
 */
export function addCacheMounts(config: CacheConfig, blobs: CacheBlob[], mounts: { id: string; tree: CacheBlob; files: CacheBlob[]; fileCount: number; bytes: number }[]): { config: CacheConfigWithMounts; blobs: CacheBlob[] } {
  if (mounts.length === 0) return { config, blobs };
  const all = [...blobs];
  const index = new Map(all.map((b, i) => [b.digest, i]));
  const add = (b: CacheBlob) => {
    let i = index.get(b.digest);
    if (i === undefined) {
      i = all.push(b) - 1;
      index.set(b.digest, i);
    }
    return i;
  };
  const refs: CacheMountRef[] = [];
  for (const m of [...mounts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    refs.push({ id: m.id, tree: add(m.tree), files: m.fileCount, bytes: m.bytes });
    for (const f of m.files) add(f);
  }
  // `config.blobs` stays the layers' list; mount blobs follow it in the manifest (trees named by index).
  return { config: { ...config, cacheMounts: refs }, blobs: all };
}
