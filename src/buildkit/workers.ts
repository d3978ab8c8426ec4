// This node as BuildKit describes a worker (ListWorkers, Info, the gateway's Ping): `buildx inspect`
// and `buildx ls` show its name, platforms and version from these records.
import { KILN_VERSION } from '../protocol/builder.js';
import { normalizePlatform, parsePlatform } from '../../base/oci/platform.js';

/** BuildKit API level kiln speaks, with kiln's own version as build metadata (semver compares the first part). */
export const BUILDKIT_API_VERSION = `v0.25.0+kiln.${KILN_VERSION}`;

export function versionRecord() {
  return { package: 'kiln', version: BUILDKIT_API_VERSION, revision: '' };
}

export function platformRecord(p: string) {
  const n = normalizePlatform(parsePlatform(p));
  return { OS: n.os, Architecture: n.architecture, Variant: n.variant ?? '', OSVersion: '', OSFeatures: [] as string[] };
}

export function workerRecords(name: string, platforms: string[]) {
  return [
    {
      ID: `${name}-kiln`,
      Labels: {
        'org.mobyproject.buildkit.worker.executor': 'kiln-sandbox',
        'org.mobyproject.buildkit.worker.hostname': name,
        'org.mobyproject.buildkit.worker.snapshotter': 'overlayfs',
        'dev.kiln.worker': 'kiln',
      },
      platforms: platforms.map(platformRecord),
      GCPolicy: [],
      BuildkitVersion: versionRecord(),
    },
  ];
}
