// The op implementations the solver dispatches to, by op kind (sources by their scheme). A build makes
// its registry with `buildOps`: settings only one op needs (RUN's secrets, network, limits; ADD URL's
// fetch policy) go to that op here, not on the environment every op receives (docs/design.md, op contract).
import type { SourceOp } from '../graph/ops.js';
import type { OpImpl } from '../op.js';
import type { OpRegistry } from '../solver.js';
import { SolveError } from '../op.js';
import { sourceImageOp } from './source-image.js';
import { sourceLocalOp } from './source-local.js';
import { sourceHttpOpWith, type FetchPolicy } from './source-http.js';
import { sourceOciLayoutOp } from './source-oci-layout.js';
import { execOpWith, type RunSettings } from './exec.js';
import { mergeOp } from './merge.js';
import { fileOp } from './file-op/index.js';

function sourceFor(op: SourceOp, http: OpImpl<SourceOp>): OpImpl<SourceOp> {
  const scheme = op.identifier.slice(0, op.identifier.indexOf('://'));
  switch (scheme) {
    case 'docker-image':
      return sourceImageOp;
    case 'local':
      return sourceLocalOp;
    case 'http':
    case 'https':
      return http;
    case 'oci-layout':
      return sourceOciLayoutOp;
    default:
      throw new SolveError(`unsupported source ${op.identifier}`);
  }
}

export type { RunSettings, FetchPolicy };

export interface OpSettings {
  /** What every RUN of the build gets: secrets, ssh, network, hosts, dns, limits. */
  run?: RunSettings;
  /** Where ADD URL may connect. */
  fetch?: FetchPolicy;
}

/** The ops of one build. */
export function buildOps(settings: OpSettings = {}): OpRegistry {
  const http = sourceHttpOpWith(settings.fetch ?? {});
  const source: OpImpl<SourceOp> = {
    cacheMap: (op, ctx) => sourceFor(op, http).cacheMap(op, ctx),
    exec: (op, inputs, ctx) => sourceFor(op, http).exec(op, inputs, ctx),
  };
  return { source, exec: execOpWith(settings.run ?? {}), file: fileOp, merge: mergeOp };
}
