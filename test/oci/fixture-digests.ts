// Digests of the busybox fixture, read from its OCI layout, for tests to compare registry results with.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxFixture } from '../helpers/fixtures.js';
import type { ImageIndex, ImageManifest } from '../../base/oci/types.js';

export interface FixturePlatform {
  manifestDigest: string;
  manifest: ImageManifest;
}

export function fixtureDigests(): { layout: string; indexDigest: string; amd64: FixturePlatform; arm64: FixturePlatform } {
  const { ociLayout } = busyboxFixture();
  const top = JSON.parse(readFileSync(join(ociLayout, 'index.json'), 'utf8')) as ImageIndex;
  const indexDigest = top.manifests[0]!.digest;
  const blob = (d: string) => readFileSync(join(ociLayout, 'blobs', 'sha256', d.slice(7)), 'utf8');
  const inner = JSON.parse(blob(indexDigest)) as ImageIndex;
  const of = (arch: string): FixturePlatform => {
    const d = inner.manifests.find((m) => m.platform?.architecture === arch)!;
    return { manifestDigest: d.digest, manifest: JSON.parse(blob(d.digest)) as ImageManifest };
  };
  return { layout: ociLayout, indexDigest, amd64: of('amd64'), arm64: of('arm64') };
}
