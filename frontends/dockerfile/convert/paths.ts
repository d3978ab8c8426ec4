// Unix path helpers with Go's path.Clean semantics, plus BuildKit's NormalizePath (keep a trailing slash).

/** Go path.Clean */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

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
