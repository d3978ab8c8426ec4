// The automatic GC policy, with BuildKit's meaning (buildkitd.toml [[worker.oci.gcpolicy]]):
//   maxUsedSpace  — the most the cache may take; above it, least recently used cache goes
//                   (`keepStorage`, KILN_GC_KEEP_STORAGE, is its older name);
//   minFreeSpace  — GC also removes cache until the state dir's disk has this much free space;
//   reservedSpace — GC never shrinks the cache below this, whatever the other two say.
// Each is a size (10GB, 512MB, 0) or a percentage of the state dir's disk (10%). Unset or 0: no limit.
import { statfsSync } from 'node:fs';
import { UserError } from '../base/errors.js';
import { bytesOf } from '../base/units.js';

export interface GcPolicy {
  maxUsedSpace?: Amount;
  minFreeSpace?: Amount;
  reservedSpace?: Amount;
}

/** Bytes, or a percentage of the disk. */
export type Amount = { bytes: number } | { percent: number };

export const GC_ENV = {
  keepStorage: 'KILN_GC_KEEP_STORAGE',
  maxUsedSpace: 'KILN_GC_MAX_USED_SPACE',
  minFreeSpace: 'KILN_GC_MIN_FREE_SPACE',
  reservedSpace: 'KILN_GC_RESERVED_SPACE',
} as const;

/** Parses one amount; `what` names the flag or variable in the error. */
export function parseAmount(what: string, text: string): Amount {
  const t = text.trim();
  const pct = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(t);
  if (pct && Number(pct[1]) <= 100) return { percent: Number(pct[1]) };
  const bytes = bytesOf(t);
  if (bytes === undefined) throw new UserError(`invalid ${what} "${text}": expected a size like 10GB or 512MB, a percentage of the disk like 10%, or 0`);
  return { bytes };
}

/**
 * The policy from the environment (`kiln serve --gc-*` sets the same variables). Unless KILN_GC_KEEP_STORAGE
 * or KILN_GC_MAX_USED_SPACE says otherwise, the cache may take 20 GB; KILN_GC_KEEP_STORAGE=0 (and no
 * min free space) turns automatic GC off.
 */
export function gcPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): GcPolicy {
  const read = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : parseAmount(name, env[name]!));
  const keep = read(GC_ENV.keepStorage);
  const maxUsed = read(GC_ENV.maxUsedSpace);
  const policy: GcPolicy = {
    maxUsedSpace: maxUsed ?? keep ?? { bytes: 20 * 1024 ** 3 },
    minFreeSpace: read(GC_ENV.minFreeSpace),
    reservedSpace: read(GC_ENV.reservedSpace),
  };
  return policy;
}

const isZero = (a: Amount | undefined) => a === undefined || ('bytes' in a ? a.bytes === 0 : a.percent === 0);

export function policyEnabled(p: GcPolicy): boolean {
  return !isZero(p.maxUsedSpace) || !isZero(p.minFreeSpace);
}

/** The state dir's disk: total and available bytes. */
export function diskOf(path: string): { total: number; free: number } {
  const s = statfsSync(path);
  return { total: s.blocks * s.bsize, free: s.bavail * s.bsize };
}

/**
 * How many bytes the cache may take now, given what it takes (`used`) and the disk: the smallest of the
 * limits, but never below reservedSpace. Infinity when the policy sets no limit.
 */
export function allowedBytes(p: GcPolicy, used: number, disk: { total: number; free: number }, headroom = 0): number {
  const bytes = (a: Amount) => ('bytes' in a ? a.bytes : Math.floor((disk.total * a.percent) / 100));
  let limit = Infinity;
  if (!isZero(p.maxUsedSpace)) limit = Math.min(limit, bytes(p.maxUsedSpace!));
  // Freeing (minFree − free) bytes of cache brings the disk's free space up to minFree.
  if (!isZero(p.minFreeSpace)) limit = Math.min(limit, Math.max(0, used - (bytes(p.minFreeSpace!) - disk.free)));
  // Room for what builds running at once are about to write (cache/leases.ts).
  limit -= headroom;
  if (p.reservedSpace) limit = Math.max(limit, bytes(p.reservedSpace));
  return limit;
}

export function describePolicy(p: GcPolicy): string {
  const show = (a: Amount) => ('bytes' in a ? `${a.bytes} bytes` : `${a.percent}% of the disk`);
  const parts = [];
  if (!isZero(p.maxUsedSpace)) parts.push(`max used ${show(p.maxUsedSpace!)}`);
  if (!isZero(p.minFreeSpace)) parts.push(`min free ${show(p.minFreeSpace!)}`);
  if (!isZero(p.reservedSpace)) parts.push(`reserved ${show(p.reservedSpace!)}`);
  return parts.length ? parts.join(', ') : 'manual (kiln builder prune)';
}
