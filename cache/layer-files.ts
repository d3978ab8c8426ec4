// Reads a small file (e.g. /etc/passwd) from a stack of overlay-form layer dirs without mounting them:
// the topmost layer that has the path wins; a whiteout (0/0 char device) of the path or of a parent dir
// hides it in the layers below.
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function isWhiteout(path: string): boolean | undefined {
  try {
    const st = lstatSync(path);
    return st.isCharacterDevice() && st.rdev === 0;
  } catch {
    return undefined; // absent
  }
}

/** `lowerdirs` topmost first; `path` absolute inside the image. Returns undefined when absent. */
export function readFileFromLayers(lowerdirs: string[], path: string): Buffer | undefined {
  const parts = path.split('/').filter(Boolean);
  for (const layer of lowerdirs) {
    // A whiteout of any prefix hides the rest of the stack.
    for (let i = 1; i < parts.length; i++) {
      if (isWhiteout(join(layer, ...parts.slice(0, i)))) return undefined;
    }
    const full = join(layer, ...parts);
    const wh = isWhiteout(full);
    if (wh === true) return undefined;
    if (wh === false) {
      try {
        return readFileSync(full);
      } catch {
        return undefined; // a directory or unreadable: not a file
      }
    }
  }
  return undefined;
}
