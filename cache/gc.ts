// Disk usage and garbage collection of the state dir. Cache records (result/<key>) own the layers their
// steps made; images in the store own their manifests, configs, blobs and layers. Pruning removes cache
// records (all, those unused since a time, or least recently used ones until a storage limit holds), then
// a sweep deletes every layer dir and blob that no image and no remaining record refers to. Pruning
// holds the state lock, so no build is running meanwhile: nothing a build uses can go.
import { lstatSync, readdirSync, rmSync, existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { State } from './state.js';
import type { RecordedResult } from './result-cache.js';
import type { ImageManifest, ImageIndex } from '../base/oci/types.js';

export interface UsageRecord {
  /** result/<key> for build cache, cachemount/<dir> for RUN cache mounts */
  id: string;
  description: string;
  size: number;
  lastUsed: string;
  /** Also used by an image in the store (pruning the record frees nothing of it). */
  inUseByImage: boolean;
  reclaimable: boolean;
}

/** Bytes under a path (not following symlinks). */
export function dirSize(path: string): number {
  let total = 0;
  const walk = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
    else total += st.size;
  };
  walk(path);
  return total;
}

async function layerSize(state: State, dir: string): Promise<number> {
  const known = await state.keys.layerSizes.get(dir);
  if (known !== undefined) return known;
  const size = dirSize(dir);
  await state.keys.layerSizes.put(dir, size);
  return size;
}

/** Records the size of a layer a build step has just written and knows, so GC need not walk it. */
export async function rememberLayerSize(state: State, dir: string, size: number): Promise<void> {
  await state.keys.layerSizes.put(realpathSync(dir), size);
}

/** What images in the store keep alive: blob digests and layer dirs (real paths). */
async function imageReferences(state: State): Promise<{ blobs: Set<string>; dirs: Set<string> }> {
  const blobs = new Set<string>();
  const dirs = new Set<string>();
  for (const img of await state.images.list()) {
    blobs.add(img.digest);
    if (state.content.has(img.digest)) {
      const doc = state.content.readJSON<Partial<ImageIndex & ImageManifest>>(img.digest);
      for (const m of doc.manifests ?? []) blobs.add(m.digest);
    }
    for (const p of img.platforms) {
      blobs.add(p.manifestDigest);
      blobs.add(p.configDigest);
      if (!state.content.has(p.manifestDigest) || !state.content.has(p.configDigest)) continue;
      const manifest = state.content.readJSON<ImageManifest>(p.manifestDigest);
      for (const l of manifest.layers) blobs.add(l.digest);
      const config = state.content.readJSON<{ rootfs?: { diff_ids?: string[] } }>(p.configDigest);
      for (const d of config.rootfs?.diff_ids ?? []) {
        const dir = state.snapshots.dir(d);
        if (existsSync(dir)) dirs.add(realpathSync(dir));
      }
    }
  }
  return { blobs, dirs };
}

function recordDirs(state: State, rec: RecordedResult): string[] {
  return rec.layers.flatMap((l) => {
    const dir = l.id ? state.snapshots.builtLayerDir(l.id) : l.diffId ? state.snapshots.dir(l.diffId) : undefined;
    return dir && existsSync(dir) ? [realpathSync(dir)] : [];
  });
}

async function resultRecords(state: State): Promise<[string, RecordedResult][]> {
  const out: [string, RecordedResult][] = [];
  for await (const [k, v] of state.keys.results.entries()) out.push([`result/${k}`, v]);
  return out;
}

export async function diskUsage(state: State): Promise<UsageRecord[]> {
  const images = await imageReferences(state);
  const records = await resultRecords(state);
  // A layer belongs to the record that made it (its last layer); lower layers are its inputs' records.
  const out: UsageRecord[] = [];
  for (const [key, rec] of records) {
    const dirs = recordDirs(state, rec);
    const own = dirs.at(-1);
    const size = own ? await layerSize(state, own) : 0;
    const inUseByImage = own !== undefined && images.dirs.has(own);
    out.push({ id: key, description: rec.description ?? '', size, lastUsed: rec.lastUsed ?? rec.created, inUseByImage, reclaimable: !inUseByImage });
  }
  const mounts = join(state.root, 'cachemounts');
  if (existsSync(mounts)) {
    for (const name of readdirSync(mounts)) {
      const p = join(mounts, name);
      out.push({ id: `cachemount/${name}`, description: 'RUN --mount=type=cache', size: dirSize(p), lastUsed: lstatSync(p).mtime.toISOString(), inUseByImage: false, reclaimable: true });
    }
  }
  return out.sort((a, b) => a.lastUsed.localeCompare(b.lastUsed));
}

export interface PruneOptions {
  /** Also remove RUN cache mounts. */
  all?: boolean;
  /** Only records unused for at least this long (ms). */
  olderThanMs?: number;
  /** Remove least recently used records until the cache takes at most this many bytes. */
  keepStorage?: number;
}

export interface PruneResult {
  removedRecords: number;
  reclaimedBytes: number;
}

export async function prune(state: State, opts: PruneOptions = {}): Promise<PruneResult> {
  const usage = await diskUsage(state);
  const now = Date.now();
  let chosen = usage.filter((u) => (opts.all || !u.id.startsWith('cachemount/')) && (opts.olderThanMs === undefined || now - Date.parse(u.lastUsed) >= opts.olderThanMs));
  if (opts.keepStorage !== undefined) {
    // Oldest first, until what stays fits.
    let total = usage.reduce((n, u) => n + u.size, 0);
    const lru: UsageRecord[] = [];
    for (const u of chosen) {
      if (total <= opts.keepStorage) break;
      lru.push(u);
      if (u.reclaimable) total -= u.size;
    }
    chosen = lru;
  }
  for (const u of chosen) {
    if (u.id.startsWith('cachemount/')) rmSync(join(state.root, 'cachemounts', u.id.slice('cachemount/'.length)), { recursive: true, force: true });
    else await state.keys.results.del(u.id.slice('result/'.length));
  }
  const reclaimedBytes = await sweep(state);
  // The memos of the keyspace follow the records and layers they describe (cache/keyspace.ts).
  await state.keys.collect({ all: opts.all, snapshots: state.snapshots });
  return { removedRecords: chosen.length, reclaimedBytes };
}

/** Deletes layer dirs and blobs that no image and no cache record refers to; returns the bytes freed. */
export async function sweep(state: State): Promise<number> {
  const images = await imageReferences(state);
  const liveDirs = new Set(images.dirs);
  const liveBlobs = new Set(images.blobs);
  for (const [, rec] of await resultRecords(state)) {
    for (const d of recordDirs(state, rec)) liveDirs.add(d);
    for (const l of rec.layers) if (l.blob) liveBlobs.add(l.blob.digest);
  }
  // Blobs made from a live layer stay with it (re-exports reuse them).
  for await (const [k, v] of state.keys.layerBlobs.entries()) {
    const [id, diffId] = k.split('/');
    const dir = id === 'diff' ? state.snapshots.dir(diffId!) : state.snapshots.builtLayerDir(id!);
    if (existsSync(dir) && liveDirs.has(realpathSync(dir))) liveBlobs.add(v.digest);
  }
  let freed = 0;
  const snapRoot = state.snapshots.root;
  for (const sub of ['layers', 'sha256']) {
    const base = join(snapRoot, sub);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const p = join(base, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) {
        // diffID aliases of built layers: keep while their target lives.
        if (!existsSync(p) || !liveDirs.has(realpathSync(p))) rmSync(p, { force: true });
        continue;
      }
      if (liveDirs.has(realpathSync(p))) continue;
      freed += await layerSize(state, realpathSync(p));
      await state.keys.layerSizes.del(realpathSync(p));
      rmSync(p, { recursive: true, force: true });
    }
  }
  for (const digest of state.content.list()) {
    if (liveBlobs.has(digest)) continue;
    freed += state.content.size(digest);
    state.content.remove(digest);
  }
  return freed;
}

/**
 * The automatic policy run after each build: when the cache takes more than `keepStorage` bytes, the
 * least recently used records go until it fits. Images in the store are untouched.
 */
export async function autoCollect(state: State, keepStorage: number): Promise<PruneResult | undefined> {
  const usage = await diskUsage(state);
  const total = usage.reduce((n, u) => n + u.size, 0);
  if (total <= keepStorage) return undefined;
  return prune(state, { keepStorage });
}
