// Entitlements (BuildKit's names): what a build may do beyond the default sandbox. A RUN on the host's
// network needs `network.host`; `RUN --security=insecure` needs `security.insecure`. The client grants
// them (`kiln build --allow …`); a builder (kiln serve) may refuse to. Checked for the whole graph before
// anything runs, so a cached step cannot slip past.
import type { Definition } from './graph/ops.js';
import { SolveError } from './op.js';

export const ENTITLEMENTS = ['network.host', 'security.insecure'] as const;
export type Entitlement = (typeof ENTITLEMENTS)[number];

/** What a build may do: the entitlements granted, and those asked for but refused by the builder's config. */
export interface EntitlementGrant {
  granted: readonly string[];
  refused?: readonly string[];
  /** Where the refusal comes from, for the message (e.g. the config file). */
  by?: string;
}

export function checkEntitlements(def: Definition, allowed: readonly string[] | EntitlementGrant, defaultNetwork?: string): void {
  const grant: EntitlementGrant = Array.isArray(allowed) ? { granted: allowed } : (allowed as EntitlementGrant);
  const need = (name: Entitlement, loc: string, what: string) => {
    if (grant.granted.includes(name)) return;
    if (grant.refused?.includes(name)) throw new SolveError(`${loc}${what} needs the ${name} entitlement, which this builder does not grant (${grant.by ?? 'its configuration'})`);
    throw new SolveError(`${loc}${what} needs the ${name} entitlement: pass --allow ${name}`);
  };
  for (const v of def.vertices) {
    if (v.op.kind !== 'exec') continue;
    const loc = v.meta.location ? `${v.meta.location.file}:${v.meta.location.startLine}: ` : '';
    const host = v.op.network === 'host' || (v.op.network === 'default' && defaultNetwork === 'host');
    if (host) need('network.host', loc, 'network mode "host"');
    if (v.op.security === 'insecure') need('security.insecure', loc, 'RUN --security=insecure');
  }
}
