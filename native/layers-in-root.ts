// Reads a small file (e.g. /etc/passwd) from an image given as a stack of overlay-form layer dirs, without
// mounting them, as the process in the container would see it: the topmost layer that has a path wins, a
// whiteout (0/0 char device) hides it and everything under it in the layers below, and every symlink is
// followed inside the merged image (an absolute target restarts at the image's root, `..` stops there),
// never on the host. The final open neither follows a link nor blocks, and a file over maxBytes is refused.
// For layer dirs at rest (no process changes them while kiln reads); opaque dirs are not looked at (their
// xattr is out of Node's reach), so a file hidden by one may still be found in a lower layer.
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { InRootError, readRegularFile } from './in-root.js';

const MAX_LINKS = 40; // as the kernel's MAXSYMLINKS

function parts(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

interface Entry { host: string; st: Stats }

/** The entry at `path` (components with no symlink or `..` left in them) in the merged layers. */
function lookup(lowerdirs: string[], path: string[]): Entry | undefined {
  next: for (const layer of lowerdirs) {
    // lstat each prefix in this layer: a dir is descended into; nothing there means this layer lacks it.
    for (let i = 1; i <= path.length; i++) {
      const host = join(layer, ...path.slice(0, i));
      let st: Stats;
      try {
        st = lstatSync(host);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue next;
        throw err;
      }
      if (st.isCharacterDevice() && st.rdev === 0) return undefined; // a whiteout hides the rest of the stack
      if (i === path.length) return { host, st };
      // A non-dir here (possible only below an upper layer's dir) hides this layer and the ones below.
      if (!st.isDirectory()) return undefined;
    }
  }
  return undefined;
}

/** The host path of the regular-or-other entry `path` resolves to in the merged layers, or undefined. */
function resolveInLayers(lowerdirs: string[], path: string): Entry | undefined {
  const done: string[] = [];
  let todo = parts(path);
  let links = 0;
  let entry: Entry | undefined;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') {
      done.pop(); // never above the root
      continue;
    }
    entry = lookup(lowerdirs, [...done, c]);
    if (!entry) return undefined;
    if (entry.st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new InRootError(`${path}: too many levels of symbolic links`, 'ELOOP');
      const target = readlinkSync(entry.host);
      if (target.startsWith('/')) done.length = 0;
      todo = [...parts(target), ...todo];
      continue;
    }
    if (todo.length > 0 && !entry.st.isDirectory()) return undefined; // a file used as a dir: nothing there
    done.push(c);
  }
  return done.length ? lookup(lowerdirs, done) : undefined;
}

/**
 * The content of the regular file at `path` in the image made of `lowerdirs` (topmost first), or undefined
 * when there is none. Throws InRootError for a FIFO, device or socket there (never opened for reading),
 * a symlink loop, or a file over maxBytes.
 */
export function readFileInLayers(lowerdirs: string[], path: string, opts: { maxBytes: number }): Buffer | undefined {
  const entry = resolveInLayers(lowerdirs, path);
  if (!entry) return undefined;
  if (!entry.st.isFile()) {
    if (entry.st.isDirectory()) return undefined;
    throw new InRootError(`${path}: not a regular file`, 'ENOTREG');
  }
  return readRegularFile(entry.host, path, opts);
}
