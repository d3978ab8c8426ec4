// The scheduler. Vertices run as soon as their inputs are done, up to `concurrency` at a time (p-queue);
// each vertex runs once per solve however many users it has; only vertices the requested outputs need
// are visited. The first failure cancels everything still running.
import PQueue from 'p-queue';
import { availableParallelism } from 'node:os';
import { createHash } from 'node:crypto';
import type { Definition, Op, Vertex } from './graph/ops.js';
import { verifyDefinition } from './graph/builder.js';
import { canonicalJSON } from './graph/canonical.js';
import { vertexLabel } from './graph/print.js';
import { remoteLayers, type Ref } from './refs.js';
import { vertexProgress, type ProgressSink } from './progress.js';
import { SolveError, type OpContext, type OpImpl } from './op.js';
import type { SolverEnv } from './env.js';
import { noteLayerOwner, traced } from './step-trace.js';

export type OpRegistry = { [K in Op['kind']]: OpImpl<Extract<Op, { kind: K }>> };

/** Remembers results by cache key; the persistent implementation lives in cache/. */
export interface ResultCache {
  get(key: string, vertex: Vertex): Promise<Ref | undefined>;
  put(key: string, vertex: Vertex, ref: Ref): Promise<void>;
  /** Drops a hit that could not be used (an imported layer failed verification): the step runs instead. */
  reject?(key: string, vertex: Vertex): Promise<void>;
  /**
   * A content digest computed before for the same step, input and input key (`id`): a result's key names
   * its content, so what a step read from it need not be read again (nor downloaded, for imported cache).
   */
  contentOf?(id: string): Promise<string | undefined>;
  rememberContent?(id: string, digest: string): Promise<void>;
}

export interface SolveOptions {
  concurrency?: number;
  progress?: ProgressSink;
  cache?: ResultCache;
  signal?: AbortSignal;
  /**
   * Unpack layers of the outputs that exist only in an imported cache (default true). A build that only
   * pushes leaves them remote: the registry can mount them.
   */
  materializeOutputs?: boolean;
}

/** How a vertex's key was made: for explaining, next build, why it changed. */
export interface KeyParts {
  key: string;
  op: string;
  deps: { key: string; input: string; selector?: string; content?: string }[];
  notes: Record<string, unknown>;
}

export interface SolveResult {
  refs: Ref[];
  /** Cache key of every vertex visited. */
  keys: Map<string, string>;
  /** The parts of every vertex's key, by vertex digest. */
  keyParts: Map<string, KeyParts>;
  cachedVertices: Set<string>;
  /** Vertices that ran (not served from the cache). */
  executedVertices: Set<string>;
  /** The result of every vertex that was looked up or ran, by vertex digest (for cache export). */
  vertexRefs: Map<string, Ref>;
}

/** A user-facing op error gains the Dockerfile line it came from (`Dockerfile:3: …`). */
function located(err: unknown, v: Vertex): unknown {
  const loc = v.meta.location;
  if (!loc || !(err instanceof Error) || (err as { userFacing?: boolean }).userFacing !== true) return err;
  if (err.message.startsWith(`${loc.file}:`)) return err;
  const wrapped = new SolveError(`${loc.file}:${loc.startLine}: ${err.message}`, { cause: err });
  return wrapped;
}

export class Solver {
  constructor(
    private readonly env: SolverEnv,
    private readonly ops: OpRegistry,
  ) {}

  async solve(def: Definition, opts: SolveOptions = {}): Promise<SolveResult> {
    verifyDefinition(def);
    const sink: ProgressSink = opts.progress ?? (() => {});
    const byDigest = new Map(def.vertices.map((v) => [v.digest, v]));
    const queue = new PQueue({ concurrency: opts.concurrency ?? Math.max(1, availableParallelism()) });
    const abort = new AbortController();
    const onOuterAbort = () => abort.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });

    const keys = new Map<string, Promise<string>>();
    const volatile = new Set<string>();
    const results = new Map<string, Promise<Ref>>();
    const contexts = new Map<string, OpContext>();
    const cachedVertices = new Set<string>();
    const executedVertices = new Set<string>();
    const doneKeys = new Map<string, string>();
    const keyParts = new Map<string, KeyParts>();
    const vertexRefs = new Map<string, Ref>();
    const materialized = new Map<string, Promise<Ref>>();

    const contextOf = (v: Vertex): OpContext => {
      let c = contexts.get(v.digest);
      if (!c) {
        c = { vertex: v, progress: vertexProgress(sink, v.digest), signal: abort.signal, env: this.env, notes: {} };
        contexts.set(v.digest, c);
      }
      return c;
    };
    const implOf = (v: Vertex) => this.ops[v.op.kind] as OpImpl<Op>;

    // A vertex's key: its op's cache map combined with its inputs' keys (and content digests).
    const keyOf = (digest: string): Promise<string> => {
      let p = keys.get(digest);
      if (!p) {
        const v = byDigest.get(digest)!;
        p = (async () => {
          const cm = await traced(digest, vertexLabel(v), 'cachemap', () => implOf(v).cacheMap(v.op, contextOf(v))).catch((err) => {
            throw located(err, v);
          });
          if (cm.volatile) volatile.add(digest);
          const deps = await Promise.all(
            v.inputs.map(async (input, i) => {
              const dep = cm.deps[i] ?? {};
              const key = await keyOf(input.digest);
              const content = dep.contentDigest ? await contentOf(v, cm.digest, i, input.digest, key, dep.contentDigest) : undefined;
              return { key, output: input.output, selector: dep.selector, content };
            }),
          );
          const keyed = deps.map((d, i) => (cm.deps[i]?.contentOnly && d.content !== undefined ? { output: d.output, selector: d.selector, content: d.content } : d));
          const k = `sha256:${createHash('sha256').update(canonicalJSON({ op: cm.digest, deps: keyed, platform: v.platform })).digest('hex')}`;
          doneKeys.set(digest, k);
          keyParts.set(digest, { key: k, op: cm.digest, deps: deps.map((d, i) => ({ ...d, input: v.inputs[i]!.digest })), notes: contextOf(v).notes });
          return k;
        })();
        keys.set(digest, p);
      }
      return p;
    };

    // What a step reads from an input, digested once per (step, input key), here or on a teammate's machine.
    const contentOf = async (v: Vertex, opDigest: string, index: number, inputDigest: string, inputKey: string, compute: (r: Ref) => Promise<string>) => {
      // An input whose key does not name its content (its op says it is volatile) is always read.
      const memo = opts.cache?.contentOf && !volatile.has(inputDigest);
      const id = memo ? `sha256:${createHash('sha256').update(`${opDigest}\0${index}\0${inputKey}`).digest('hex')}` : '';
      // Only a cached result is the one its key named before; a step that just ran (--no-cache) is read.
      await resultOf(inputDigest);
      if (memo && cachedVertices.has(inputDigest)) {
        const known = await opts.cache!.contentOf!(id);
        if (known) return known;
      }
      const input = await materializedOf(inputDigest);
      const content = await traced(v.digest, vertexLabel(v), 'content', () => compute(input));
      if (memo) await opts.cache!.rememberContent?.(id, content);
      return content;
    };

    // A result whose layers are all on disk: layers known only from an imported cache are unpacked now,
    // because a step (or the export) reads them. One that fails verification is refused and the step runs.
    const materializedOf = (digest: string): Promise<Ref> => {
      let p = materialized.get(digest);
      if (!p) {
        p = (async () => {
          const ref = await resultOf(digest);
          const lazy = remoteLayers(ref);
          if (!lazy.length) return ref;
          const v = byDigest.get(digest)!;
          const key = await keyOf(digest);
          try {
            await Promise.all(lazy.map((l) => l.remote!.unpack()));
          } catch (err) {
            if ((err as { cacheRejected?: boolean }).cacheRejected !== true) throw err;
            sink({ type: 'vertex.warning', digest, message: `cache record refused, running the step: ${(err as Error).message}`, time: Date.now() });
            cachedVertices.delete(digest);
            await opts.cache?.reject?.(key, v);
            const fresh = execute(digest, key);
            results.set(digest, fresh);
            return fresh;
          }
          const ready: Ref = { kind: 'layers', layers: (ref.kind === 'layers' ? ref.layers : []).map(({ remote: _r, ...l }) => l) };
          vertexRefs.set(digest, ready);
          // Recorded here too, so the next build finds it without the imported cache.
          await opts.cache?.put(key, v, ready);
          return ready;
        })();
        p.catch((err) => abort.abort(err));
        materialized.set(digest, p);
      }
      return p;
    };

    const resultOf = (digest: string): Promise<Ref> => {
      let p = results.get(digest);
      if (!p) {
        const v = byDigest.get(digest)!;
        const name = vertexLabel(v);
        p = (async () => {
          const key = await keyOf(digest);
          // A volatile result (its key does not name its content) is never taken from the cache.
          if (opts.cache && !v.meta.ignoreCache && !volatile.has(digest)) {
            const hit = await traced(digest, name, 'lookup', () => opts.cache!.get(key, v));
            if (hit) {
              cachedVertices.add(digest);
              vertexRefs.set(digest, hit);
              sink({ type: 'vertex.cached', digest, name, time: Date.now(), key });
              return hit;
            }
          }
          return execute(digest, key);
        })();
        p.catch((err) => abort.abort(err));
        results.set(digest, p);
      }
      return p;
    };

    const execute = async (digest: string, key: string): Promise<Ref> => {
      const v = byDigest.get(digest)!;
      const name = vertexLabel(v);
      const inputs = await Promise.all(v.inputs.map((i) => materializedOf(i.digest)));
      return queue.add(
        async () => {
          abort.signal.throwIfAborted();
          const started = Date.now();
          sink({ type: 'vertex.started', digest, name, time: started, key });
          executedVertices.add(digest);
          try {
            const ref = await traced(digest, name, 'exec', () => implOf(v).exec(v.op, inputs, contextOf(v)));
            const top = ref.kind === 'layers' ? ref.layers.at(-1) : undefined;
            if (top?.id) noteLayerOwner(top.id, digest, name);
            if (opts.cache) await traced(digest, name, 'record', () => opts.cache!.put(key, v, ref));
            vertexRefs.set(digest, ref);
            sink({ type: 'vertex.completed', digest, name, time: Date.now(), durationMs: Date.now() - started });
            return ref;
          } catch (err) {
            sink({ type: 'vertex.failed', digest, name, time: Date.now(), error: (err as Error).message });
            const failure = located(err, v);
            // Cancel the rest now, before the queue hands this slot to a waiting step.
            abort.abort(failure);
            throw failure;
          }
        },
      ) as Promise<Ref>;
    };

    try {
      const materialize = opts.materializeOutputs ?? true;
      const refs = await Promise.all(def.outputs.map((o) => (materialize ? materializedOf(o.digest) : resultOf(o.digest))));
      // Steps below a cached result were not needed at all: like BuildKit, report them as cached too.
      for (const v of def.vertices) {
        if (doneKeys.has(v.digest) && !executedVertices.has(v.digest) && !cachedVertices.has(v.digest) && !results.has(v.digest)) {
          cachedVertices.add(v.digest);
          sink({ type: 'vertex.cached', digest: v.digest, name: vertexLabel(v), time: Date.now(), key: doneKeys.get(v.digest) });
        }
      }
      return { refs, keys: doneKeys, keyParts, cachedVertices, executedVertices, vertexRefs };
    } finally {
      opts.signal?.removeEventListener('abort', onOuterAbort);
      queue.clear();
      // Let running ops see the abort and finish before the caller touches shared state.
      abort.abort(new Error('solve finished'));
      await queue.onIdle();
    }
  }
}
