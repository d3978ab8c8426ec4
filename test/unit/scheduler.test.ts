// The scheduler (solver/solver.ts) with fake ops: no sandbox, no state dir, no registry. Each fake op is a
// source vertex `fake://NAME` whose behaviour the test sets; the solver only sees the op contract.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Solver, type OpRegistry, type ResultCache } from '../../solver/solver.js';
import { GraphBuilder } from '../../solver/graph/builder.js';
import type { Op, SourceOp, Vertex, VertexInput, VertexMeta } from '../../solver/graph/ops.js';
import type { CacheMap, OpContext, OpImpl } from '../../solver/op.js';
import { SolveError } from '../../solver/op.js';
import type { Ref } from '../../solver/refs.js';
import type { SolverEnv } from '../../solver/env.js';
import type { ProgressEvent } from '../../solver/progress.js';
import { waitFor } from '../helpers/wait.js';

interface Behaviour {
  /** Runs inside the op's exec (after it counts as started). */
  run?: (ctx: OpContext) => Promise<void>;
  /** What cacheMap reports (digest defaults to the name). */
  cacheMap?: Partial<CacheMap>;
}

/** A registry whose every op is the fake one; records what ran and how many ran at once. */
function fakeOps(behaviours: Record<string, Behaviour> = {}) {
  const runs: string[] = [];
  const keyed: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const nameOf = (op: Op) => (op as SourceOp).identifier.replace(/^fake:\/\//, '');
  const impl: OpImpl<Op> = {
    async cacheMap(op, ctx) {
      const name = nameOf(op);
      keyed.push(name);
      const b = behaviours[name]?.cacheMap ?? {};
      return { digest: b.digest ?? `op:${name}`, deps: b.deps ?? ctx.vertex.inputs.map(() => ({})), volatile: b.volatile };
    },
    async exec(op, inputs, ctx) {
      const name = nameOf(op);
      runs.push(name);
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        await behaviours[name]?.run?.(ctx);
        return { kind: 'dir', path: `/${name}<-${inputs.map((i) => (i.kind === 'dir' ? i.path : '?')).join(',')}`, excludes: [] } satisfies Ref;
      } finally {
        running--;
      }
    },
  };
  const registry = { source: impl, exec: impl, file: impl, merge: impl } as unknown as OpRegistry;
  return { registry, runs, keyed, stats: () => ({ running, maxRunning }) };
}

/** Builds a graph from `name: [inputs]` lines; the last name is the output unless `outputs` says otherwise. */
function graph(spec: Record<string, string[]>, opts: { outputs?: string[]; meta?: Record<string, VertexMeta>; everyVertex?: boolean } = {}) {
  const b = new GraphBuilder();
  const refs = new Map<string, VertexInput>();
  for (const [name, inputs] of Object.entries(spec)) {
    refs.set(name, b.add({ kind: 'source', identifier: `fake://${name}` }, inputs.map((i) => refs.get(i)!), { meta: opts.meta?.[name] }));
  }
  const outputs = (opts.outputs ?? [Object.keys(spec).at(-1)!]).map((n) => refs.get(n)!);
  // everyVertex: the definition also holds vertices no output needs (as one sent over the wire may).
  const def = opts.everyVertex ? { vertices: [...refs.values()].map((r) => b.get(r.digest)!), outputs } : b.definition(outputs);
  return { def, digestOf: (n: string) => refs.get(n)!.digest };
}

/** A ResultCache in memory that counts content-digest lookups. */
function memoryCache() {
  const results = new Map<string, Ref>();
  const contents = new Map<string, string>();
  const cache: ResultCache = {
    async get(key) {
      return results.get(key);
    },
    async put(key, _v: Vertex, ref) {
      results.set(key, ref);
    },
    async contentOf(id) {
      return contents.get(id);
    },
    async rememberContent(id, digest) {
      contents.set(id, digest);
    },
  };
  return { cache, results };
}

const env = {} as SolverEnv;

/** A promise with its resolver, to hold an op until the test lets it go. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

test('no more ops run at once than the concurrency limit, and the limit is used', async () => {
  const g = gate();
  const leaves = ['a', 'b', 'c', 'd', 'e', 'f'];
  const fake = fakeOps(Object.fromEntries(leaves.map((n) => [n, { run: () => g.opened }])));
  const { def } = graph({ ...Object.fromEntries(leaves.map((n) => [n, []])), join: leaves });
  const solving = new Solver(env, fake.registry).solve(def, { concurrency: 2 });
  await waitFor(() => fake.stats().running === 2, { what: 'two ops running' });
  // Let the event loop turn: a third op must not start while two hold their slot.
  await new Promise((r) => setImmediate(r));
  assert.equal(fake.stats().running, 2);
  g.open();
  await solving;
  assert.equal(fake.stats().maxRunning, 2);
  assert.equal(fake.runs.length, 7);
  assert.equal(fake.runs.at(-1), 'join', 'the join runs after all its inputs');
});

test('each vertex runs once, however many users and outputs need it; unneeded vertices are not visited', async () => {
  const fake = fakeOps();
  const { def } = graph({ base: [], left: ['base'], right: ['base'], top: ['left', 'right'], unused: ['base'] }, { outputs: ['top', 'left', 'top'], everyVertex: true });
  assert.equal(def.vertices.length, 5);
  const res = await new Solver(env, fake.registry).solve(def, { concurrency: 4 });
  assert.deepEqual([...fake.runs].sort(), ['base', 'left', 'right', 'top']);
  assert.equal(res.refs.length, 3);
  assert.equal(res.refs[0], res.refs[2], 'the same output asked twice is the same result');
  assert.deepEqual(res.refs[0], { kind: 'dir', path: '/top<-/left<-/base<-,/right<-/base<-', excludes: [] });
  assert.equal(new Set(fake.keyed).size, fake.keyed.length, 'each vertex is keyed once');
});

test('the first failure fails the solve and cancels what is still running; queued steps never start', async () => {
  const aborted: string[] = [];
  const fake = fakeOps({
    slow: {
      run: (ctx) =>
        new Promise<void>((_, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted.push('slow');
            reject(ctx.signal.reason as Error);
          });
        }),
    },
    bad: {
      run: async () => {
        await waitFor(() => fake.runs.includes('slow'), { what: 'slow to start' });
        throw new SolveError('bad broke');
      },
    },
  });
  const { def } = graph({ slow: [], bad: [], later: [], top: ['slow', 'bad', 'later'] });
  await assert.rejects(new Solver(env, fake.registry).solve(def, { concurrency: 2 }), /bad broke/);
  assert.deepEqual(aborted, ['slow'], 'the running op saw the abort');
  assert.ok(!fake.runs.includes('later'), `queued step started: ${fake.runs}`);
  assert.ok(!fake.runs.includes('top'));
});

test('canceling the solve aborts running ops and rejects with the reason; nothing starts after', async () => {
  const seen: unknown[] = [];
  const fake = fakeOps({
    long: {
      run: (ctx) =>
        new Promise<void>((_, reject) => {
          ctx.signal.addEventListener('abort', () => {
            seen.push(ctx.signal.reason);
            reject(ctx.signal.reason as Error);
          });
        }),
    },
  });
  const { def } = graph({ long: [], after: ['long'] });
  const ac = new AbortController();
  const solving = new Solver(env, fake.registry).solve(def, { signal: ac.signal });
  await waitFor(() => fake.stats().running === 1, { what: 'the long op to start' });
  ac.abort(new Error('user pressed ^C'));
  await assert.rejects(solving, /user pressed \^C/);
  assert.equal((seen[0] as Error).message, 'user pressed ^C');
  assert.deepEqual(fake.runs, ['long']);
});

test('a cache hit short-circuits: the hit step and everything below it do not run, and are reported cached', async () => {
  const { cache, results } = memoryCache();
  const { def, digestOf } = graph({ base: [], mid: ['base'], top: ['mid'] });
  const first = fakeOps();
  const r1 = await new Solver(env, first.registry).solve(def, { cache });
  assert.deepEqual(first.runs, ['base', 'mid', 'top']);
  assert.equal(results.size, 3);

  const second = fakeOps();
  const events: ProgressEvent[] = [];
  const r2 = await new Solver(env, second.registry).solve(def, { cache, progress: (e) => events.push(e) });
  assert.deepEqual(second.runs, [], 'nothing ran');
  assert.deepEqual(r2.refs, r1.refs);
  assert.deepEqual(r2.keys, r1.keys, 'same graph, same keys');
  assert.deepEqual([...r2.cachedVertices].sort(), [digestOf('base'), digestOf('mid'), digestOf('top')].sort());
  assert.equal(events.filter((e) => e.type === 'vertex.cached').length, 3);
  assert.equal(events.filter((e) => e.type === 'vertex.started').length, 0);

  // A step that asks not to use the cache runs; its cached inputs are used.
  const third = fakeOps();
  const g3 = graph({ base: [], mid: ['base'], top: ['mid'] }, { meta: { top: { ignoreCache: true } } });
  await new Solver(env, third.registry).solve(g3.def, { cache });
  assert.deepEqual(third.runs, ['top']);
});

test('keys: deterministic, change with an input key, and a content-only dep ignores its input key', async () => {
  const solve = async (b: Record<string, Behaviour>) => {
    const { def, digestOf } = graph({ src: [], user: ['src'] });
    const r = await new Solver(env, fakeOps(b).registry).solve(def);
    return { src: r.keys.get(digestOf('src'))!, user: r.keys.get(digestOf('user'))! };
  };
  const a = await solve({});
  assert.match(a.user, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(await solve({}), a, 'same ops, same keys');
  const changed = await solve({ src: { cacheMap: { digest: 'op:src-v2' } } });
  assert.notEqual(changed.src, a.src);
  assert.notEqual(changed.user, a.user, 'a changed input changes its user');
  // contentOnly: the user reads only a part of the input whose content did not change.
  const reads = (digest: string): Record<string, Behaviour> => ({
    src: { cacheMap: { digest } },
    user: { cacheMap: { deps: [{ selector: '/etc', contentOnly: true, contentDigest: async () => 'sha256:same-etc' }] } },
  });
  const c1 = await solve(reads('op:src-v1'));
  const c2 = await solve(reads('op:src-v2'));
  assert.notEqual(c1.src, c2.src);
  assert.equal(c1.user, c2.user, 'the part read is unchanged: same key');
  // Without contentOnly the input key still counts.
  const both = (digest: string): Record<string, Behaviour> => ({ src: { cacheMap: { digest } }, user: { cacheMap: { deps: [{ contentDigest: async () => 'sha256:same-etc' }] } } });
  assert.notEqual((await solve(both('op:src-v1'))).user, (await solve(both('op:src-v2'))).user);
});

test('a volatile input (its key does not name its content) is read again every build, never from a record', async () => {
  // Not a local:// source: the scheduler knows volatility only from the cache map.
  let content = 'sha256:v1';
  let computed = 0;
  const behaviours: Record<string, Behaviour> = {
    dir: { cacheMap: { volatile: true } },
    copy: {
      cacheMap: {
        deps: [
          {
            contentDigest: async () => {
              computed++;
              return content;
            },
          },
        ],
      },
    },
  };
  const { cache } = memoryCache();
  const { def, digestOf } = graph({ dir: [], copy: ['dir'] });
  const one = fakeOps(behaviours);
  const k1 = (await new Solver(env, one.registry).solve(def, { cache })).keys.get(digestOf('copy'));
  content = 'sha256:v2';
  const two = fakeOps(behaviours);
  const r2 = await new Solver(env, two.registry).solve(def, { cache });
  assert.equal(computed, 2, 'the content was digested again');
  assert.notEqual(r2.keys.get(digestOf('copy')), k1, 'changed content, changed key');
  assert.deepEqual(two.runs, ['dir', 'copy'], 'the volatile source ran again, not served from the cache');

  // The same graph with a non-volatile input: the second build takes the recorded content digest.
  computed = 0;
  const stable = { ...behaviours, dir: {} };
  const { cache: c2 } = memoryCache();
  await new Solver(env, fakeOps(stable).registry).solve(def, { cache: c2 });
  content = 'sha256:v3';
  await new Solver(env, fakeOps(stable).registry).solve(def, { cache: c2 });
  assert.equal(computed, 1, 'a cached input key names its content: read once');
});

test('a user-facing op error names the Dockerfile line; internal errors are not rewritten', async () => {
  const fake = fakeOps();
  fake.registry.source.exec = async (op) => {
    if ((op as SourceOp).identifier === 'fake://user') throw new SolveError('process "false" did not complete successfully: exit code: 1');
    throw new Error('EIO: disk on fire');
  };
  const b = graph({ user: [] }, { meta: { user: { location: { file: 'Dockerfile', startLine: 3, endLine: 3 } } } });
  await assert.rejects(new Solver(env, fake.registry).solve(b.def), (err: Error) => {
    assert.equal(err.message, 'Dockerfile:3: process "false" did not complete successfully: exit code: 1');
    assert.equal((err as { userFacing?: boolean }).userFacing, true);
    return true;
  });
  const i = graph({ internal: [] }, { meta: { internal: { location: { file: 'Dockerfile', startLine: 5, endLine: 5 } } } });
  await assert.rejects(new Solver(env, fake.registry).solve(i.def), /^Error: EIO: disk on fire$/);
  // A key computation failure is located too.
  const k = fakeOps();
  k.registry.source.cacheMap = async () => {
    throw new SolveError('failed to resolve source metadata for docker.io/library/nope:latest');
  };
  const kg = graph({ from: [] }, { meta: { from: { location: { file: 'Dockerfile', startLine: 1, endLine: 1 } } } });
  await assert.rejects(new Solver(env, k.registry).solve(kg.def), /^Error: Dockerfile:1: failed to resolve source metadata/);
});
