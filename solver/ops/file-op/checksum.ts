// Content digests for cache keys (DESIGN.md: sha256, BuildKit's contenthash as the model): what a copy
// selects — each entry's path below the selection, type, mode, owner, link target and content hash —
// and nothing else: not mtimes, not files the copy does not read.
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import type { FsView } from './view.js';
import { expandWildcard, hasWildcard } from './glob.js';
import { IgnoreMatcher } from '../../../frontends/dockerfile/dockerignore.js';

export interface Selection {
  path: string;
  allowWildcard?: boolean;
  followSymlink?: boolean;
  includePatterns?: string[];
  excludePatterns?: string[];
}

export async function selectionDigest(view: FsView, sel: Selection, fileHasher?: (realPath: string) => string, files?: Record<string, string>): Promise<string> {
  const h = createHash('sha256');
  const include = sel.includePatterns?.length ? new IgnoreMatcher(sel.includePatterns) : undefined;
  const exclude = sel.excludePatterns?.length ? new IgnoreMatcher(sel.excludePatterns) : undefined;
  const roots = sel.allowWildcard && hasWildcard(sel.path) ? await expandWildcard(view, sel.path) : [sel.path];
  const walk = async (rel: string, below: string): Promise<void> => {
    const e = await view.lookup(rel);
    if (!e) {
      h.update(`missing\0${below}\0`);
      return;
    }
    const st = e.stat;
    const selected = below === '' || (!exclude?.matches(below) && (!include || include.matches(below)));
    if (selected || st.isDirectory()) {
      const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
      if (selected) {
        const meta = `${type}\0${below}\0${(st.mode & 0o7777).toString(8)}\0${st.uid}:${st.gid}\0`;
        let body = '';
        if (type === 'l') body = `${readlinkSync(e.real)}\0`;
        else if (type === 'f') body = fileHasher && view.isPlainDir ? fileHasher(e.real) : createHash('sha256').update(readFileSync(e.real)).digest('hex');
        else if (type === 'o') body = `${st.rdev}\0`;
        h.update(meta);
        h.update(body);
        // For --explain: what each selected path looked like (type, mode, owner, content hash).
        if (files) files[posix.join(r0, below)] = createHash('sha256').update(meta).update(body).digest('hex').slice(0, 16);
      }
      if (st.isDirectory()) for (const n of await view.readdir(rel)) await walk(posix.join(rel, n), below ? `${below}/${n}` : n);
    }
  };
  let r0 = '';
  for (const r of roots) {
    r0 = r;
    h.update(`root\0${r}\0`);
    await walk(await view.resolve(r, sel.followSymlink ?? false), '');
  }
  return `sha256:${h.digest('hex')}`;
}
