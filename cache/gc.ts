// Disk usage and garbage collection of the state dir. Cache records (result/<key>) own the layers their
// steps made; images in the store own their manifests, configs, blobs and layers. Pruning removes cache
// records (all, those unused since a time, or least recently used ones until a storage limit holds), then
// a sweep deletes every layer dir and blob that no image and no remaining record refers to. `kiln prune`
// holds the state lock; the automatic policy (collectToPolicy) runs while builds run, and leaves alone
// what their leases hold and what appeared since the oldest of them started (cache/leases.ts).
import { lstatSync, readdirSync, rmSync, existsSync, realpathSync, renameSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { State } from './state.js';
import type { Lease } from './leases.js';
import { allowedBytes, diskOf, policyEnabled, type GcPolicy } from './gc-policy.js';
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

/** Bytes of a layer dir (by real path), remembered in the db: layers are immutable once committed. */
export async function layerSize(state: State, dir: string): Promise<number> {
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
  const liveDirs = new Set([...images.dirs, ...state.leases.heldDirs()]);
  const liveBlobs = new Set([...images.blobs, ...state.leases.heldBlobs()]);
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
  // Nothing is removed that a running build may use: held by its lease, or changed since it started.
  // The checks and the removal run with no await between them, so a lease taken meanwhile is seen.
  const inUse = (p: string, st = lstatSync(p)) => st.ctimeMs >= state.leases.protectedSince || state.leases.heldDirs().has(realpathSync(p));
  for (const sub of ['layers', 'sha256']) {
    const base = join(snapRoot, sub);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const p = join(base, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) {
        // diffID aliases of built layers: keep while their target lives.
        if (!existsSync(p)) rmSync(p, { force: true });
        else if (!liveDirs.has(realpathSync(p)) && !inUse(p, st) && !inUse(p, statSync(p))) rmSync(p, { force: true });
        continue;
      }
      const real = realpathSync(p);
      if (liveDirs.has(real) || inUse(p, st)) continue;
      const size = await layerSize(state, real);
      if (!existsSync(p) || inUse(p)) continue;
      // Moved aside at once (a rename), deleted without blocking the builds that run meanwhile.
      const trash = join(snapRoot, 'tmp', `gc-${randomBytes(6).toString('hex')}`);
      renameSync(p, trash);
      freed += size;
      await state.keys.layerSizes.del(real);
      await rm(trash, { recursive: true, force: true });
    }
  }
  for (const digest of state.content.list()) {
    if (liveBlobs.has(digest) || state.leases.heldBlobs().has(digest)) continue;
    const path = state.content.path(digest);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (st.ctimeMs >= state.leases.protectedSince) continue;
    freed += st.size;
    state.content.remove(digest);
  }
  return freed;
}

/**
 * Bytes the state dir takes, as the GC policy counts them: every layer dir (sizes remembered in the db,
 * layers are immutable), every blob, the layers being written now, RUN cache mounts and the db itself.
 * Cheap enough to run every half second: only in-flight layers, cache mounts and the db are walked.
 */
export async function stateUsage(state: State): Promise<number> {
  let total = 0;
  for (const sub of ['layers', 'sha256']) {
    const base = join(state.snapshots.root, sub);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const p = join(base, name);
      try {
        if (lstatSync(p).isSymbolicLink()) continue;
        total += await layerSize(state, realpathSync(p));
      } catch {
        // removed meanwhile
      }
    }
  }
  for (const digest of state.content.list()) {
    try {
      total += state.content.size(digest);
    } catch {
      // removed meanwhile
    }
  }
  for (const dir of [join(state.snapshots.root, 'tmp'), join(state.root, 'cachemounts'), join(state.root, 'db'), join(state.root, 'content', 'ingest')]) total += dirSize(dir);
  return total;
}

const collecting = new WeakMap<State, Promise<PruneResult | undefined>>();

/**
 * The automatic policy (cache/gc-policy.ts): when the state takes more than the policy allows, least
 * recently used cache records go, then the sweep, until it fits or nothing more can go. Records whose
 * layers a running build holds or has just made are passed over (removing them frees nothing now).
 * Images in the store (and the layers they use) and RUN cache mounts are untouched. Runs one at a time per state.
 */
export function collectToPolicy(state: State, policy: GcPolicy): Promise<PruneResult | undefined> {
  if (!policyEnabled(policy)) return Promise.resolve(undefined);
  const prev = collecting.get(state) ?? Promise.resolve(undefined);
  const next = prev.catch(() => undefined).then(() => collectOnce(state, policy));
  collecting.set(state, next);
  return next;
}

async function collectOnce(state: State, policy: GcPolicy): Promise<PruneResult | undefined> {
  let removedRecords = 0;
  let reclaimedBytes = 0;
  const passedOver = new Set<string>();
  for (let round = 0; round < 8; round++) {
    const used = await stateUsage(state);
    const limit = allowedBytes(policy, used, diskOf(state.root), state.leases.headroom());
    if (used <= limit) break;
    const images = await imageReferences(state);
    const held = state.leases.heldDirs();
    let excess = used - limit;
    const chosen: string[] = [];
    const lastUse = (r: RecordedResult) => r.lastUsed ?? r.created;
    const records = (await resultRecords(state)).sort((a, b) => lastUse(a[1]).localeCompare(lastUse(b[1])));
    for (const [key, rec] of records) {
      if (passedOver.has(key)) continue;
      const own = recordDirs(state, rec).at(-1);
      const fresh = own !== undefined && (held.has(own) || changedSince(own, state.leases.protectedSince));
      if (fresh) {
        passedOver.add(key);
        continue;
      }
      // A record whose layer an image uses goes too (as with prune --keep-storage), freeing nothing.
      chosen.push(key);
      excess -= own && !images.dirs.has(own) ? await layerSize(state, own) : 0;
      if (excess <= 0) break;
    }
    if (chosen.length === 0) break;
    for (const key of chosen) await state.keys.results.del(key.slice('result/'.length));
    removedRecords += chosen.length;
    reclaimedBytes += await sweep(state);
  }
  if (removedRecords === 0) return undefined;
  await state.keys.collect({ snapshots: state.snapshots });
  return { removedRecords, reclaimedBytes };
}

function changedSince(path: string, since: number): boolean {
  try {
    return lstatSync(path).ctimeMs >= since;
  } catch {
    return false;
  }
}

const tickers = new WeakMap<State, NodeJS.Timeout>();

/**
 * Starts a build: its lease, and while any build of this state runs, the policy every `everyMs` (GC
 * while builds run, so that concurrent builds do not pile their data on top of each other's).
 */
export function beginBuild(state: State, policy: GcPolicy, everyMs = Number(process.env.KILN_GC_INTERVAL_MS) || 500): Lease {
  const lease = state.leases.begin();
  if (policyEnabled(policy) && !tickers.has(state)) {
    const timer = setInterval(() => {
      if (state.leases.running === 0) {
        clearInterval(timer);
        tickers.delete(state);
        return;
      }
      void collectToPolicy(state, policy).catch(() => undefined);
    }, everyMs);
    timer.unref();
    tickers.set(state, timer);
  }
  // With builds already running, make room for this one before it writes.
  if (state.leases.running > 1) void collectToPolicy(state, policy).catch(() => undefined);
  return lease;
}
