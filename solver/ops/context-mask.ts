// A RUN's bind mount of the build context shows what BuildKit's file sync would have sent: nothing that
// .dockerignore excludes. kiln reads the context in place, so the mount is an overlay of the context under
// a "mask" layer holding a whiteout for each excluded entry. (The mount's cache key covers only the files
// it shows: an excluded file that stayed visible could give a stale CACHED result.)
import { constants, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { IgnoreMatcher } from '../../base/patterns/dockerignore.js';
import { FsOps } from '../../cache/layers/fsops.js';
import { fsPath, readdirRaw } from '../../base/raw-names.js';

/**
 * Makes `maskDir` (empty) a layer that hides every entry of `contextDir` the excludes match. An excluded
 * dir is hidden whole unless an exception (`!pattern`) may keep something inside it; then only its
 * excluded entries are.
 */
export async function maskExcluded(contextDir: string, excludes: string[], maskDir: string): Promise<void> {
  const matcher = new IgnoreMatcher(excludes);
  const hide: string[] = [];
  // Returns whether anything under rel stays visible.
  const walk = (rel: string): boolean => {
    let visible = false;
    for (const name of readdirRaw(join(contextDir, rel))) {
      const child = rel ? `${rel}/${name}` : name;
      const excluded = matcher.matches(child);
      const isDir = lstatSync(fsPath(join(contextDir, child))).isDirectory();
      if (excluded && (!isDir || !matcher.hasExclusions)) {
        hide.push(child);
        continue;
      }
      const inner = isDir ? walk(child) : false;
      if (excluded && !inner) {
        // Nothing kept inside: hide the dir itself (and forget the entries hidden in it one by one).
        for (let i = hide.length - 1; i >= 0 && hide[i]!.startsWith(child + '/'); i--) hide.pop();
        hide.push(child);
        continue;
      }
      visible = true;
    }
    return visible;
  };
  walk('');
  if (hide.length === 0) return;
  const fsops = FsOps.start();
  try {
    await Promise.all(
      hide.map((rel) => {
        const slash = rel.lastIndexOf('/');
        if (slash > 0) mkdirSync(fsPath(join(maskDir, rel.slice(0, slash))), { recursive: true });
        return fsops.mknod(join(maskDir, rel), constants.S_IFCHR, 0, 0);
      }),
    );
  } finally {
    await fsops.close();
  }
}
