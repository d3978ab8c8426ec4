// Paths in LLB ops as kiln takes them: absolute below the root the op acts on (kiln's file op and
// sandbox resolve every one inside that root), never with NUL; an exec mount's dest in one spelling.
import { posix } from 'node:path';
import { LlbError } from './decode.js';

/** A path of a file action or mount: absolute below the root it acts on; NUL is never a path. */
export function cleanPath(what: string, p: string): string {
  if (p.includes('\0')) throw new LlbError(`${what}: path ${JSON.stringify(p)} contains NUL`);
  return p.startsWith('/') ? p : `/${p}`;
}

/** An exec mount's dest in one spelling ("//", "/./" and "/.." are all the rootfs). */
export function mountDest(what: string, dest: string): string {
  if (!dest) throw new LlbError(`${what}: a mount without a destination`);
  return posix.normalize(cleanPath(what, dest));
}

export const isRootDest = (dest: string) => dest !== '' && !dest.includes('\0') && posix.normalize(dest.startsWith('/') ? dest : `/${dest}`) === '/';
