// Snapshots a cache mount dir for --cache-to: every file's content goes into the content store under its
// digest (a file already there is hashed, not copied again), and the tree document describes the rest.
// RUNs wrote this dir, so nothing in it is trusted: the walk never follows a symlink, and every name is
// opened relative to its parent's open fd (`/proc/self/fd/N/name`, O_NOFOLLOW), so a dir swapped for a
// symlink while kiln reads cannot take it outside the cache dir.
import { DigestCounter, digestingStream } from '../../base/oci/digest.js';
import { closeSync, constants, createReadStream, createWriteStream, fstatSync, lstatSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { State } from '../state.js';
import type { CacheBlob } from './format.js';
import type { ImportedCache } from './imported.js';
import { decodeMountTree, encodeMountTree, MOUNT_FILE_MEDIA_TYPE, MOUNT_TREE_MEDIA_TYPE, type MountEntry, type MountTree } from './mount-tree.js';

export interface MountSnapshot {
  id: string;
  tree: CacheBlob;
  /** Distinct file contents, each a blob in the content store. */
  files: CacheBlob[];
  fileCount: number;
  bytes: number;
}

const fdPath = (fd: number, name?: string) => (name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`);

async function hashFd(fd: number): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream('', { fd, autoClose: false, start: 0 }), async function* (src) {
    for await (const chunk of src) h.update(chunk as Buffer);
  });
  return `sha256:${h.digest('hex')}`;
}

/** Copies an open file into the content store; the digest is of the bytes copied (the file may change). */
async function ingestFd(state: State, fd: number): Promise<{ digest: string; size: number }> {
  return state.content.ingestComputed(async (tmp) => {
    const copied = new DigestCounter();
    await pipeline(createReadStream('', { fd, autoClose: false, start: 0 }), digestingStream(copied), createWriteStream(tmp));
    return { digest: copied.digest(), size: copied.bytes };
  });
}

export async function snapshotCacheMount(state: State, id: string, dir: string): Promise<MountSnapshot> {
  const entries: MountEntry[] = [];
  const files = new Map<string, CacheBlob>();
  let bytes = 0;
  const walk = async (dirFd: number, prefix: string) => {
    const names = readdirSync(fdPath(dirFd)).sort();
    for (const name of names) {
      const path = prefix ? `${prefix}/${name}` : name;
      let st;
      try {
        st = lstatSync(fdPath(dirFd, name));
      } catch {
        continue; // removed while we read
      }
      const owner = { uid: st.uid, gid: st.gid };
      if (st.isSymbolicLink()) {
        entries.push({ path, type: 'symlink', ...owner, target: readlinkSync(fdPath(dirFd, name)) });
      } else if (st.isDirectory()) {
        let fd: number;
        try {
          fd = openSync(fdPath(dirFd, name), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
        } catch {
          continue; // replaced by something else while we read: left out
        }
        try {
          const fst = fstatSync(fd);
          entries.push({ path, type: 'dir', mode: fst.mode & 0o7777, uid: fst.uid, gid: fst.gid, mtime: Math.floor(fst.mtimeMs) });
          await walk(fd, path);
        } finally {
          closeSync(fd);
        }
      } else if (st.isFile()) {
        let fd: number;
        try {
          fd = openSync(fdPath(dirFd, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        } catch {
          continue;
        }
        try {
          const fst = fstatSync(fd);
          if (!fst.isFile()) continue;
          let digest = await hashFd(fd);
          let size = fst.size;
          if (!state.content.has(digest)) ({ digest, size } = await ingestFd(state, fd));
          else size = state.content.size(digest);
          entries.push({ path, type: 'file', mode: fst.mode & 0o7777, uid: fst.uid, gid: fst.gid, mtime: Math.floor(fst.mtimeMs), size, digest });
          bytes += size;
          // A file is its own uncompressed content: its diffID is its digest.
          if (!files.has(digest)) files.set(digest, { digest, size, mediaType: MOUNT_FILE_MEDIA_TYPE, diffId: digest });
        } finally {
          closeSync(fd);
        }
      }
      // fifos, sockets and devices are not cache contents: left out.
    }
  };
  const rootFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    await walk(rootFd, '');
  } finally {
    closeSync(rootFd);
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const tree: MountTree = { version: 1, id, entries };
  const { gz } = encodeMountTree(tree);
  const digest = state.content.putBytes(gz);
  return {
    id,
    tree: { digest, size: gz.length, mediaType: MOUNT_TREE_MEDIA_TYPE, diffId: digest },
    files: [...files.values()],
    fileCount: entries.filter((e) => e.type === 'file').length,
    bytes,
  };
}

/**
 * A mount this machine never filled (its RUNs were cached here) but an imported cache carries: the export
 * names the imported tree and files again, so the next importer still gets them. Only the tree is
 * downloaded; a file blob is fetched only if the export target lacks it (`fetchMissing`).
 */
export async function forwardImportedMount(state: State, imported: ImportedCache, id: string): Promise<{ snapshot: MountSnapshot; fetchMissing: Map<string, () => Promise<void>> } | undefined> {
  const found = imported.mounts.get(id);
  if (!found) return undefined;
  await imported.fetchBlob(found.mount.tree, found.fetcher);
  const tree = decodeMountTree(state.content.readBytes(found.mount.tree.digest), found.fetcher.where);
  const files = new Map<string, CacheBlob>();
  const fetchMissing = new Map<string, () => Promise<void>>();
  let bytes = 0;
  let fileCount = 0;
  for (const e of tree.entries) {
    if (e.type !== 'file') continue;
    fileCount++;
    bytes += e.size;
    if (files.has(e.digest)) continue;
    const blob: CacheBlob = { digest: e.digest, size: e.size, mediaType: MOUNT_FILE_MEDIA_TYPE, diffId: e.digest };
    files.set(e.digest, blob);
    fetchMissing.set(e.digest, () => imported.fetchBlob(blob, found.fetcher));
  }
  return { snapshot: { id, tree: found.mount.tree, files: [...files.values()], fileCount, bytes }, fetchMissing };
}
