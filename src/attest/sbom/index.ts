// SBOM of an image: every package database kiln knows, read from the final root filesystem.
import { scanApk, scanDpkg } from './os-packages.js';
import { scanLanguagePackages } from './lang-packages.js';
import { spdxDocument, type SpdxOptions } from './spdx.js';
import type { FoundPackage, RootfsReader } from './types.js';

export type { FoundPackage, RootfsReader } from './types.js';

/** All packages in the root filesystem, one entry per (purl, location), in a stable order. */
export async function scanPackages(fs: RootfsReader): Promise<FoundPackage[]> {
  const found = [...(await scanDpkg(fs)), ...(await scanApk(fs)), ...(await scanLanguagePackages(fs))];
  const seen = new Set<string>();
  const out: FoundPackage[] = [];
  for (const p of found) {
    const key = `${p.purl}\0${p.location}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(p);
  }
  return out.sort((a, b) => (a.type + a.name + a.version + a.location < b.type + b.name + b.version + b.location ? -1 : 1));
}

export async function sbomPredicate(fs: RootfsReader, opts: SpdxOptions): Promise<Record<string, unknown>> {
  return spdxDocument(await scanPackages(fs), opts);
}
