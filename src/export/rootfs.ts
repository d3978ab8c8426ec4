// type=local and type=tar: the merged root filesystem of the built image(s). Layers are applied in order
// onto a directory (whiteouts honoured); for several platforms each gets a subdirectory named as buildx
// names them (linux_amd64, linux_arm64, linux_arm_v7).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { ContentStore } from '../../cache/content-store.js';
import { formatPlatform, normalizePlatform } from '../../base/oci/platform.js';
import type { Platform } from '../../base/oci/types.js';
import { compressionOfLayer } from '../../cache/layers/decompress.js';
import { intoTree } from './apply-layer.js';
import { TreeTar } from './dir-tar.js';
import { copyTreeInto, type LocalExportOptions, type LocalExportSummary } from './local-dir.js';
import { ExportError, type ExportImage, type ExportRequest } from './types.js';

/** buildx's per-platform directory name: containerd's normalised platform with `/` → `_` (arm64's v8 dropped). */
export function platformDirName(p: Platform): string {
  const n = normalizePlatform(p);
  const variant = n.architecture === 'arm64' && n.variant === 'v8' ? undefined : n.variant;
  return [n.os, n.architecture, ...(variant ? [variant] : [])].join('_');
}

/** Applies the image's layers, in order, onto `dir` (created if missing). Each layer's diffID is checked. */
export async function unpackImage(img: ExportImage, content: ContentStore, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const platform = formatPlatform(normalizePlatform(img.platform));
  await intoTree(dir, async (tree) => {
    for (const [i, layer] of img.layers.entries()) {
      const what = `layer ${i} (${layer.digest}) of the ${platform} image`;
      if (!content.has(layer.digest)) throw new ExportError(`${what} is missing from the content store`);
      const data = content.openVerified(layer.digest);
      try {
        await tree.apply({ data, compression: compressionOfLayer(layer.mediaType), what, diffId: layer.diffId });
      } finally {
        data.destroy(); // close the blob when the layer is known to be bad
      }
    }
  });
}

function dirsFor(req: ExportRequest): { img: ExportImage; sub: string }[] {
  if (req.images.length === 0) throw new ExportError('nothing to export: the build produced no image');
  if (req.images.length === 1) return [{ img: req.images[0]!, sub: '' }];
  const seen = new Set<string>();
  return req.images.map((img) => {
    const sub = platformDirName(img.platform);
    if (seen.has(sub)) throw new ExportError(`two images for platform ${sub} in one export`);
    seen.add(sub);
    return { img, sub };
  });
}

/** The merged tree of each image in `dir`, or one subdirectory per platform, exactly as the layers say. */
async function unpackAll(req: ExportRequest, content: ContentStore, dir: string): Promise<void> {
  for (const { img, sub } of dirsFor(req)) await unpackImage(img, content, sub ? join(dir, sub) : dir);
}

/**
 * type=local: the merged tree in `dir`, or one subdirectory per platform. The layers are merged in a
 * private staging directory (under `opts.tmpDir`, default the system's), then copied into `dir` without
 * ever writing outside it; by default without setuid/setgid bits or device nodes (see local-dir.ts).
 */
export async function writeRootfsDir(
  req: ExportRequest,
  content: ContentStore,
  dir: string,
  opts: Partial<LocalExportOptions> & { tmpDir?: string } = {},
): Promise<LocalExportSummary> {
  dirsFor(req); // a bad request fails before anything is written
  const staging = mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'kiln-local-'));
  try {
    await unpackAll(req, content, staging);
    return await copyTreeInto(staging, dir, { preserveSpecial: opts.preserveSpecial ?? false, owner: opts.owner });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * type=local from a remote builder: its rootfs tar stream, written into `dir` as writeRootfsDir does
 * (merged in private staging first, then copied into `dir` without following symlinks, same policy).
 */
export async function writeRootfsTarToDir(input: Readable, dir: string, opts: Partial<LocalExportOptions> & { tmpDir?: string } = {}): Promise<LocalExportSummary> {
  const staging = mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'kiln-local-'));
  try {
    await intoTree(staging, (tree) => tree.apply({ data: input, compression: 'none', what: 'the exported tree' }));
    return await copyTreeInto(staging, dir, { preserveSpecial: opts.preserveSpecial ?? false, owner: opts.owner });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * type=tar: the same tree as one tar stream on `out` (ended when done). The tree is merged in a temporary
 * directory first (under `opts.tmpDir`, default the system's), since whiteouts in a later layer can remove
 * what an earlier one wrote.
 */
export async function writeRootfsTar(req: ExportRequest, content: ContentStore, out: Writable, opts: { tmpDir?: string } = {}): Promise<void> {
  const work = mkdtempSync(join(opts.tmpDir ?? tmpdir(), 'kiln-rootfs-'));
  try {
    const targets = dirsFor(req);
    // An archive keeps the tree as the image has it (modes, owners, devices): extracting it is a choice
    // the user makes with their own tar, as with docker export.
    await unpackAll(req, content, work);
    const tar = new TreeTar(out);
    try {
      for (const { sub } of targets) {
        if (sub) await tar.dirEntry(join(work, sub), sub);
        await tar.packTree(sub ? join(work, sub) : work, sub ? sub + '/' : '');
      }
      await tar.finish();
      await new Promise<void>((res, rej) => {
        out.once('error', rej);
        out.end(() => res());
      });
    } catch (err) {
      await tar.close();
      // A half-written archive must not look finished to whoever reads `out`.
      out.destroy(err as Error);
      throw err;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
