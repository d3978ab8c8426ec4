// The client half of context sync: walks the build context (minus .dockerignore'd paths), and lists
// every entry with its metadata and, for files, the sha256 of its content. Hashes come from the stat
// index (cache/stat-index.ts): a file whose stat is unchanged since the last build is not read again.
// The index lives in a small JSON file per context under the client's cache dir, so that clients need
// no lock on a kiln state dir (many may run at once).
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { StatIndex } from '../../cache/stat-index.js';
import type { MetadataDB } from '../../cache/state.js';
import { IgnoreMatcher, loadDockerignore } from '../../base/patterns/dockerignore.js';
import type { ContextEntry } from '../protocol/builder.js';
import { displayName, fsPath, hasRawBytes, readdirRaw } from '../../base/raw-names.js';
import { UserError } from '../../base/errors.js';

export interface ContextManifest {
  entries: ContextEntry[];
  /** Where each digest's content can be read. */
  paths: Map<string, string>;
  /** Bytes of all regular files listed (what a full upload would send). */
  totalBytes: number;
  /** The .dockerignore patterns applied (undefined: there was no ignore file). */
  ignorePatterns?: string[];
}

function clientCacheDir(): string {
  return process.env.KILN_CLIENT_CACHE ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kiln');
}

/** A key-value "db" backed by one JSON file per key: enough for StatIndex's get/put. */
function fileDB(dir: string): MetadataDB {
  mkdirSync(dir, { recursive: true });
  const file = (key: string) => join(dir, `${key.replace(/[^A-Za-z0-9]/g, '_')}.json`);
  return {
    async get(key: string) {
      try {
        return JSON.parse(readFileSync(file(key), 'utf8'));
      } catch {
        return undefined;
      }
    },
    async put(key: string, value: unknown) {
      const tmp = `${file(key)}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(value));
      renameSync(tmp, file(key));
    },
  } as unknown as MetadataDB;
}

/**
 * `patterns`: the ignore patterns to apply instead of the context's own ignore files (a named context,
 * `--build-context name=DIR`, is filtered by DIR/.dockerignore alone, as the engine filters it locally).
 */
export async function contextManifest(contextDir: string, dockerfilePath: string | undefined, opts: { patterns?: string[] } = {}): Promise<ContextManifest> {
  const ignore = opts.patterns ? { patterns: opts.patterns } : loadDockerignore(contextDir, dockerfilePath ?? join(contextDir, 'Dockerfile'));
  const matcher = new IgnoreMatcher(ignore?.patterns ?? []);
  const index = await StatIndex.load(fileDB(join(clientCacheDir(), 'statindex')), contextDir);
  const entries: ContextEntry[] = [];
  const paths = new Map<string, string>();
  const inodes = new Map<string, string>();
  let totalBytes = 0;
  const walk = (dir: string) => {
    for (const name of readdirRaw(dir).sort()) {
      const real = join(dir, name);
      const rel = relative(contextDir, real).split(sep).join('/');
      const st = lstatSync(fsPath(real), { bigint: true });
      const excluded = matcher.matches(rel);
      if (excluded && !(st.isDirectory() && matcher.mayIncludeBelow(rel))) continue;
      // The sync protocol carries names as UTF-8 strings: refuse clearly rather than send a different name.
      if (hasRawBytes(name)) throw new UserError(`context file ${displayName(rel)}: its name is not UTF-8, which a remote builder cannot receive yet (rename it, exclude it in .dockerignore, or build locally)`);
      const base = { path: rel, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime_ns: String(st.mtimeNs), size: '0', digest: '', link_target: '', hardlink_to: '' };
      if (st.isDirectory()) {
        if (!excluded) entries.push({ ...base, kind: 'DIR' });
        walk(real);
      } else if (st.isSymbolicLink()) {
        entries.push({ ...base, kind: 'SYMLINK', link_target: readlinkSync(real) });
      } else if (st.isFile()) {
        const inode = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1n ? inodes.get(inode) : undefined;
        if (first) {
          entries.push({ ...base, kind: 'FILE', hardlink_to: first });
          continue;
        }
        if (st.nlink > 1n) inodes.set(inode, rel);
        const digest = `sha256:${index.hash(real)}`;
        paths.set(digest, real);
        totalBytes += Number(st.size);
        entries.push({ ...base, kind: 'FILE', size: String(st.size), digest });
      }
      // sockets, fifos and devices are not part of a build context
    }
  };
  walk(contextDir);
  await index.save();
  return { entries, paths, totalBytes, ignorePatterns: ignore?.patterns };
}

export function sha256File(path: string): string {
  return `sha256:${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
}
