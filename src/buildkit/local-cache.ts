// `--cache-to/--cache-from type=local` as buildx sends them: the directory is the client's, served on the
// session as content store `local:<dir>`. kiln's own local cache carrier (cache/remote) writes and reads
// an OCI layout in a staging dir of the build; this module moves that layout's blobs to and from the
// client's store. On export the client writes index.json itself, from the descriptor kiln returns as
// `cache.manifest`; on import buildx has read index.json and sends the digest it names.
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../base/errors.js';
import { parseManifest } from '../../base/oci/manifest.js';
import { layoutBlobPath, readOciLayout, REF_NAME_ANNOTATION } from '../../base/oci/layout.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../base/oci/mediatypes.js';
import type { Descriptor } from '../../base/oci/types.js';
import type { CacheExportSpec, CacheImportSpec } from '../engine/remote-cache.js';
import { ClientContentStore } from './session-content.js';
import type { ClientSession } from './session-grpc.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** A manifest or index bigger than this is not a cache's. */
const MAX_DOC = 8 * 1024 * 1024;
const STAGED_TAG = 'latest';

/** A local cache export: kiln writes `staging`, the blobs then go to the client's store `local:<dest>`. */
export interface LocalCacheExport {
  dest: string;
  staging: string;
}

export function localExportSpec(attrs: Record<string, string>, staging: string): { spec: CacheExportSpec; pending: LocalCacheExport } {
  if (!attrs.dest) throw new UserError('--cache-to type=local needs dest=DIR');
  return {
    spec: { type: 'local', dest: staging, tag: STAGED_TAG, mode: attrs.mode === 'max' ? 'max' : 'min', attrs },
    pending: { dest: attrs.dest, staging },
  };
}

/**
 * Sends an exported cache's blobs to the client (those its store lacks; the top manifest last, so the
 * store never names a blob it does not hold). Returns the descriptor for `cache.manifest`, or undefined
 * when the export wrote nothing (it failed and the build warned).
 */
export async function sendLocalCache(session: ClientSession, e: LocalCacheExport): Promise<{ descriptor: Descriptor; bytes: number; blobs: number } | undefined> {
  if (!existsSync(join(e.staging, 'index.json'))) return undefined;
  const layout = await readOciLayout(e.staging);
  const top = layout.tags.get(STAGED_TAG);
  if (!top) return undefined;
  if (!ClientContentStore.offered(session)) throw new UserError(`--cache-to type=local,dest=${e.dest}: the client serves no content store on its session`);
  const store = new ClientContentStore(session, `local:${e.dest}`);
  const dir = join(e.staging, 'blobs', 'sha256');
  const digests = readdirSync(dir).filter((f) => /^[a-f0-9]{64}$/.test(f)).map((hex) => `sha256:${hex}`);
  let bytes = 0;
  for (const d of [...digests.filter((x) => x !== top.digest), top.digest]) bytes += await store.writeFrom(layoutBlobPath(e.staging, d), d);
  return { descriptor: { mediaType: top.mediaType, digest: top.digest, size: top.size }, bytes, blobs: digests.length };
}

/**
 * Fetches the cache `--cache-from type=local,src=DIR` names (attrs digest=, read by buildx from the dir's
 * index.json) from the client's store into an OCI layout at `staging`, as kiln's local cache importer
 * reads it. Returns the import spec and what crossed the wire.
 */
export async function fetchLocalCache(session: ClientSession, attrs: Record<string, string>, staging: string): Promise<{ spec: CacheImportSpec; bytes: number; blobs: number }> {
  const src = attrs.src ?? '';
  const digest = attrs.digest ?? '';
  if (!DIGEST.test(digest)) throw new UserError(`--cache-from type=local,src=${src}: no cache digest from the client (index.json has no "latest" cache)`);
  if (!ClientContentStore.offered(session)) throw new UserError(`--cache-from type=local,src=${src}: the client serves no content store on its session`);
  const store = new ClientContentStore(session, `local:${src}`);
  mkdirSync(join(staging, 'blobs', 'sha256'), { recursive: true });
  const seen = new Set<string>();
  let bytes = 0;
  const fetch = async (d: string, size: number | undefined, isDoc: boolean): Promise<Buffer | undefined> => {
    if (!DIGEST.test(d)) throw new UserError(`--cache-from type=local,src=${src}: invalid digest ${d} in the cache`);
    if (isDoc && size !== undefined && size > MAX_DOC) throw new UserError(`--cache-from type=local,src=${src}: manifest ${d} is too big (${size} bytes)`);
    const path = layoutBlobPath(staging, d);
    if (!seen.has(d)) {
      seen.add(d);
      await store.readTo(d, path, size);
      bytes += statSync(path).size;
    }
    return isDoc ? readFile(path) : undefined;
  };
  // The top blob: its size from the store, its kind from its content.
  const size = await store.size(digest);
  if (size === undefined) throw new UserError(`--cache-from type=local,src=${src}: the client's store has no ${digest}`);
  const walk = async (d: string, sz: number | undefined): Promise<string> => {
    const doc = await fetch(d, sz, true);
    const parsed = parseManifest(doc!, { ref: `${src}@${d}` });
    if (parsed.kind === 'index') {
      for (const m of parsed.index.manifests) await walk(m.digest, m.size);
      return OCI_INDEX;
    }
    await fetch(parsed.manifest.config.digest, parsed.manifest.config.size, false);
    for (const l of parsed.manifest.layers) await fetch(l.digest, l.size, false);
    return OCI_MANIFEST;
  };
  const mediaType = await walk(digest, size);
  await writeFile(join(staging, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(staging, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType, digest, size, annotations: { [REF_NAME_ANNOTATION]: STAGED_TAG } }] }));
  return { spec: { type: 'local', src: staging, tag: STAGED_TAG }, bytes, blobs: seen.size };
}
