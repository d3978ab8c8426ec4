// The op implementations the solver dispatches to, by op kind (sources by their scheme).
import type { SourceOp } from '../graph/ops.js';
import type { OpImpl } from '../op.js';
import type { OpRegistry } from '../solver.js';
import { SolveError } from '../op.js';
import { sourceImageOp } from './source-image.js';
import { sourceLocalOp } from './source-local.js';
import { sourceHttpOp } from './source-http.js';
import { sourceOciLayoutOp } from './source-oci-layout.js';
import { execOp } from './exec.js';
import { mergeOp } from './merge.js';
import { fileOp } from './file-op/index.js';

function sourceFor(op: SourceOp): OpImpl<SourceOp> {
  const scheme = op.identifier.slice(0, op.identifier.indexOf('://'));
  switch (scheme) {
    case 'docker-image':
      return sourceImageOp;
    case 'local':
      return sourceLocalOp;
    case 'http':
    case 'https':
      return sourceHttpOp;
    case 'oci-layout':
      return sourceOciLayoutOp;
    default:
      throw new SolveError(`unsupported source ${op.identifier}`);
  }
}

const sourceOp: OpImpl<SourceOp> = {
  cacheMap: (op, ctx) => sourceFor(op).cacheMap(op, ctx),
  exec: (op, inputs, ctx) => sourceFor(op).exec(op, inputs, ctx),
};

export const defaultOps: OpRegistry = { source: sourceOp, exec: execOp, file: fileOp, merge: mergeOp };
