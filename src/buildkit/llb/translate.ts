// BuildKit's ops → kiln's build graph (solver/graph). Each LLB op becomes one kiln vertex with the same
// inputs (an exec per output used); what kiln's ops cannot express (git/http sources, diff and build ops,
// file actions that are not one chain, a result taken from an exec mount that is not the rootfs or a
// writable mount of scratch) ends the solve with one line naming the op. Paths stay as the client wrote them: kiln's file op and sandbox resolve every one of them
// inside the root they act on.
import { GraphBuilder } from '../../../solver/graph/builder.js';
import type { GraphPlatform, Op, VertexInput } from '../../../solver/graph/ops.js';
import { describeOp, LlbError, type DecodedDefinition } from './decode.js';
import { execOp } from './exec-op.js';
import { fileOp } from './file-op.js';
import { isRootDest } from './paths.js';
import { sourceOp, type LocalSource } from './source-op.js';
import type { PbInput, PbOp } from './wire.js';

export type { LocalSource } from './source-op.js';

export interface Translation {
  definition: ReturnType<GraphBuilder['definition']>;
  output: VertexInput;
  /** The platform of the result (its image config's). */
  platform?: GraphPlatform;
  locals: LocalSource[];
  secretIds: string[];
  sshIds: string[];
  /** kiln vertex digest → BuildKit vertex digest, for progress. */
  progressDigest: Map<string, string>;
}

function platformOf(op: PbOp): GraphPlatform | undefined {
  const p = op.platform;
  if (!p || !p.OS || !p.Architecture) return undefined;
  return { os: p.OS, architecture: p.Architecture, ...(p.Variant ? { variant: p.Variant } : {}) };
}

export function translateDefinition(d: DecodedDefinition): Translation {
  const g = new GraphBuilder();
  const refOf = new Map<string, VertexInput>();
  const progressDigest = new Map<string, string>();
  const locals = new Map<string, LocalSource>();
  const session = { secrets: new Set<string>(), ssh: new Set<string>() };
  // Which outputs of each op are used. kiln has one result per vertex: an exec's rootfs, or (resultMount)
  // a writable mount of scratch; an exec used for both is two vertices (the command runs for each).
  const key = (i: PbInput) => `${i.digest}@${i.index}`;
  const wanted = new Map<string, Set<number>>();
  for (const i of [...d.order.flatMap((digest) => d.ops.get(digest)!.inputs), d.result]) {
    const set = wanted.get(i.digest) ?? new Set<number>();
    set.add(i.index);
    wanted.set(i.digest, set);
  }
  // A local source is read in place (a dir, not layers). Where LLB uses it as a filesystem state (an
  // exec's rootfs, a file op's base, a merge input, the result), kiln first copies it into a layer.
  const layerOf = new Map<string, VertexInput>();
  const asState = (input: PbInput): VertexInput => {
    const ref = refOf.get(key(input))!;
    const op = d.ops.get(input.digest)!;
    if (op.op !== 'source' || !op.source!.identifier.startsWith('local://')) return ref;
    let layer = layerOf.get(input.digest);
    if (!layer) {
      layer = g.add({ kind: 'file', base: -1, actions: [{ type: 'copy', src: 0, srcPath: '/', destPath: '/', dirCopyContents: true, createDestPath: true }] }, [ref], {
        platform: platformOf(op),
        meta: { description: `[internal] ${op.source!.identifier} as a filesystem state` },
      });
      layerOf.set(input.digest, layer);
    }
    return layer;
  };
  for (const digest of d.order) {
    const op = d.ops.get(digest)!;
    const what = describeOp(digest, op);
    const stateInputs = new Set<number>();
    if (op.op === 'exec') op.exec!.mounts.forEach((m) => isRootDest(m.dest) && m.input >= 0 && stateInputs.add(m.input));
    if (op.op === 'file' && op.file!.actions[0] && op.file!.actions[0].input >= 0) stateInputs.add(op.file!.actions[0].input);
    if (op.op === 'merge') op.merge!.inputs.forEach((m) => stateInputs.add(m.input));
    const inputs = op.inputs.map((i, n) => (stateInputs.has(n) ? asState(i) : refOf.get(key(i))!));
    let kop: Op;
    let kinputs = inputs;
    switch (op.op) {
      case 'source':
        if (op.inputs.length) throw new LlbError(`${what}: a source op has no inputs`);
        kop = sourceOp(what, op.source!, locals);
        break;
      case 'exec':
        kop = execOp(what, op.exec!, inputs.length, session);
        break;
      case 'file':
        kop = fileOp(what, op.file!.actions, inputs.length);
        break;
      case 'merge': {
        const m = op.merge!.inputs;
        if (m.length === 0) throw new LlbError(`${what}: a merge of nothing`);
        kinputs = m.map((x, i) => {
          if (!Number.isInteger(x.input) || x.input < 0 || x.input >= inputs.length) throw new LlbError(`${what}: merge input ${i} names input ${x.input}, not one of the op's ${inputs.length}`);
          return inputs[x.input]!;
        });
        kop = { kind: 'merge' };
        break;
      }
      case 'diff':
      case 'build':
        throw new LlbError(`${what}: ${op.op} ops are not supported by this builder`);
      default:
        throw new LlbError(`${what}: an op with no kind before the terminal op`);
    }
    const md = d.metadata[digest];
    // BuildKit names a step by its custom name, else by what it is; a local source by the client's name for it.
    const description = md?.description?.['llb.customname'] || (op.op === 'source' && kop.kind === 'source' && kop.identifier !== op.source!.identifier ? op.source!.identifier : undefined);
    const opts = { platform: platformOf(op), meta: { ...(description ? { description } : {}), ...(md?.ignore_cache ? { ignoreCache: true } : {}) } };
    for (const index of wanted.get(digest) ?? []) {
      let vop = kop;
      if (op.op === 'exec' && kop.kind === 'exec') {
        const m = op.exec!.mounts.find((x) => x.output === index);
        if (!m) throw new LlbError(`${what}: no mount has output ${index}`);
        if (!isRootDest(m.dest)) {
          if (m.mountType !== 0 || m.input !== -1 || m.readonly) {
            throw new LlbError(`${what}: output ${index} (mount ${JSON.stringify(m.dest)}) is used, but only the rootfs and writable mounts of scratch can be results on this builder`);
          }
          // kiln's mounts are the LLB mounts in order (secret env mounts come after them).
          vop = { ...kop, resultMount: kop.mounts[op.exec!.mounts.indexOf(m)]!.dest };
        }
      }
      const ref = g.add(vop, kinputs, opts);
      refOf.set(key({ digest, index }), ref);
      if (!progressDigest.has(ref.digest)) progressDigest.set(ref.digest, digest);
    }
  }
  const output = asState(d.result);
  return {
    definition: g.definition([output]),
    output,
    platform: platformOf(d.ops.get(d.result.digest)!),
    locals: [...locals.values()],
    secretIds: [...session.secrets],
    sshIds: [...session.ssh],
    progressDigest,
  };
}
