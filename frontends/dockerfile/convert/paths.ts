// Unix path helpers with Go's path.Clean semantics, plus BuildKit's NormalizePath (keep a trailing slash).
import { cleanPath } from '../../../base/patterns/dockerignore.js';

/** Go path.Clean (shared with .dockerignore's path handling). */
export { cleanPath };

/** Go path.Join */
export function joinPath(...parts: string[]): string {
  const nonEmpty = parts.filter((p) => p !== '');
  return nonEmpty.length === 0 ? '' : cleanPath(nonEmpty.join('/'));
}

/** BuildKit system.NormalizePath for Linux: `p` resolved against `parent`, trailing slash kept when asked. */
export function normalizePath(parent: string, p: string, keepSlash: boolean): string {
  let base = parent === '' ? '/' : parent;
  if (!base.startsWith('/')) base = joinPath('/', base);
  let out = p === '' ? base : p;
  if (!out.startsWith('/')) out = joinPath(base, out);
  else out = cleanPath(out);
  if (keepSlash && p.endsWith('/') && !out.endsWith('/')) out += '/';
  return out;
}

/** A COPY/ADD destination relative to the working directory (BuildKit pathRelativeToWorkingDir). */
export function destRelativeToWorkdir(workdir: string, dest: string): string {
  if (dest.startsWith('/')) return normalizePath('/', dest, true);
  return normalizePath(workdir, dest === '.' || dest === '' ? './' : dest, true);
}
