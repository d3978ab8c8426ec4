// The LLB-like "state" a stage carries between instructions (current filesystem vertex, env, workdir, user)
// and the one place vertices are added to the graph, with their progress name, location and cache flag.
import { GraphBuilder } from '../../../solver/graph/builder.js';
import type { GraphPlatform, Op, VertexInput } from '../../../solver/graph/ops.js';
import type { Located } from '../instructions.js';
import { EnvList } from './env-list.js';

export interface FsState {
  /** The filesystem so far; null = scratch (nothing added yet). */
  ref: VertexInput | null;
  env: EnvList;
  /** Working directory for RUN and relative paths; '' = not set (acts as "/"). */
  dir: string;
  user: string;
}

export function scratchState(): FsState {
  return { ref: null, env: EnvList.empty(), dir: '', user: '' };
}

export interface EmitOptions {
  platform?: GraphPlatform;
  description?: string;
  location?: Pick<Located, 'line' | 'endLine'>;
  stage?: string;
  ignoreCache?: boolean;
}

export class GraphEmitter {
  readonly builder = new GraphBuilder();

  constructor(private readonly fileName: string, private readonly noCache: boolean) {}

  add(op: Op, inputs: VertexInput[], o: EmitOptions = {}): VertexInput {
    return this.builder.add(op, inputs, {
      platform: o.platform,
      meta: {
        description: o.description,
        location: o.location ? { file: this.fileName, startLine: o.location.line, endLine: o.location.endLine } : undefined,
        ignoreCache: this.noCache || o.ignoreCache ? true : undefined,
        stage: o.stage || undefined,
      },
    });
  }
}

/** Collects the distinct inputs of one vertex; -1 stands for scratch. */
export class InputList {
  readonly inputs: VertexInput[] = [];

  index(ref: VertexInput | null): number {
    if (ref === null) return -1;
    const i = this.inputs.findIndex((x) => x.digest === ref.digest && x.output === ref.output);
    if (i >= 0) return i;
    this.inputs.push(ref);
    return this.inputs.length - 1;
  }
}
