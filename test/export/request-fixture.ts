// An ExportRequest made from the busybox fixture (its blobs copied into a fresh ContentStore) plus one
// extra layer made with GNU tar: a whiteout of /etc/group, an opaque /usr/sbin with one new file, and
// files with their own modes, owners, a hard link and a symlink under /opt/app.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from '../../cache/content-store.js';
import { compressLayer } from '../../src/export/compression.js';
import type { ExportImage, ExportLayer, ExportRequest } from '../../src/export/types.js';
import type { LayerCompression } from '../../base/oci/mediatypes.js';
import type { ImageConfig, ImageIndex, ImageManifest } from '../../base/oci/types.js';
import { busyboxFixture } from '../helpers/fixtures.js';

export const EXTRA_MTIME = 1_700_000_000;

export interface Fixture {
  work: string;
  content: ContentStore;
  /** The extra layer's uncompressed tar. */
  extraTar: string;
  amd64: ExportImage;
  arm64: ExportImage;
  /** linux/amd64 only, named docker.io/library/kiln-export-test:latest */
  single: ExportRequest;
  /** linux/amd64 + linux/arm64 */
  multi: ExportRequest;
}

/** The extra layer's tree, made on disk and packed with GNU tar. */
function makeExtraLayer(work: string): string {
  const d = join(work, 'extra');
  mkdirSync(join(d, 'etc'), { recursive: true });
  writeFileSync(join(d, 'etc', '.wh.group'), '');
  mkdirSync(join(d, 'usr', 'sbin'), { recursive: true });
  writeFileSync(join(d, 'usr', 'sbin', '.wh..wh..opq'), '');
  writeFileSync(join(d, 'usr', 'sbin', 'newtool'), '#!/bin/sh\necho new\n');
  chmodSync(join(d, 'usr', 'sbin', 'newtool'), 0o755);
  const app = join(d, 'opt', 'app');
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'run.sh'), '#!/bin/sh\necho hello from kiln\n');
  chownSync(join(app, 'run.sh'), 1000, 1001);
  chmodSync(join(app, 'run.sh'), 0o750);
  linkSync(join(app, 'run.sh'), join(app, 'hard'));
  symlinkSync('run.sh', join(app, 'link'));
  writeFileSync(join(app, 'suid'), 'x');
  chmodSync(join(app, 'suid'), 0o4755);
  chownSync(app, 1000, 1001);
  chmodSync(app, 0o710);
  const tar = join(work, 'extra.tar');
  execFileSync('tar', ['--sort=name', `--mtime=@${EXTRA_MTIME}`, '--numeric-owner', '--format=gnu', '-C', d, '-cf', tar, 'etc', 'opt', 'usr']);
  return tar;
}

function readBlob(layout: string, digest: string): Buffer {
  return readFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)));
}

/** The fixture's image for one architecture, its blobs put into `content`, plus `extra` on top. */
function busyboxImage(layout: string, arch: 'amd64' | 'arm64', content: ContentStore, extra: ExportLayer): ExportImage {
  const top = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as ImageIndex;
  const inner = JSON.parse(readBlob(layout, top.manifests[0]!.digest).toString()) as ImageIndex;
  const desc = inner.manifests.find((m) => m.platform?.architecture === arch)!;
  const manifest = JSON.parse(readBlob(layout, desc.digest).toString()) as ImageManifest;
  const config = JSON.parse(readBlob(layout, manifest.config.digest).toString()) as ImageConfig;
  const layers: ExportLayer[] = manifest.layers.map((l, i) => {
    content.putBytes(readBlob(layout, l.digest), l.digest);
    return { diffId: config.rootfs.diff_ids[i]!, digest: l.digest, size: l.size, mediaType: l.mediaType };
  });
  layers.push(extra);
  return {
    platform: desc.platform!,
    config: {
      ...config,
      created: '2024-01-02T03:04:05Z',
      config: { ...config.config, WorkingDir: '/opt/app', Labels: { 'org.example.b': '2', 'org.example.a': '1' } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: [...(config.history ?? []), { created: '2024-01-02T03:04:05Z', created_by: 'COPY extra /' }],
    },
    layers,
  };
}

export async function makeFixture(opts: { compression?: LayerCompression } = {}): Promise<Fixture> {
  const { ociLayout } = busyboxFixture();
  const work = mkdtempSync(join(tmpdir(), 'kiln-export-'));
  const content = new ContentStore(join(work, 'content'));
  const extraTar = makeExtraLayer(work);
  const c = await compressLayer(extraTar, content, { compression: opts.compression ?? 'gzip' });
  const extra: ExportLayer = { diffId: c.diffId, digest: c.digest, size: c.size, mediaType: c.mediaType };
  const amd64 = busyboxImage(ociLayout, 'amd64', content, extra);
  const arm64 = busyboxImage(ociLayout, 'arm64', content, extra);
  return {
    work,
    content,
    extraTar,
    amd64,
    arm64,
    single: { images: [amd64], names: ['docker.io/library/kiln-export-test:latest'] },
    multi: { images: [amd64, arm64], names: ['docker.io/library/kiln-export-test:multi'] },
  };
}
