// The files of an image archive (OCI layout, docker tar) as a list of entries, written either as a
// deterministic tar stream (sorted names, fixed mtime, uid/gid 0, fixed modes) or into a directory.
import { copyFileSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import * as tar from 'tar-stream';
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

/** Writes `chunk` to a (Node or streamx) writable, waiting when it asks for a pause. */
async function writeChunk(w: { write(c: Buffer): boolean; once(ev: 'drain', f: () => void): unknown }, chunk: Buffer): Promise<void> {
  if (!w.write(chunk)) await new Promise<void>((res) => w.once('drain', res));
}

/**
 * Copies tar-stream's (streamx) output into a Node writable, then ends it and waits for it to finish. If
 * `out` fails, the pack is destroyed too, so that whoever is adding entries stops instead of waiting.
 */
export async function pumpTar(pack: tar.Pack, out: Writable): Promise<void> {
  try {
    for await (const chunk of pack as AsyncIterable<Buffer>) await writeChunk(out, chunk);
    await new Promise<void>((res, rej) => {
      out.once('error', rej);
      out.end(() => res());
    });
  } catch (err) {
    pack.destroy(err as Error);
    throw err;
  }
}

/**
 * Runs `fill` to add entries to a new tar pack streamed to `out`, then finishes it. On failure the pack
 * and `out` are destroyed: a half-written archive must not look finished to whoever reads `out`.
 */
export async function packTo(out: Writable, fill: (pack: tar.Pack) => Promise<void>): Promise<void> {
  const pack = tar.pack();
  const pumped = pumpTar(pack, out);
  try {
    await fill(pack);
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await pumped.catch(() => {});
    out.destroy(err as Error);
    throw err;
  }
  await pumped;
}

/** Writes the entries as a tar to `out` (which is ended). `mtime` in seconds since the epoch. */
export async function writeArchiveTar(entries: ArchiveEntry[], content: ContentStore, out: Writable, mtime = 0): Promise<void> {
  const date = new Date(mtime * 1000);
  await packTo(out, async (pack) => {
    const entry = (header: Parameters<tar.Pack['entry']>[0], body?: Buffer) =>
      new Promise<void>((res, rej) => {
        const cb = (err?: Error | null) => (err ? rej(err) : res());
        if (body) pack.entry(header, body, cb);
        else pack.entry(header, cb);
      });
    for (const e of normalise(entries)) {
      const header = { name: e.path, mode: modeOf(e), mtime: date, uid: 0, gid: 0, uname: '', gname: '' };
      if (e.kind === 'dir') {
        await entry({ ...header, name: e.path + '/', type: 'directory' });
      } else if (e.kind === 'file') {
        await entry({ ...header, type: 'file', size: e.bytes.length }, e.bytes);
      } else {
        let sink!: ReturnType<tar.Pack['entry']>;
        const written = new Promise<void>((res, rej) => {
          sink = pack.entry({ ...header, type: 'file', size: e.size }, (err) => (err ? rej(err) : res()));
        });
        // A corrupt blob fails the read below and destroys the pack: this entry then fails too, after
        // the error is already on its way; that second report must not be an unhandled error.
        written.catch(() => {});
        (sink as unknown as { on(ev: 'error', f: () => void): void }).on('error', () => {});
        // openVerified fails at the end if the store's copy is corrupt: never ship a bad blob silently.
        for await (const chunk of content.openVerified(e.digest)) await writeChunk(sink, chunk as Buffer);
        (sink as unknown as { end(): void }).end();
        await written;
      }
    }
  });
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
