// Which RUN cache mounts a --cache-to carries: `cache-mounts=true` (all of the build's), or a list of ids
// (`"cache-mounts=npm,apt"` quoted in buildx's CSV, or `cache-mounts=npm;apt`). A mount that any RUN of
// the build uses next to a secret or an SSH agent is left out (its files may hold what the RUN read from
// them) unless the exporter also says `cache-mounts-with-secrets=true`.
import { UserError } from '../../base/errors.js';
import type { Definition } from '../../solver/graph/ops.js';

export class CacheMountsOptionError extends UserError {}

export interface CacheMountSelection {
  ids: string[];
  warnings: string[];
}

/** Checks the cache-mounts attributes of a --cache-to (a bad value is one user-facing line). */
export function cacheMountsOption(attrs: Record<string, string>): { all: boolean; ids: string[]; withSecrets: boolean } {
  const raw = attrs['cache-mounts'];
  const secrets = attrs['cache-mounts-with-secrets'];
  if (secrets !== undefined && secrets !== 'true' && secrets !== 'false') {
    throw new CacheMountsOptionError(`invalid value "${secrets}" for --cache-to cache-mounts-with-secrets: expected true or false`);
  }
  const withSecrets = secrets === 'true';
  if (raw === undefined || raw === 'false') return { all: false, ids: [], withSecrets };
  if (raw === 'true') return { all: true, ids: [], withSecrets };
  const ids = raw.split(/[,;]/).map((s) => s.trim()).filter(Boolean);
  if (ids.length === 0) throw new CacheMountsOptionError(`invalid value "${raw}" for --cache-to cache-mounts: expected true, false or cache mount ids`);
  return { all: false, ids, withSecrets };
}

export function cacheMountsToExport(def: Definition, attrs: Record<string, string>): CacheMountSelection {
  const opt = cacheMountsOption(attrs);
  const warnings: string[] = [];
  if (!opt.all && opt.ids.length === 0) return { ids: [], warnings };
  // Every cache id of the build, and the first RUN that uses it with a secret or an SSH agent.
  const used = new Map<string, { withSecret?: string }>();
  for (const v of def.vertices) {
    if (v.op.kind !== 'exec') continue;
    const credentialed = v.op.mounts.some((m) => m.type === 'secret' || m.type === 'ssh');
    for (const m of v.op.mounts) {
      if (m.type !== 'cache' || !m.cache) continue;
      const u = used.get(m.cache.id) ?? {};
      if (credentialed && !u.withSecret) u.withSecret = v.meta.description ?? v.op.args.join(' ');
      used.set(m.cache.id, u);
    }
  }
  const wanted = opt.all ? [...used.keys()] : opt.ids;
  const ids: string[] = [];
  for (const id of [...new Set(wanted)].sort()) {
    const u = used.get(id);
    if (!u) {
      warnings.push(`--cache-to cache-mounts: no RUN of this build mounts a cache with id ${JSON.stringify(id)}: nothing exported for it`);
      continue;
    }
    if (u.withSecret && !opt.withSecrets) {
      warnings.push(`cache mount ${JSON.stringify(id)} not exported: ${u.withSecret} also mounts a secret or SSH agent (add cache-mounts-with-secrets=true to --cache-to to export it anyway)`);
      continue;
    }
    ids.push(id);
  }
  return { ids, warnings };
}
