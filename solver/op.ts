// The op contract (docs/design.md): the solver knows only this interface. An op says how its result is keyed
// (a cache map) and, given its inputs' results, produces its result. Effects live in `exec` only.
import type { Op, Vertex } from './graph/ops.js';
import type { Ref } from './refs.js';
import type { VertexProgress } from './progress.js';
import type { SolverEnv } from './env.js';

export interface CacheMapDep {
  /** Part of the input the op reads (a path), merged with the input's key. */
  selector?: string;
  /** Compute a digest of the input's result content (e.g. the files a COPY reads) into the key. */
  contentDigest?: (input: Ref) => Promise<string>;
  /**
   * The content digest stands for the input: its key is left out, so a step that reads only part of an
   * input (a RUN's read-only bind mount) is a hit while that part is unchanged, whatever else changed.
   */
  contentOnly?: boolean;
}

export interface CacheMap {
  /** Digest of the op itself, after resolving what it names (e.g. an image tag to its manifest digest). */
  digest: string;
  /** One entry per vertex input. */
  deps: CacheMapDep[];
  /**
   * The key does not name the result's content (a local directory, read in place): what a step reads
   * from this result is digested again on every build, never taken from a record of an earlier one.
   */
  volatile?: boolean;
}

export interface OpContext {
  vertex: Vertex;
  progress: VertexProgress;
  signal: AbortSignal;
  env: SolverEnv;
  /** What an op noted while keying itself, for explaining cache misses (e.g. the files a COPY read). */
  notes: Record<string, unknown>;
}

export interface OpImpl<O extends Op = Op> {
  cacheMap(op: O, ctx: OpContext): Promise<CacheMap>;
  exec(op: O, inputs: Ref[], ctx: OpContext): Promise<Ref>;
}

/** A failure the user caused or can act on (a RUN's exit code, a COPY of a missing file…). */
export class SolveError extends Error {
  readonly userFacing = true;
}
