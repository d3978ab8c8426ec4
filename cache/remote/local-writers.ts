// Several writers of one local cache directory (an OCI image layout). Writers on one file system take a
// lock file for the read-modify-write of index.json, so no update is lost. Each writer's manifest is a
// blob of its own; the tag's index.json entry names an index blob gathering the newest manifest of each
// writer. Blobs nothing names any more (dropped manifests, old index blobs, their layers) are removed
// once they are an hour old, so a reader that read an older index.json still finds everything it names.
import { open, readdir, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../../base/errors.js';
import { layoutBlobPath, readLayoutBlob, REF_NAME_ANNOTATION } from '../../base/oci/layout.js';
import { parseManifest } from '../../base/oci/manifest.js';
import { isIndexType, OCI_INDEX, OCI_MANIFEST } from '../../base/oci/mediatypes.js';
import type { Descriptor, ImageIndex } from '../../base/oci/types.js';
import { sha256Digest } from '../content-store.js';
import { CACHE_ARTIFACT_TYPE } from './format.js';
import { cacheIndex, compact, entriesOfIndex, entryOfManifest, isCacheIndex, newestFirst, type WriterEntry, type WriterOptions } from './writers.js';

const LOCK = '.kiln-cache.lock';
/** A lock file older than this was left by a writer that died. */
const STALE_LOCK_MS = 120_000;
const LOCK_WAIT_MS = 300_000;
/** Unreferenced blobs younger than this stay: a reader may have read the index.json that names them. */
export const BLOB_GRACE_MS = 3_600_000;

export class CacheLockTimeout extends UserError {}

async function writeAtomic(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Runs `fn` holding the directory's writer lock (a file created with O_EXCL). */
export async function withCacheLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const path = join(dir, LOCK);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) await unlink(path).catch(() => undefined);
      if (Date.now() > deadline) throw new CacheLockTimeout(`cache ${dir}: another writer has held ${LOCK} for ${LOCK_WAIT_MS / 1000}s`);
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 60));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => undefined);
  }
}

/** Marks a blob a writer reuses as fresh, so the grace period protects it until the writer's index lands. */
export async function touchBlob(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => undefined);
}

async function readIndexJson(dir: string): Promise<ImageIndex> {
  try {
    return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
    throw err;
  }
}

/** The writer entries `desc` (a tag's index.json entry) names: an index's entries, or one older single manifest. */
async function entriesOf(dir: string, desc: Descriptor | undefined): Promise<WriterEntry[]> {
  if (!desc) return [];
  const parsed = parseManifest(await readLayoutBlob(dir, desc), { ref: `${dir}@${desc.digest}` });
  if (parsed.kind === 'index') return isCacheIndex(parsed.index) ? entriesOfIndex(parsed.index) : [];
  return [entryOfManifest(parsed.manifest, desc) ?? { writer: `digest-${desc.digest.slice(7, 19)}`, created: new Date().toISOString(), desc: { mediaType: OCI_MANIFEST, digest: desc.digest, size: desc.size } }];
}

/** Merges a writer's manifest (already written as a blob) into `tag`'s index; returns the writers kept. */
export async function publishLocalWriter(dir: string, tag: string, mine: WriterEntry, opts: WriterOptions): Promise<{ writers: number; indexDigest: string }> {
  return withCacheLock(dir, async () => {
    const index = await readIndexJson(dir);
    const current = index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag);
    const { kept } = compact(await entriesOf(dir, current), opts, Date.now(), mine);
    const bytes = cacheIndex(kept);
    const digest = sha256Digest(bytes);
    await writeAtomic(layoutBlobPath(dir, digest), bytes);
    index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
    index.manifests.push({ mediaType: OCI_INDEX, artifactType: CACHE_ARTIFACT_TYPE, digest, size: bytes.length, annotations: { [REF_NAME_ANNOTATION]: tag } });
    await writeAtomic(join(dir, 'index.json'), JSON.stringify(index));
    await removeUnreferencedBlobs(dir, index);
    return { writers: kept.length, indexDigest: digest };
  });
}

/** The writer manifests a tag names, newest first; manifests gone meanwhile are counted, not read. */
export async function localWriterManifests(dir: string, desc: Descriptor): Promise<{ manifests: { desc: Descriptor; bytes: Buffer }[]; skipped: number }> {
  const entries = newestFirst(await entriesOf(dir, desc));
  const manifests: { desc: Descriptor; bytes: Buffer }[] = [];
  let skipped = 0;
  for (const e of entries) {
    try {
      manifests.push({ desc: e.desc, bytes: await readLayoutBlob(dir, e.desc) });
    } catch {
      skipped++;
    }
  }
  return { manifests, skipped };
}

/** Every blob digest reachable from index.json (indexes, manifests, configs, layers). */
async function reachable(dir: string, index: ImageIndex): Promise<Set<string>> {
  const seen = new Set<string>();
  const walk = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    if (!isIndexType(d.mediaType) && d.mediaType !== OCI_MANIFEST && !d.mediaType.includes('manifest')) return;
    let bytes: Buffer;
    try {
      bytes = await readLayoutBlob(dir, d);
    } catch {
      return;
    }
    const parsed = parseManifest(bytes, { ref: `${dir}@${d.digest}` });
    if (parsed.kind === 'index') for (const m of parsed.index.manifests) await walk(m);
    else for (const l of [parsed.manifest.config, ...parsed.manifest.layers]) seen.add(l.digest);
  };
  for (const d of index.manifests) await walk(d);
  return seen;
}

/** Compaction of the directory: blobs nothing names, older than the grace period, are removed. */
async function removeUnreferencedBlobs(dir: string, index: ImageIndex): Promise<number> {
  const keep = await reachable(dir, index);
  const blobDir = join(dir, 'blobs', 'sha256');
  let removed = 0;
  for (const name of await readdir(blobDir).catch(() => [] as string[])) {
    if (!/^[a-f0-9]{64}$/.test(name) || keep.has(`sha256:${name}`)) continue;
    const path = join(blobDir, name);
    const st = await stat(path).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > BLOB_GRACE_MS) {
      await unlink(path).catch(() => undefined);
      removed++;
    }
  }
  return removed;
}
