// Content digests for cache keys (docs/design.md, "Cache-key rules": sha256, BuildKit's contenthash as the model): what a copy
// selects — each entry's path below the selection, type, mode, owner, link target and content hash —
// and nothing else: not mtimes, not files the copy does not read.
import { createHash, hash } from 'node:crypto';
import { readFileSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import type { FsView, ViewEntry } from './view.js';
import { expandWildcard, hasWildcard } from './glob.js';
import { IgnoreMatcher } from '../../../base/patterns/dockerignore.js';
import { fsPath, nameToBytes, readlinkRaw } from '../../../base/raw-names.js';

export interface Selection {
  path: string;
  allowWildcard?: boolean;
  followSymlink?: boolean;
  includePatterns?: string[];
  excludePatterns?: string[];
}

export async function selectionDigest(view: FsView, sel: Selection, fileHasher?: (realPath: string, st?: Stats) => string, files?: Record<string, string>): Promise<string> {
  const h = createHash('sha256');
  const include = sel.includePatterns?.length ? new IgnoreMatcher(sel.includePatterns) : undefined;
  const exclude = sel.excludePatterns?.length ? new IgnoreMatcher(sel.excludePatterns) : undefined;
  const roots = sel.allowWildcard && hasWildcard(sel.path) ? await expandWildcard(view, sel.path) : [sel.path];
  // One entry: hashes it if selected; says whether to descend. Plain dirs (the build context) are walked
  // without a promise per entry, which matters for 20,000 files.
  const plain = view.isPlainDir;
  const visit = (e: ViewEntry | undefined, below: string): boolean => {
    if (!e) {
      h.update(`missing\0${below}\0`);
      return false;
    }
    const st = e.stat;
    const selected = below === '' || (!exclude?.matches(below) && (!include || include.matches(below)));
    if (!selected && !st.isDirectory()) return false;
    const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
    if (selected) {
      // Files from the build context are copied as 0:0 (as BuildKit's client sends them), whoever owns them here.
      const meta = `${type}\0${below}\0${(st.mode & 0o7777).toString(8)}\0${plain ? '0:0' : `${st.uid}:${st.gid}`}\0`;
      let body = '';
      if (type === 'l') body = `${readlinkRaw(e.real)}\0`;
      else if (type === 'f') body = fileHasher && plain ? fileHasher(e.real, st) : createHash('sha256').update(readFileSync(fsPath(e.real))).digest('hex');
      else if (type === 'o') body = `${st.rdev}\0`;
      // As bytes: two names differing only in non-UTF-8 bytes must not give the same key.
      h.update(nameToBytes(meta));
      h.update(nameToBytes(body));
      // For --explain: what each selected path looked like (type, mode, owner, content hash).
      if (files) files[posix.join(r0, below)] = hash('sha256', meta + body).slice(0, 16);
    }
    return type === 'd';
  };
  const walkPlain = (rel: string, below: string): void => {
    if (!visit(view.lookupPlain(rel), below)) return;
    for (const n of view.readdirPlain(rel)) walkPlain(posix.join(rel, n), below ? `${below}/${n}` : n);
  };
  const walk = async (rel: string, below: string): Promise<void> => {
    if (!visit(await view.lookup(rel), below)) return;
    for (const n of await view.readdir(rel)) await walk(posix.join(rel, n), below ? `${below}/${n}` : n);
  };
  let r0 = '';
  for (const r of roots) {
    r0 = r;
    h.update(nameToBytes(`root\0${r}\0`));
    const resolved = await view.resolve(r, sel.followSymlink ?? false);
    if (plain) walkPlain(resolved, '');
    else await walk(resolved, '');
  }
  return `sha256:${h.digest('hex')}`;
}
