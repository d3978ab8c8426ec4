// Is a layer a file op just wrote the same as one it wrote before? Used to reuse the earlier layer (its
// snapshot and its known diffID/blob) when a COPY ran again only because a step below it changed: the
// copy's result often does not depend on that step at all.
//
// Same means: the same names everywhere, and for each entry the same type, mode, owner and xattrs;
// regular files the same inode (the new layer hard-linked them from the earlier one, so content and
// times are equal too); symlinks the same target and mtime; devices the same rdev and mtime;
// directories the same mtime — except a directory this copy modified (its mtime is at or after the
// op's start): a fresh copy gives such a dir the time of the build, so the earlier layer's time is as
// good as the new one, as it is for a cached step.
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { FsOps } from '../../../cache/layers/fsops.js';

function sameXattrs(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || !w.equals(v)) return false;
  }
  return true;
}

export async function sameLayerTree(newDir: string, oldDir: string, startedMs: number, fsops: FsOps): Promise<boolean> {
  const startedNs = BigInt(Math.floor(startedMs)) * 1_000_000n;
  const xattrPairs: [string, string][] = [[newDir, oldDir]];
  const walk = (rel: string): boolean => {
    const a = readdirSync(join(newDir, rel)).sort();
    const b = readdirSync(join(oldDir, rel)).sort();
    if (a.length !== b.length || a.some((n, i) => n !== b[i])) return false;
    for (const name of a) {
      const r = rel ? `${rel}/${name}` : name;
      const pa = join(newDir, r);
      const pb = join(oldDir, r);
      const x: BigIntStats = lstatSync(pa, { bigint: true });
      const y: BigIntStats = lstatSync(pb, { bigint: true });
      if (x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid) return false; // mode includes the type
      if (x.isFile()) {
        if (x.ino !== y.ino || x.dev !== y.dev) return false;
        continue;
      }
      if (x.isDirectory()) {
        if (x.mtimeNs !== y.mtimeNs && x.mtimeNs < startedNs) return false;
        xattrPairs.push([pa, pb]);
        if (!walk(r)) return false;
        continue;
      }
      if (x.mtimeNs !== y.mtimeNs || x.rdev !== y.rdev) return false;
      if (x.isSymbolicLink() && readlinkSync(pa) !== readlinkSync(pb)) return false;
      xattrPairs.push([pa, pb]);
    }
    return true;
  };
  if (!walk('')) return false;
  const lists = await Promise.all(xattrPairs.flatMap(([a, b]) => [fsops.llistxattrs(a), fsops.llistxattrs(b)]));
  for (let i = 0; i < lists.length; i += 2) if (!sameXattrs(lists[i]!, lists[i + 1]!)) return false;
  return true;
}
