// Several writers of one registry cache. A registry has no compare-and-swap, so the index under the cache's
// tag can lose an update when two writers rewrite it at once; it is a convenience. What cannot be lost is
// each writer's own tag (`TAG.w.ID`), written by that writer only: a reader gathers the index's entries and
// the writer tags, newest manifest per writer. Order of writes, so a reader never sees a manifest naming a
// missing blob: blobs, config, the manifest by digest, the writer tag, then the index.
import type { RegistryClient, FetchedManifest } from '../../base/oci/registry/client.js';
import type { ImageReference } from '../../base/oci/reference.js';
import { NotFoundError } from '../../base/oci/registry/errors.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../base/oci/mediatypes.js';
import type { ImageManifest } from '../../base/oci/types.js';
import { cacheIndex, compact, entriesOfIndex, entryOfManifest, isCacheIndex, newestFirst, writerTag, writerTagPrefix, type WriterEntry, type WriterOptions } from './writers.js';

/** Rounds of write-index, re-read, re-merge before a writer leaves the rest to its writer tag. */
const INDEX_ROUNDS = 5;
/** Writer tags a reader looks at, at most (a registry that refuses deletes keeps compacted ones). */
const MAX_WRITER_TAGS = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PublishResult {
  /** Writers the index names after this write. */
  writers: number;
  /** Manifests compaction dropped (and deleted, where the registry allows it). */
  dropped: number;
}

async function indexEntries(client: RegistryClient, ref: ImageReference): Promise<WriterEntry[]> {
  let root: FetchedManifest;
  try {
    root = await client.getManifest(ref, { accept: [OCI_INDEX, OCI_MANIFEST] });
  } catch (err) {
    if (err instanceof NotFoundError) return [];
    throw err;
  }
  if (root.parsed.kind === 'index') return isCacheIndex(root.parsed.index) ? entriesOfIndex(root.parsed.index) : [];
  // A single-writer cache (an older kiln's): kept as one more writer until compaction drops it.
  const desc = { mediaType: OCI_MANIFEST, digest: root.digest, size: root.bytes.length };
  return [entryOfManifest(root.parsed.manifest, desc) ?? { writer: `digest-${root.digest.slice(7, 19)}`, created: new Date().toISOString(), desc }];
}

/**
 * Publishes a writer's cache manifest (its blobs and config already pushed): by digest, under the writer's
 * tag, then merged into the index under `ref`'s tag with read-modify-write, re-read and re-merge.
 */
export async function publishWriterManifest(client: RegistryClient, ref: ImageReference, tag: string, manifest: { bytes: Buffer; digest: string }, mine: WriterEntry, opts: WriterOptions): Promise<PublishResult> {
  await client.putManifest(ref, manifest.digest, manifest.bytes, OCI_MANIFEST);
  await client.putManifest(ref, writerTag(tag, opts.id), manifest.bytes, OCI_MANIFEST);
  const dropped = new Map<string, WriterEntry>();
  let kept: WriterEntry[] = [];
  for (let round = 0; round < INDEX_ROUNDS; round++) {
    const merged = compact(await indexEntries(client, ref), opts, Date.now(), mine);
    kept = merged.kept;
    for (const d of merged.dropped) dropped.set(d.desc.digest, d);
    await client.putManifest(ref, tag, cacheIndex(kept), OCI_INDEX);
    // Another writer may have read the index before this write and put its own after it: look again
    // after a moment, and merge again if this manifest is gone.
    await sleep(50 + Math.floor(Math.random() * 150));
    const now = await indexEntries(client, ref);
    if (now.some((e) => e.desc.digest === manifest.digest)) {
      kept = now;
      break;
    }
  }
  // Dropped manifests go (their writer tags with them); a reader that still names one skips it.
  const keptDigests = new Set(kept.map((e) => e.desc.digest));
  let deleted = 0;
  for (const d of dropped.values()) {
    if (keptDigests.has(d.desc.digest) || d.desc.digest === manifest.digest) continue;
    try {
      await client.deleteManifest(ref, d.desc.digest);
      deleted++;
    } catch {
      /* registries may refuse deletes; readers cap what they read */
    }
  }
  return { writers: kept.length, dropped: deleted };
}

export interface GatheredManifests {
  /** Newest writer first: its records win when two writers recorded the same key. */
  manifests: ImageManifest[];
  writers: number;
  /** Manifests named but gone (deleted by another writer's compaction meanwhile). */
  skipped: number;
}

/**
 * The manifests of a multi-writer cache: the newest of each writer, from its writer tag (authoritative)
 * or the index. `root` is what the cache's tag names (undefined when the tag does not exist).
 */
export async function gatherWriterManifests(client: RegistryClient, ref: ImageReference, tag: string, root: FetchedManifest | undefined): Promise<GatheredManifests> {
  const byWriter = new Map<string, { entry: WriterEntry; manifest?: ImageManifest }>();
  if (root?.parsed.kind === 'index') for (const e of entriesOfIndex(root.parsed.index)) byWriter.set(e.writer, { entry: e });
  let tags: string[] = [];
  try {
    tags = await client.listTags(ref);
  } catch (err) {
    if (!root) throw err;
    /* a registry without tag listing: the index alone */
  }
  const prefix = writerTagPrefix(tag);
  let skipped = 0;
  for (const t of tags.filter((t) => t.startsWith(prefix)).slice(0, MAX_WRITER_TAGS)) {
    try {
      const m = await client.getManifest(ref.withTag(t), { accept: [OCI_MANIFEST] });
      if (m.parsed.kind !== 'manifest') continue;
      const entry = entryOfManifest(m.parsed.manifest, { mediaType: OCI_MANIFEST, digest: m.digest, size: m.bytes.length });
      if (!entry) continue;
      const known = byWriter.get(entry.writer);
      if (!known || Date.parse(known.entry.created) <= Date.parse(entry.created)) byWriter.set(entry.writer, { entry, manifest: m.parsed.manifest });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      skipped++; // deleted between the listing and now
    }
  }
  if (!root && byWriter.size === 0) throw new NotFoundError(`${ref.toString()}: not found in registry`);
  const manifests: ImageManifest[] = [];
  for (const e of newestFirst([...byWriter.values()].map((w) => w.entry))) {
    const known = byWriter.get(e.writer)!;
    if (known.manifest) {
      manifests.push(known.manifest);
      continue;
    }
    try {
      const m = await client.getManifest(ref.pinned(e.desc.digest), { size: e.desc.size });
      if (m.parsed.kind === 'manifest') manifests.push(m.parsed.manifest);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      skipped++;
    }
  }
  return { manifests, writers: manifests.length, skipped };
}
