// The SBOM predicate: an SPDX 2.3 JSON document listing the packages found in the image's root filesystem.
import { createHash } from 'node:crypto';
import type { FoundPackage } from './types.js';

const SPDX_LICENSE_EXPR = /^\(?[A-Za-z0-9.+-]+(?:\)? (?:AND|OR|WITH) \(?[A-Za-z0-9.+-]+)*\)?$/;

function spdxId(p: FoundPackage): string {
  const h = createHash('sha256').update(`${p.purl}\0${p.location}`).digest('hex').slice(0, 16);
  return `SPDXRef-Package-${p.type}-${p.name.replace(/[^A-Za-z0-9.-]/g, '-')}-${h}`;
}

export interface SpdxOptions {
  /** What the document describes, e.g. the image name or `image`. */
  name: string;
  /** ISO time of creation (SOURCE_DATE_EPOCH when set, so the document is reproducible). */
  created: string;
  tool: string;
}

export function spdxDocument(packages: FoundPackage[], opts: SpdxOptions): Record<string, unknown> {
  const pkgs = packages.map((p) => ({
    name: p.name,
    SPDXID: spdxId(p),
    versionInfo: p.version,
    ...(p.supplier ? { supplier: `Person: ${p.supplier.replace(/\n/g, ' ')}` } : {}),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: p.license && SPDX_LICENSE_EXPR.test(p.license) ? p.license : 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    sourceInfo: `acquired package info from ${p.type === 'deb' ? 'DPKG DB' : p.type === 'apk' ? 'APK DB' : p.type === 'npm' ? 'npm package metadata' : 'Python package metadata'}: ${p.location}`,
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
  }));
  const namespaceSeed = createHash('sha256').update(JSON.stringify(pkgs.map((p) => p.SPDXID))).digest('hex');
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: opts.name,
    documentNamespace: `https://kiln.dev/spdxdocs/${encodeURIComponent(opts.name)}-${namespaceSeed}`,
    creationInfo: { created: opts.created, creators: [`Tool: ${opts.tool}`] },
    packages: pkgs,
    relationships: pkgs.map((p) => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: p.SPDXID })),
  };
}
