// local://NAME sources: a directory the client shares (the build context). It is read in place; the
// exclude patterns (.dockerignore) travel with the ref so that copies never see excluded files.
import { createHash } from 'node:crypto';
import type { SourceOp } from '../graph/ops.js';
import type { OpImpl } from '../op.js';
import { SolveError } from '../op.js';
import { canonicalJSON } from '../graph/canonical.js';

const PREFIX = 'local://';

export function localExcludes(op: SourceOp): string[] {
  const raw = op.attrs?.excludepatterns;
  return raw ? (JSON.parse(raw) as string[]) : [];
}

export const sourceLocalOp: OpImpl<SourceOp> = {
  async cacheMap(op) {
    // The name and filters only: what is read from the dir is keyed by the ops that read it (content digests).
    // The key names the dir, not its content: volatile, so readers digest what they read on every build.
    return { digest: `sha256:${createHash('sha256').update(canonicalJSON({ local: op.identifier, attrs: op.attrs ?? {} })).digest('hex')}`, deps: [], volatile: true };
  },
  async exec(op, _inputs, ctx) {
    const name = op.identifier.slice(PREFIX.length);
    const path = ctx.env.localDirs[name];
    if (!path) throw new SolveError(`no local directory was shared for "${name}" (build context)`);
    return { kind: 'dir', path, excludes: localExcludes(op) };
  },
};
