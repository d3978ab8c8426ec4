// merge ops stack their inputs' layers in order (COPY --link: a copy made on scratch, rebased onto the
// stage). Layers are overlay-form dirs, so stacking needs no copying.
import { createHash } from 'node:crypto';
import type { MergeOp } from '../graph/ops.js';
import type { OpImpl } from '../op.js';
import { layersOf } from '../refs.js';

export const mergeOp: OpImpl<MergeOp> = {
  async cacheMap(_op, ctx) {
    return { digest: `sha256:${createHash('sha256').update('merge').digest('hex')}`, deps: ctx.vertex.inputs.map(() => ({})) };
  },
  async exec(_op, inputs) {
    return { kind: 'layers', layers: inputs.flatMap((r, i) => layersOf(r, `merge input ${i}`)) };
  },
};
