// The files of an image archive (OCI layout, docker tar) as a list of entries, written either as a
// deterministic tar stream (sorted names, fixed mtime, uid/gid 0, fixed modes; kiln's tar writer) or into
// a directory. The layer blobs inside are copied as they are: their tars keep every attribute.
import { copyFileSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { ChunkedOutput, TarWriter, writableSink } from '../../cache/layers/tar-writer.js';
import { newHeader, type TarHeader } from '../../cache/layers/tar-header.js';
import type { ContentStore } from '../../cache/content-store.js';
import { parseDigest } from '../../base/oci/digest.js';
import type { Descriptor } from '../../base/oci/types.js';

export type ArchiveEntry =
  | { path: string; kind: 'dir' }
  | { path: string; kind: 'file'; bytes: Buffer }
  /** A blob copied from the content store. */
  | { path: string; kind: 'blob'; digest: string; size: number };

/** `blobs/sha256/<hex>` */
export function blobPath(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

/** Blob entries (plus their directories) for a set of descriptors; duplicates collapse. */
export function blobEntries(descs: Iterable<Descriptor>): ArchiveEntry[] {
  const out: ArchiveEntry[] = [
    { path: 'blobs', kind: 'dir' },
    { path: 'blobs/sha256', kind: 'dir' },
  ];
  for (const d of descs) out.push({ path: blobPath(d.digest), kind: 'blob', digest: d.digest, size: d.size });
  return out;
}

/** Sorted by path, one entry per path (the first wins). */
function normalise(entries: ArchiveEntry[]): ArchiveEntry[] {
  const byPath = new Map<string, ArchiveEntry>();
  for (const e of entries) if (!byPath.has(e.path)) byPath.set(e.path, e);
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

// Blobs are immutable content: read-only, as containerd's archive exporter writes them.
const modeOf = (e: ArchiveEntry) => (e.kind === 'dir' ? 0o755 : e.kind === 'blob' ? 0o444 : 0o644);

/** Ends `out` and waits until everything is written. */
function endOf(out: Writable): Promise<void> {
  return new Promise<void>((res, rej) => {
    out.once('error', rej);
    out.end(() => res());
  });
}

/** Writes the entries as a tar to `out` (which is ended). `mtime` in seconds since the epoch. */
export async function writeArchiveTar(entries: ArchiveEntry[], content: ContentStore, out: Writable, mtime = 0): Promise<void> {
  const output = new ChunkedOutput(writableSink(out));
  const tar = new TarWriter(output);
  const header = (e: ArchiveEntry, size: number): TarHeader =>
    newHeader({ name: e.kind === 'dir' ? e.path + '/' : e.path, type: e.kind === 'dir' ? 'dir' : 'file', mode: modeOf(e), size, mtime: { sec: mtime, nsec: 0 } });
  try {
    for (const e of normalise(entries)) {
      if (e.kind === 'dir') {
        tar.writeHeader(header(e, 0));
      } else if (e.kind === 'file') {
        tar.writeHeader(header(e, e.bytes.length));
        output.append(e.bytes);
        tar.padData(e.bytes.length);
      } else {
        tar.writeHeader(header(e, e.size));
        let n = 0;
        // openVerified fails at the end if the store's copy is corrupt: never ship a bad blob silently.
        for await (const chunk of content.openVerified(e.digest)) {
          n += (chunk as Buffer).length;
          output.append(chunk as Buffer);
          if (output.pendingBytes > 0) await output.drain();
        }
        if (n !== e.size) throw new Error(`blob ${e.digest} is ${n} bytes, not the ${e.size} its descriptor says`);
        tar.padData(e.size);
      }
      if (output.pendingBytes > 0) await output.drain();
    }
    tar.finish();
    await output.end();
    await endOf(out);
  } catch (err) {
    // A half-written archive must not look finished to whoever reads `out`.
    out.destroy(err as Error);
    throw err;
  }
}

/** Writes the entries under `dir` (created if needed; files of the same names are replaced). */
export function writeArchiveDir(entries: ArchiveEntry[], content: ContentStore, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const e of normalise(entries)) {
    const target = join(dir, e.path);
    if (e.kind === 'dir') {
      mkdirSync(target, { recursive: true });
      continue;
    }
    mkdirSync(dirname(target), { recursive: true });
    if (e.kind === 'file') {
      writeFileSync(target, e.bytes, { mode: 0o644 });
    } else {
      copyFileSync(content.path(e.digest), target);
      chmodSync(target, 0o644);
    }
  }
}
