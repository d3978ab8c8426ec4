// Decodes a client's LLB definition (pb.Definition: marshalled pb.Op messages, the last one the terminal
// op naming the result) and checks its shape before anything runs. The bytes are untrusted: a message
// that does not decode, an input naming an op that is not there or an output the op does not have, a
// cycle, all end the solve with one line naming the op.
import { UserError } from '../../../base/errors.js';
import { codec } from '../proto.js';
import { opDigest } from './digest.js';
import type { PbInput, PbOp, PbOpMetadata, WireDefinition } from './wire.js';

/** Bounds on what one definition may hold (BuildKit has none; these keep a hostile one cheap to refuse). */
const MAX_OPS = 10_000;
const MAX_INPUTS = 1_000;

export class LlbError extends UserError {}

export interface DecodedDefinition {
  ops: Map<string, PbOp>;
  /** The ops the result needs, inputs before their users. */
  order: string[];
  /** The output the terminal op names. */
  result: PbInput;
  metadata: Record<string, PbOpMetadata>;
}

export function shortDigest(d: string): string {
  return d.replace(/^sha256:/, '').slice(0, 12);
}

/** What an op is, for messages: `exec "sh -c …"`, `source docker-image://…`, `file`. */
export function describeOp(digest: string, op: PbOp): string {
  const kind = op.op ?? 'terminal';
  if (op.op === 'source' && op.source) return `source ${JSON.stringify(op.source.identifier.slice(0, 100))} (${shortDigest(digest)})`;
  if (op.op === 'exec' && op.exec?.meta) return `exec ${JSON.stringify(op.exec.meta.args.join(' ').slice(0, 60))} (${shortDigest(digest)})`;
  return `${kind} op ${shortDigest(digest)}`;
}

/** How many results an op has; an input may name output 0 … n-1. */
export function outputCount(op: PbOp): number {
  switch (op.op) {
    case 'exec':
      return Math.max(0, ...(op.exec?.mounts ?? []).map((m) => m.output + 1));
    case 'file':
      return Math.max(0, ...(op.file?.actions ?? []).map((a) => a.output + 1));
    case undefined:
      return 0;
    default:
      return 1;
  }
}

let opCodec: ReturnType<typeof codec<PbOp>> | undefined;

export function decodeDefinition(wire: WireDefinition): DecodedDefinition {
  const defs = wire.def ?? [];
  if (defs.length === 0) throw new LlbError('LLB definition: it has no ops');
  if (defs.length > MAX_OPS) throw new LlbError(`LLB definition: ${defs.length} ops is more than this builder takes (${MAX_OPS})`);
  opCodec ??= codec<PbOp>('pb.Op');
  const ops = new Map<string, PbOp>();
  let last = '';
  defs.forEach((bytes, i) => {
    let op: PbOp;
    try {
      op = opCodec!.decode(bytes);
    } catch (err) {
      throw new LlbError(`LLB definition: op ${i} is not a valid pb.Op message (${(err as Error).message.split('\n')[0]})`);
    }
    if (op.inputs.length > MAX_INPUTS) throw new LlbError(`LLB definition: op ${i} has ${op.inputs.length} inputs`);
    last = opDigest(bytes);
    ops.set(last, op);
  });
  const terminal = ops.get(last)!;
  if (terminal.op !== undefined || terminal.inputs.length !== 1) {
    throw new LlbError('LLB definition: the last op must be the terminal op (no op body, one input naming the result)');
  }
  ops.delete(last);
  const result = terminal.inputs[0]!;

  // Depth first from the result: every input must name an op of the definition and an output it has,
  // and no op may reach itself.
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const checkInput = (user: string, input: PbInput) => {
    const op = ops.get(input.digest);
    if (!op) throw new LlbError(`LLB definition: ${user} uses ${JSON.stringify(input.digest.slice(0, 80))}, which is not an op of the definition`);
    const n = outputCount(op);
    if (!Number.isInteger(input.index) || input.index < 0 || input.index >= n) {
      throw new LlbError(`LLB definition: ${user} uses output ${input.index} of ${describeOp(input.digest, op)}, which has ${n} output(s)`);
    }
  };
  checkInput('the terminal op', result);
  const stack: { digest: string; next: number }[] = [{ digest: result.digest, next: 0 }];
  state.set(result.digest, 'visiting');
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const op = ops.get(top.digest)!;
    if (top.next < op.inputs.length) {
      const input = op.inputs[top.next++]!;
      checkInput(describeOp(top.digest, op), input);
      const s = state.get(input.digest);
      if (s === 'visiting') throw new LlbError(`LLB definition: ${describeOp(input.digest, ops.get(input.digest)!)} depends on itself (a cycle)`);
      if (s === undefined) {
        state.set(input.digest, 'visiting');
        stack.push({ digest: input.digest, next: 0 });
      }
    } else {
      state.set(top.digest, 'done');
      order.push(top.digest);
      stack.pop();
    }
  }
  return { ops, order, result, metadata: wire.metadata ?? {} };
}
