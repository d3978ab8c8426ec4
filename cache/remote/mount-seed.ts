// --cache-from for cache mounts: an imported cache names mount trees; a RUN that mounts an EMPTY cache dir
// of such an id gets it filled first, and only then are the tree and its files downloaded (a build whose
// RUNs are all cached downloads nothing of them). Every file is verified against its digest before it is
// renamed into place; the tree's paths were checked (decodeMountTree) to stay inside the dir, and the dir
// is new and held by kiln while it is filled, so no container races the writes.
import { chownSync, chmodSync, copyFileSync, lchownSync, mkdirSync, renameSync, rmSync, symlinkSync, utimesSync, readdirSync, statSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { State } from '../state.js';
import type { BlobFetcher } from './imported.js';
import type { ImportedCache } from './imported.js';
import { decodeMountTree, type ImportedMount } from './mount-tree.js';

/** What a RUN's cache mount asks of an imported cache (solver/ops/cache-mounts.ts calls it). */
export interface CacheMountSeeder {
  /** Fills `dir` (empty, new) with the imported contents of mount `id`, if the imported caches have it. */
  seed(id: string, dir: string): Promise<void>;
}

/** The cache mounts of the caches imported for one build; the first --cache-from naming an id wins. */
export class ImportedMounts {
  private readonly mounts = new Map<string, { mount: ImportedMount; fetcher: BlobFetcher }>();

  add(mounts: ImportedMount[], fetcher: BlobFetcher): void {
    for (const m of mounts) if (!this.mounts.has(m.id)) this.mounts.set(m.id, { mount: m, fetcher });
  }

  get(id: string): { mount: ImportedMount; fetcher: BlobFetcher } | undefined {
    return this.mounts.get(id);
  }

  get size(): number {
    return this.mounts.size;
  }
}

/** Owners as recorded, where this process may set them (a rootless kiln may not): the contents still count. */
function chownIfAllowed(set: () => void): void {
  try {
    set();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM' && (err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  }
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

export interface SeedEvents {
  status(message: string): void;
  warn(message: string): void;
}

export function mountSeeder(state: State, imported: ImportedCache, mounts: ImportedMounts, events: SeedEvents): CacheMountSeeder {
  return {
    async seed(id, dir) {
      const found = mounts.get(id);
      if (!found) return;
      const { mount, fetcher } = found;
      const started = Date.now();
      try {
        const got = await fill(state, imported, mount, fetcher, dir);
        events.status(`cache mount ${id}: ${got.files} files (${got.downloaded} bytes downloaded) from ${fetcher.where} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
      } catch (err) {
        // A cache mount is a cache: the RUN goes on with an empty one.
        for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true });
        events.warn(`cache mount ${id} from ${fetcher.where} not used (the RUN starts with an empty cache): ${(err as Error).message}`);
      }
    },
  };
}

async function fill(state: State, imported: ImportedCache, mount: ImportedMount, fetcher: BlobFetcher, dir: string): Promise<{ files: number; downloaded: number }> {
  await imported.fetchBlob(mount.tree, fetcher);
  const tree = decodeMountTree(state.content.readBytes(mount.tree.digest), fetcher.where);
  // Temp files live next to the dir (same filesystem, so a rename moves them in), never inside it.
  const tmpDir = join(dirname(dir), `.seed-${randomBytes(6).toString('hex')}`);
  mkdirSync(tmpDir, { mode: 0o700 });
  let downloaded = 0;
  try {
    for (const e of tree.entries) if (e.type === 'dir') mkdirSync(join(dir, e.path), { mode: 0o700 });
    // Each distinct content is downloaded once; other paths with it get a copy.
    const byDigest = new Map<string, typeof tree.entries>();
    for (const e of tree.entries) if (e.type === 'file') byDigest.set(e.digest, [...(byDigest.get(e.digest) ?? []), e]);
    const pending = [...byDigest.entries()];
    const worker = async () => {
      for (let next = pending.shift(); next; next = pending.shift()) {
        const [digest, paths] = next;
        const first = paths[0]! as Extract<(typeof tree.entries)[number], { type: 'file' }>;
        const tmp = join(tmpDir, digest.slice(7));
        await fetcher.fetch({ digest, size: first.size, mediaType: 'application/octet-stream', diffId: digest }, tmp);
        const size = statSync(tmp).size;
        if (size !== first.size) throw new Error(`file ${first.path}: expected ${first.size} bytes, got ${size}`);
        const actual = await hashFile(tmp);
        if (actual !== digest) throw new Error(`file ${first.path}: digest mismatch: expected ${digest}, got ${actual}`);
        downloaded += size;
        for (const [i, e] of paths.entries()) {
          if (e.type !== 'file') continue;
          const dest = join(dir, e.path);
          if (i < paths.length - 1) copyFileSync(tmp, dest);
          else renameSync(tmp, dest);
          chownIfAllowed(() => chownSync(dest, e.uid, e.gid));
          chmodSync(dest, e.mode);
          utimesSync(dest, e.mtime / 1000, e.mtime / 1000);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    // Symlinks after the files (none is a parent: parents are dir entries), dirs' owners and times last,
    // deepest first, so writing their children does not change them again.
    for (const e of tree.entries) {
      if (e.type !== 'symlink') continue;
      const dest = join(dir, e.path);
      symlinkSync(e.target, dest);
      chownIfAllowed(() => lchownSync(dest, e.uid, e.gid));
    }
    for (const e of [...tree.entries].reverse()) {
      if (e.type !== 'dir') continue;
      const dest = join(dir, e.path);
      chownIfAllowed(() => chownSync(dest, e.uid, e.gid));
      chmodSync(dest, e.mode);
      utimesSync(dest, e.mtime / 1000, e.mtime / 1000);
    }
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  return { files: tree.entries.filter((e) => e.type === 'file').length, downloaded };
}
