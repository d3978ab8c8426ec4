// Runs the --output exporters for a finished build: the local image store (default), OCI or docker
// archives, a local directory or tar of the root filesystem. `dest=-` writes to stdout.
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { State } from '../../cache/state.js';
import { parseReference } from '../../base/oci/reference.js';
import type { Descriptor } from '../../base/oci/types.js';
import type { ExportImage, ExportRequest } from '../export/types.js';
import { exportToImageStore } from '../export/image-store.js';
import { writeImageManifests } from '../export/manifests.js';
import { writeOciArchive } from '../export/oci-archive.js';
import { writeDockerArchive, checkDockerExportable } from '../export/docker-archive.js';
import { writeRootfsDir, writeRootfsTar } from '../export/rootfs.js';
import { localExportOptions } from '../export/local-dir.js';
import { pushImage, type PushEvent } from '../export/registry.js';
import { UserError } from '../../base/errors.js';
import { RegistryError } from '../../base/oci/registry/errors.js';
import type { RegistryClient } from '../../base/oci/registry/client.js';

export type OutputSpec =
  | { type: 'image'; names: string[]; push: boolean; attrs: Record<string, string> }
  | { type: 'oci' | 'docker' | 'tar'; dest: string; names: string[]; attrs: Record<string, string> }
  | { type: 'local'; dest: string; attrs: Record<string, string> };

export interface ExportOutcome {
  type: OutputSpec['type'];
  /** The image digest (manifest, or index for several platforms) where one was written. */
  digest?: string;
  names?: string[];
  dest?: string;
}

function normalisedNames(names: string[]): string[] {
  return names.map((n) => parseReference(n).toString());
}

function requestFor(images: ExportImage[], names: string[], attrs: Record<string, string>, sourceDateEpoch?: number): ExportRequest {
  const oci = attrs['oci-mediatypes'];
  return {
    images,
    names: normalisedNames(names),
    ociMediaTypes: oci === undefined ? true : oci === 'true',
    sourceDateEpoch,
  };
}

async function toDest(dest: string, write: (out: Writable) => Promise<unknown>): Promise<void> {
  if (dest === '-') {
    if (process.stdout.isTTY) throw new UserError('refusing to write an archive to a terminal: use dest=FILE or redirect stdout');
    await write(process.stdout);
    return;
  }
  const path = resolve(dest);
  mkdirSync(dirname(path), { recursive: true });
  // Written beside the destination under a temporary name and renamed when complete: a failed export
  // (a corrupt blob, ENOSPC) leaves the previous file in place, and its stream error is caught here.
  const tmp = join(dirname(path), `.${basename(path)}.kiln-${randomBytes(6).toString('hex')}.tmp`);
  const out = createWriteStream(tmp, { flags: 'wx' });
  const closed = finished(out);
  closed.catch(() => {}); // awaited below; an early failure must not be an unhandled rejection
  try {
    await write(out);
    if (!out.writableFinished) out.end();
    await closed;
    renameSync(tmp, path);
  } catch (err) {
    out.destroy();
    await closed.catch(() => {});
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** A manifest PUT refused because of its (OCI) media type: 415, or 400 MANIFEST_INVALID / unsupported. */
function refusesOciManifests(err: unknown): boolean {
  if (!(err instanceof RegistryError)) return false;
  if (err.status === 415) return true;
  return err.status === 400 && (err.code === 'MANIFEST_INVALID' || err.code === 'UNSUPPORTED') && /manifest|media ?type/i.test(err.message);
}

export async function runExports(
  state: State,
  images: ExportImage[],
  outputs: OutputSpec[],
  opts: {
    sourceDateEpoch?: number;
    layerBlobsOptional?: boolean;
    onPush?: (e: PushEvent) => void;
    onWarning?: (message: string) => void;
    /** Layers known only from an imported cache: their blobs are fetched (or mounted) when pushed. */
    fetchBlob?: (digest: string) => Promise<void>;
    /** The build's registry client (its credentials: on kiln serve, the tenant's). */
    registry?: RegistryClient;
  } = {},
): Promise<ExportOutcome[]> {
  const results: ExportOutcome[] = [];
  for (const o of outputs) {
    switch (o.type) {
      case 'image': {
        if (o.push && o.names.length === 0) throw new UserError('--push needs a name: add -t REGISTRY/REPO:TAG (or name= in --output)');
        // A pushed image whose layers stay in the registry (imported cache) is not kept in the local store:
        // `kiln run` could not find its layers here.
        const remoteOnly = o.push && opts.fetchBlob !== undefined;
        const req = { ...requestFor(images, o.names, o.attrs, opts.sourceDateEpoch), layerBlobsOptional: opts.layerBlobsOptional || remoteOnly };
        let written = remoteOnly ? writeImageManifests(req, state.content) : (await exportToImageStore(req, state)).written;
        if (o.push) {
          try {
            await pushImage(req, written, state.content, { onEvent: opts.onPush, fetchBlob: opts.fetchBlob, client: opts.registry });
          } catch (err) {
            // A registry that refuses OCI manifests gets Docker schema 2 ones (a manifest list for several
            // platforms), unless the user asked for OCI media types explicitly.
            if (!(o.attrs['oci-mediatypes'] === undefined && req.ociMediaTypes && refusesOciManifests(err))) throw err;
            opts.onWarning?.(`${(err as Error).message}; pushing Docker media types instead (set oci-mediatypes=false to skip this try)`);
            const dockerReq = { ...req, ociMediaTypes: false };
            written = remoteOnly ? writeImageManifests(dockerReq, state.content) : (await exportToImageStore(dockerReq, state)).written;
            await pushImage(dockerReq, written, state.content, { onEvent: opts.onPush, fetchBlob: opts.fetchBlob, client: opts.registry });
          }
        }
        results.push({ type: 'image', digest: written.root.digest, names: req.names });
        break;
      }
      case 'oci':
      case 'docker': {
        // A docker archive has no index to hold attestations: they are left out, as BuildKit's docker exporter does.
        const req = requestFor(o.type === 'docker' ? images.map(({ attestations: _a, ...img }) => img) : images, o.names, o.attrs, opts.sourceDateEpoch);
        if (o.type === 'docker') checkDockerExportable(req);
        let root: Descriptor | undefined;
        await toDest(o.dest, async (out) => {
          const written = o.type === 'oci' ? await writeOciArchive(req, state.content, out) : await writeDockerArchive(req, state.content, out);
          root = written.root;
        });
        results.push({ type: o.type, digest: root?.digest, dest: o.dest, names: req.names });
        break;
      }
      case 'tar': {
        const req = requestFor(images, [], o.attrs, opts.sourceDateEpoch);
        await toDest(o.dest, (out) => writeRootfsTar(req, state.content, out));
        results.push({ type: 'tar', dest: o.dest });
        break;
      }
      case 'local': {
        const req = requestFor(images, [], o.attrs, opts.sourceDateEpoch);
        const kept = await writeRootfsDir(req, state.content, resolve(o.dest), localExportOptions(o.attrs));
        if (kept.devicesSkipped || kept.specialBitsDropped) {
          opts.onWarning?.(`type=local: ${kept.devicesSkipped} device node(s) skipped, setuid/setgid dropped from ${kept.specialBitsDropped} file(s) (preserve-special=true keeps them)`);
        }
        results.push({ type: 'local', dest: o.dest });
        break;
      }
    }
  }
  // The image digest is known even when only files were exported (for --iidfile / metadata).
  if (!results.some((r) => r.digest) && images.length) {
    const written = writeImageManifests({ ...requestFor(images, [], {}, opts.sourceDateEpoch), layerBlobsOptional: opts.layerBlobsOptional }, state.content);
    results.push({ type: 'image', digest: written.root.digest, names: [] });
  }
  return results;
}
