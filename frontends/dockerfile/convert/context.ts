// What every instruction handler needs besides its stage: options, the graph, the stage set, global args.
import type { VertexInput } from '../../../solver/graph/ops.js';
import type { IgnoreMatcher } from '../../../base/patterns/dockerignore.js';
import type { Linter } from '../lint/linter.js';
import type { EnvList } from './env-list.js';
import type { GraphEmitter } from './graph-emit.js';
import type { StageSet } from './stage-state.js';
import type { ConvertOptions, ConvertWarning } from './types.js';

export interface DispatchContext {
  opts: ConvertOptions;
  fileName: string;
  emitter: GraphEmitter;
  stages: StageSet;
  globalArgs: EnvList;
  buildArgs: Record<string, string>;
  escapeToken: string;
  epoch?: number;
  proxyEnv?: Record<string, string>;
  warnings: ConvertWarning[];
  lint: Linter;
  /** The context's .dockerignore as a matcher; undefined when it has no patterns. */
  ignoreMatcher(): IgnoreMatcher | undefined;
  /** The main build context source (`local://context`), added on first use. */
  mainContext(): VertexInput;
}
