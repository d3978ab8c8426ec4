// Which targets of a build may share one solve: those whose RUN steps see the same settings (secrets,
// ssh agents, network, hosts, DNS, limits, --pull). The solver hands one environment to every op of a
// solve, so a target with other settings gets a solve of its own (after the others, from the same cache:
// the steps it shares with them are cache hits). Without this, every target would run with the first
// target's secrets and network.
import { createHash } from 'node:crypto';
import type { BuildTarget } from './request.js';

/** A digest of what a target's RUN steps see; equal digests may share a solve. */
export function runSettingsKey(t: BuildTarget): string {
  const h = createHash('sha256');
  const secrets = Object.entries(t.secrets ?? {}).sort(([a], [b]) => a.localeCompare(b));
  h.update(JSON.stringify(secrets.map(([id, value]) => [id, createHash('sha256').update(value).digest('hex')])));
  h.update(JSON.stringify(Object.entries(t.ssh ?? {}).sort(([a], [b]) => a.localeCompare(b))));
  h.update(JSON.stringify([t.network === 'none' || t.network === 'host' ? t.network : 'default', t.extraHosts ?? [], t.dns ?? null, t.limits ?? null, !!t.pull]));
  return h.digest('hex');
}

/** The items in groups of equal run settings, each group in request order, groups in order of first appearance. */
export function solveGroups<T>(items: T[], targetOf: (item: T) => BuildTarget): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = runSettingsKey(targetOf(item));
    const g = groups.get(key);
    if (g) g.push(item);
    else groups.set(key, [item]);
  }
  return [...groups.values()];
}
