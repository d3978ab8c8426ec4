// Which local sources (build contexts) a build's RUN steps mount writable, read from the converted graph:
// an exec mount that is not read-only (`--mount=type=bind,rw`, `readonly=false`, however the Dockerfile
// spelled it: ARG expansion, line continuations, upper case) whose input is a `local://NAME` source.
// kiln serve gives those contexts private copies instead of links to its shared per-tenant store.
import type { Definition } from '../../solver/graph/ops.js';

const LOCAL = 'local://';

/** The NAMEs of `local://NAME` sources some exec op mounts writable. */
export function writableLocalSources(def: Definition): Set<string> {
  const byDigest = new Map(def.vertices.map((v) => [v.digest, v]));
  const out = new Set<string>();
  for (const v of def.vertices) {
    if (v.op.kind !== 'exec') continue;
    for (const m of v.op.mounts) {
      if (m.readonly || m.input < 0) continue;
      const src = byDigest.get(v.inputs[m.input]?.digest ?? '')?.op;
      if (src?.kind === 'source' && src.identifier.startsWith(LOCAL)) out.add(src.identifier.slice(LOCAL.length));
    }
  }
  return out;
}
