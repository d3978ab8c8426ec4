// Entitlements (BuildKit's names): what a build may do beyond the default sandbox. A RUN on the host's
// network needs `network.host`; `RUN --security=insecure` needs `security.insecure`. The client grants
// them (`kiln build --allow …`); a builder (kiln serve) may refuse to. Checked for the whole graph before
// anything runs, so a cached step cannot slip past.
import type { Definition } from './graph/ops.js';
import { SolveError } from './op.js';

export const ENTITLEMENTS = ['network.host', 'security.insecure'] as const;
export type Entitlement = (typeof ENTITLEMENTS)[number];

export function checkEntitlements(def: Definition, allowed: readonly string[], defaultNetwork?: string): void {
  for (const v of def.vertices) {
    if (v.op.kind !== 'exec') continue;
    const loc = v.meta.location ? `${v.meta.location.file}:${v.meta.location.startLine}: ` : '';
    const host = v.op.network === 'host' || (v.op.network === 'default' && defaultNetwork === 'host');
    if (host && !allowed.includes('network.host'))
      throw new SolveError(`${loc}network mode "host" needs the network.host entitlement: pass --allow network.host`);
    if (v.op.security === 'insecure' && !allowed.includes('security.insecure'))
      throw new SolveError(`${loc}RUN --security=insecure needs the security.insecure entitlement: pass --allow security.insecure`);
  }
}
