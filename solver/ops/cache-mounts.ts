// RUN --mount=type=cache directories: one persistent dir per id under the state root, kept apart from
// the layer cache. sharing=shared lets concurrent users share it, locked serialises them, private gives a
// concurrent user its own instance. A new, empty dir is first filled from a cache imported with
// --cache-from when that cache carries the id (cache/remote/mount-seed.ts): every user of the dir waits
// for that, whatever its sharing mode.
import { createHash } from 'node:crypto';
import { chownSync, chmodSync, existsSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CacheMountSeeder } from '../../cache/remote/mount-seed.js';

const users = new Map<string, number>();
const lockWaiters = new Map<string, (() => void)[]>();
/** Dirs being filled from an imported cache, and dirs a seeder has filled (each at most once per seeder). */
const seeding = new Map<string, Promise<void>>();
const seededBy = new WeakMap<CacheMountSeeder, Set<string>>();

/** The persistent dir of cache mount `id` in a state root (instance 0: the one `shared`/`locked` use). */
export function cacheMountPath(root: string, id: string): string {
  return idDir(root, id);
}

function idDir(root: string, id: string, instance = 0): string {
  const h = createHash('sha256').update(id).digest('hex');
  return join(root, 'cachemounts', instance ? `${h}-${instance}` : h);
}

export async function cacheMountDir(root: string, id: string, sharing: 'shared' | 'private' | 'locked', signal: AbortSignal, seed?: string, seeder?: CacheMountSeeder): Promise<{ dir: string; release: () => void }> {
  const key = `${root}\0${id}`;
  if (sharing === 'locked') {
    while ((users.get(key) ?? 0) > 0) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const list = lockWaiters.get(key) ?? [];
        list.push(resolve);
        lockWaiters.set(key, list);
      });
    }
  }
  let instance = 0;
  if (sharing === 'private') {
    while ((users.get(`${key}\0${instance}`) ?? 0) > 0) instance++;
  }
  const useKey = sharing === 'private' ? `${key}\0${instance}` : key;
  users.set(useKey, (users.get(useKey) ?? 0) + 1);
  const dir = idDir(root, id, instance);
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    // A new cache dir takes the owner and mode the mount asked for (uid=, gid=, mode=).
    if (seed && existsSync(seed)) {
      const st = lstatSync(seed);
      chownSync(dir, st.uid, st.gid);
      chmodSync(dir, st.mode & 0o7777);
    }
  }
  if (seeder) {
    let filling = seeding.get(dir);
    const done = seededBy.get(seeder) ?? new Set<string>();
    seededBy.set(seeder, done);
    if (!filling && !done.has(dir) && readdirSync(dir).length === 0) {
      done.add(dir);
      filling = seeder.seed(id, dir).finally(() => seeding.delete(dir));
      seeding.set(dir, filling);
    }
    if (filling) {
      try {
        await filling;
      } catch (err) {
        users.set(useKey, (users.get(useKey) ?? 1) - 1);
        throw err;
      }
    }
  }
  return {
    dir,
    release: () => {
      users.set(useKey, (users.get(useKey) ?? 1) - 1);
      const waiters = lockWaiters.get(key);
      if (waiters?.length) waiters.shift()!();
    },
  };
}
