// Which xattr namespace marks overlay metadata (opaque dirs) in layer dirs. As root, overlay reads
// `trusted.overlay.*`; in a user namespace (rootless mode) trusted.* cannot be written and overlay is
// mounted with `userxattr`, which reads `user.overlay.*` instead. The mode is fixed for a process, so a
// rootless state dir always holds user.* markers. Readers of layer dirs accept either name.
import { readFileSync } from 'node:fs';

function inUserNamespace(): boolean {
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(map.length === 3 && map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
  } catch {
    return false;
  }
}

/** True when this process runs in kiln's rootless mode (a user namespace). */
export const rootlessMode = inUserNamespace();

/** The xattr that marks an opaque directory in the layer dirs this process writes. */
export const OPAQUE_XATTR = rootlessMode ? 'user.overlay.opaque' : 'trusted.overlay.opaque';

/** Either namespace's overlay xattr (never copied into a layer tar as a plain xattr). */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** Whether a directory's xattrs mark it opaque (in either namespace). */
export function isOpaqueXattrs(xattrs: Map<string, Buffer>): boolean {
  return xattrs.get('trusted.overlay.opaque')?.toString() === 'y' || xattrs.get('user.overlay.opaque')?.toString() === 'y';
}
