// The embedded build engine: ONE path for `kiln build`, `kiln bake`, `kiln serve` and any other host.
//
//   runBuild(state: State, request: BuildRequest, hooks?: BuildHooks): Promise<BuildResult>
//
// `request` (src/engine/request.ts) holds the targets — one for `kiln build`, several for `kiln bake` —
// each with its own Dockerfile, context, outputs and the settings its RUN steps see (secrets, ssh,
// network, hosts, DNS, limits, entitlements); `hooks` is how the host takes part: progress events,
// cancellation, a wrapper of the result cache, context file hashes it knows, and `planned`, called with
// the converted graph before any local dir is read or any step runs. The path (docs/design.md, "Build
// pipeline"):
//   plan    each target's Dockerfile → graph, once per platform (frontends/dockerfile); all merged
//   solve   targets whose RUN settings are equal share one solve of their merged graph, so a step two
//           of them have in common runs once; targets with other settings solve after, from the same
//           cache, each with its own secrets/ssh/network/hosts
//   export  per target: layer blobs, image configs, attestations, its outputs, its cache exports
// Each target is recorded in the state's history (not when only the graph is printed).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { State } from '../../cache/state.js';
import { RegistryClient } from '../../base/oci/registry/client.js';
import { formatPlatform, hostPlatform, normalizePlatform } from '../../base/oci/platform.js';
import type { Platform } from '../../base/oci/types.js';
import type { ConvertResult, NamedContext } from '../../frontends/dockerfile/convert/types.js';
import { loadDockerignore } from '../../base/patterns/dockerignore.js';
import { namedContextExcludes } from './named-context-ignore.js';
import { uncachedMountsRoot } from './uncached-mounts.js';
import type { Definition, VertexInput, Vertex } from '../../solver/graph/ops.js';
import { graphToDot, graphToJSON } from '../../solver/graph/print.js';
import { Solver, type SolveResult } from '../../solver/solver.js';
import type { SolverEnv } from '../../solver/env.js';
import { buildRecordKey, explainMisses, loadRecord, makeRecord, saveRecord, type Explanation } from './explain.js';
import { PersistentResultCache } from '../../solver/persistent-cache.js';
import { buildOps, type RunSettings } from '../../solver/ops/index.js';
import type { ProgressEvent } from '../../solver/progress.js';
import type { Ref } from '../../solver/refs.js';
import { ImageResolver } from './image-resolver.js';
import { UserError, isUserFacing } from '../../base/errors.js';
import { bytesOf } from '../../base/units.js';
import { StatIndex } from '../../cache/stat-index.js';
import { beginBuild, collectToPolicy } from '../../cache/gc.js';
import { gcPolicyFromEnv } from '../../cache/gc-policy.js';
import { prefetchLayerBlobs } from './layer-blobs.js';
import { exportImages } from './export-images.js';
import { convertForPlatforms } from './convert-request.js';
import { checkEntitlements } from '../../solver/entitlements.js';
import { grantEntitlements, sandboxLimits } from './limits.js';
import { cacheMountSeederFor, importCaches } from './remote-cache.js';
import type { CacheMountSeeder } from '../../cache/remote/mount-seed.js';
import { BuildRecorder } from './history/recorder.js';
import { HistoryStore } from './history/store.js';
import { checkNoWasmRun } from './wasm.js';
import { solveGroups } from './solve-groups.js';
import type { BuildHooks, BuildRequest, BuildResult, BuildTarget, BuildWarning, TargetResult } from './request.js';

export type { BuildContextSpec, BuildHooks, BuildPlan, BuildRequest, BuildResult, BuildTarget, BuildWarning, TargetResult } from './request.js';

/** Merges per-platform graphs: identical vertices (platform-independent work) appear once. */
export function mergeDefinitions(defs: Definition[], outputs: VertexInput[]): Definition {
  const seen = new Map<string, Vertex>();
  for (const d of defs) for (const v of d.vertices) if (!seen.has(v.digest)) seen.set(v.digest, v);
  return { vertices: [...seen.values()], outputs };
}

/** What the history keeps of a target besides its progress: its graph and why steps were not cached. */
interface TargetTrace {
  def?: Definition;
  explanations?: Explanation[];
}

/** A target after planning: its conversions (one per platform) and its own graph. */
interface PlannedTarget {
  target: BuildTarget;
  platforms: Platform[];
  conversions: ConvertResult[];
  ignorePatterns?: string[];
  def: Definition;
  outputs: VertexInput[];
}

/** Builds the request's targets, recording each in the state's history (unless only the graph is printed). */
export async function runBuild(state: State, req: BuildRequest, hooks: BuildHooks = {}): Promise<BuildResult> {
  if (req.targets.length === 0) throw new UserError('kiln bake: no targets to build');
  const traces: TargetTrace[] = req.targets.map(() => ({}));
  if (req.printGraph) return planSolveExport(state, req, hooks, traces);
  if (hooks.recorder) return recordedByHost(state, req, hooks, hooks.recorder, traces);
  const store = new HistoryStore(state.root);
  const recorders = req.targets.map(
    (t) =>
      new BuildRecorder(store, {
        origin: req.historyOrigin ?? 'local',
        dockerfile: t.dockerfile,
        context: t.contextDir,
        target: t.target,
        buildArgs: t.buildArgs,
        platforms: (t.platforms?.length ? t.platforms : [hostPlatform()]).map(formatPlatform),
        cacheImports: (t.cacheFrom ?? []).map((c) => (c.type === 'registry' ? c.ref : c.src)),
        cacheExports: (t.cacheTo ?? []).map((c) => (c.type === 'registry' ? c.ref : c.type === 'local' ? c.dest : 'inline')),
      }),
  );
  // With several targets, each record keeps the events of its own steps (and the build's status lines).
  const observe = (ev: ProgressEvent) => {
    recorders.forEach((r, i) => {
      const def = traces[i]!.def;
      if (recorders.length > 1 && def && 'digest' in ev && !def.vertices.some((v) => v.digest === ev.digest)) return;
      r.observe(ev);
    });
  };
  const progress = hooks.progress;
  try {
    const result = await planSolveExport(state, req, { ...hooks, progress: (ev) => (observe(ev), progress?.(ev)) }, traces);
    recorders.forEach((r, i) => r.finish({ status: 'completed', def: traces[i]!.def, explanations: traces[i]!.explanations, results: result.targets[i]!.exports }));
    return result;
  } catch (err) {
    const status = hooks.signal?.aborted ? 'canceled' : 'failed';
    recorders.forEach((r, i) => r.finish({ status, def: traces[i]!.def, explanations: traces[i]!.explanations, error: (err as Error).message ?? String(err) }));
    throw err;
  }
}

/** A build whose record the host made (and feeds, and finishes): the engine notes what it learned on it. */
async function recordedByHost(state: State, req: BuildRequest, hooks: BuildHooks, recorder: BuildRecorder, traces: TargetTrace[]): Promise<BuildResult> {
  if (req.targets.length !== 1) throw new Error('a host-made history record is for a one-target build');
  recorder.running();
  try {
    const result = await planSolveExport(state, req, hooks, traces);
    recorder.note({ def: traces[0]!.def, explanations: traces[0]!.explanations, results: result.targets[0]!.exports });
    return result;
  } catch (err) {
    recorder.note({ def: traces[0]!.def, explanations: traces[0]!.explanations });
    throw err;
  }
}

async function planSolveExport(state: State, req: BuildRequest, hooks: BuildHooks, traces: TargetTrace[]): Promise<BuildResult> {
  const startedOn = new Date();
  const buildPlatform = normalizePlatform(hostPlatform());
  const registry = new RegistryClient({ credentials: req.registryCredentials });
  const named = req.targets.some((t) => t.name !== undefined);
  let emptyContext: string | undefined;
  let uncachedMounts: ReturnType<typeof uncachedMountsRoot> | undefined;
  // GC runs while this build runs; its lease keeps what the build uses (cache/gc.ts, cache/leases.ts).
  const gcPolicy = gcPolicyFromEnv();
  const lease = beginBuild(state, gcPolicy);
  const progress = hooks.progress;
  try {
    // ---- plan ----
    // One local-source name per directory: targets with the same context share its vertex.
    const localDirs: Record<string, string> = {};
    const nameOf = new Map<string, string>();
    const localName = (dir: string, preferred: string) => {
      const real = resolvePath(dir);
      let n = nameOf.get(real);
      if (!n) {
        n = localDirs[preferred] === undefined ? preferred : `${preferred}-${nameOf.size}`;
        nameOf.set(real, n);
        localDirs[n] = real;
      }
      return n;
    };
    const resolvers = new Map<boolean, ImageResolver>();
    const resolverFor = (pull: boolean) => resolvers.get(pull) ?? resolvers.set(pull, new ImageResolver(state, registry, { pull })).get(pull)!;
    const planned: PlannedTarget[] = [];
    for (const [i, target] of req.targets.entries()) {
      if (target.graph) {
        // A graph made elsewhere (LLB): nothing to convert; its local sources name their dirs themselves.
        Object.assign(localDirs, target.graph.localDirs);
        const { conversions, platforms } = target.graph;
        const outputs = conversions.map((c) => c.output).filter((o): o is VertexInput => o !== null);
        const def = mergeDefinitions(conversions.map((c) => c.definition), outputs);
        traces[i]!.def = def;
        planned.push({ target, platforms, conversions, def, outputs });
        continue;
      }
      const contextDir = target.contextDir ?? (emptyContext ??= mkdtempSync(join(tmpdir(), 'kiln-empty-context-')));
      const ignore = target.contextDir ? loadDockerignore(contextDir, target.dockerfile.path ?? join(contextDir, 'Dockerfile')) : undefined;
      const contextName = localName(contextDir, 'context');
      const namedContexts: Record<string, NamedContext> = {};
      for (const [name, spec] of Object.entries(target.buildContexts ?? {})) {
        if (spec.kind === 'local') namedContexts[name] = { kind: 'local', name: localName(spec.path, `ctx-${name}`), excludes: namedContextExcludes(spec.path) };
        else if (spec.kind === 'image') namedContexts[name] = { kind: 'image', ref: spec.ref };
        else namedContexts[name] = { kind: 'oci-layout', identifier: spec.identifier.replace(/^oci-layout:\/\//, '') };
      }
      const platforms = target.platforms?.length ? target.platforms : [buildPlatform];
      const conversions = await convertForPlatforms(target, platforms, { buildPlatform, namedContexts, contextName, dockerignorePatterns: ignore?.patterns ?? [], resolver: resolverFor(!!target.pull), check: req.check }).catch((err: unknown) => {
        throw named && isUserFacing(err) ? new UserError(`target ${target.name}: ${err.message}`, { cause: err }) : err;
      });
      const outputs = conversions.map((c) => c.output).filter((o): o is VertexInput => o !== null);
      const def = mergeDefinitions(conversions.map((c) => c.definition), outputs);
      traces[i]!.def = def;
      planned.push({ target, platforms, conversions, ignorePatterns: ignore?.patterns, def, outputs });
    }
    const allConversions = planned.flatMap((p) => p.conversions);
    const def = mergeDefinitions(allConversions.map((c) => c.definition), planned.flatMap((p) => p.outputs));
    const perTarget = allConversions.reduce((n, c) => n + c.definition.vertices.length, 0);
    const vertices = { merged: def.vertices.length, perTarget };
    const warnings: BuildWarning[] = planned.flatMap((p) => p.conversions.flatMap((c) => c.warnings.map((w) => ({ target: p.target.name ?? '', ...w }))));
    if (req.printGraph) return { graph: req.printGraph === 'dot' ? graphToDot(def) : graphToJSON(def), targets: [], warnings, vertices };
    if (named) progress?.({ type: 'status', message: `bake: ${planned.length} targets (${planned.map((p) => p.target.name).join(', ')}), one graph of ${def.vertices.length} steps (${perTarget} without sharing)`, time: Date.now() });
    for (const p of planned) checkEntitlements(p.def, grantEntitlements(p.target.allow ?? []), p.target.network);
    checkNoWasmRun(def);
    await hooks.planned?.({ def, localDirs });

    // ---- solve ----
    // Stat indexes of the local dirs: unchanged files are not re-read to compute COPY keys.
    const indexes = await Promise.all(Object.values(localDirs).map(async (dir) => ({ dir: `${dir.replace(/\/+$/, '')}/`, index: await StatIndex.load(state.db, dir) })));
    const fileHasher = (real: string, st?: import('node:fs').Stats) => hooks.knownFileHash?.(real) ?? (indexes.find((i) => real.startsWith(i.dir)) ?? indexes[0]!).index.hash(real, st);
    const uncachedRoot = () => (def.vertices.some((v) => v.meta.ignoreCache) ? (uncachedMounts ??= uncachedMountsRoot(state.root)).root : undefined);
    const imported = await importCaches(state, registry, planned.flatMap((p) => p.target.cacheFrom ?? []), (message) => warnings.push({ target: '', message }));
    const cacheMountSeeder = cacheMountSeederFor(state, imported, (message) => warnings.push({ target: '', message }), (message) => progress?.({ type: 'status', message, time: Date.now() }));
    const cache = new PersistentResultCache(state, imported, lease);
    const shared = hooks.wrapCache ? hooks.wrapCache(cache) : cache;
    const solvedOf = new Map<PlannedTarget, Pick<SolveResult, 'refs'> & Partial<SolveResult>>();
    const refOf = new Map<PlannedTarget, Map<string, Ref>>();
    try {
      for (const group of solveGroups(planned, (p) => p.target)) {
        const outputs = group.flatMap((p) => p.outputs);
        const gdef = group.length === planned.length ? def : mergeDefinitions(group.map((p) => p.def), outputs);
        const first = group[0]!.target;
        const solver = solverFor({ state, registry, localDirs, fileHasher, buildPlatform, req, target: first, uncachedMountsRoot: uncachedRoot(), cacheMountSeeder });
        // A build that only pushes can leave layers of an imported cache in the registry (mounted, not fetched).
        const targetOutputs = group.flatMap((p) => p.target.outputs);
        const pushOnly = targetOutputs.length > 0 && targetOutputs.every((o) => o.type === 'image' && o.push);
        const prefetch = group.length === 1 ? prefetchLayerBlobs(state, gdef, first.outputs, first.sourceDateEpoch)(shared) : shared;
        const solved = outputs.length ? await solver.solve(gdef, { progress, signal: hooks.signal, cache: prefetch, materializeOutputs: !pushOnly }) : { refs: [] };
        const byDigest = new Map(outputs.map((o, i) => [o.digest, solved.refs[i]!]));
        for (const p of group) {
          solvedOf.set(p, solved);
          refOf.set(p, byDigest);
        }
      }
    } finally {
      for (const i of indexes) await i.index.save();
    }

    // The record of each target's build, for explaining the next one's cache misses.
    const explanationsOf = new Map<PlannedTarget, Explanation[]>();
    for (const [i, p] of planned.entries()) {
      const solved = solvedOf.get(p)!;
      if (!solved.keyParts) continue;
      const t = p.target;
      const recordKey = buildRecordKey([t.contextDir ?? '-', t.dockerfile.path ?? t.dockerfile.name, t.target ?? '', p.platforms.map(formatPlatform).join(',')]);
      const record = makeRecord(p.def, solved.keyParts);
      // Always worked out: the history keeps why each step ran; --explain also shows it.
      const explanations = explainMisses(await loadRecord(state.db, recordKey), record, solved.executedVertices ?? new Set());
      explanationsOf.set(p, explanations);
      traces[i]!.explanations = explanations;
      if (req.explain) for (const e of explanations) progress?.({ type: 'vertex.explain', ...e, time: Date.now() });
      await saveRecord(state.db, recordKey, record);
    }
    // A build canceled while it solved (or whose steps were all cached) exports and pushes nothing.
    hooks.signal?.throwIfAborted();

    // ---- export ----
    const targets: TargetResult[] = [];
    for (const p of planned) {
      const byDigest = refOf.get(p)!;
      const { exports, images } = await exportImages({
        state,
        registry,
        req: p.target,
        def: p.def,
        solved: solvedOf.get(p)!,
        cache,
        conversions: p.conversions,
        platforms: p.platforms,
        refs: p.conversions.map((c) => (c.output ? byDigest.get(c.output.digest)! : { kind: 'layers' as const, layers: [] })),
        ignorePatterns: p.ignorePatterns,
        fileHasher,
        warn: (message) => warnings.push({ target: p.target.name ?? '', message }),
        progress,
        label: p.target.name,
        startedOn: named ? new Date() : startedOn,
      });
      targets.push({ name: p.target.name ?? '', exports, images, explanations: explanationsOf.get(p) ?? [] });
    }
    // Automatic GC (KILN_GC_KEEP_STORAGE etc., cache/gc-policy.ts), this build's data included now that it is done.
    lease.release();
    {
      const gc = await collectToPolicy(state, gcPolicy);
      if (gc) progress?.({ type: 'status', message: `gc: removed ${gc.removedRecords} cache records, ${gc.reclaimedBytes} bytes`, time: Date.now() });
    }
    return { targets, warnings, vertices };
  } finally {
    lease.release();
    await registry.close();
    if (emptyContext) rmSync(emptyContext, { recursive: true, force: true });
    uncachedMounts?.remove();
  }
}

// ---- the solver of one solve group: what every op sees (env) and what only RUN and ADD URL see ----
interface EnvInput {
  state: State;
  registry: RegistryClient;
  localDirs: Record<string, string>;
  fileHasher: SolverEnv['fileHasher'];
  buildPlatform: Platform;
  req: BuildRequest;
  /** Any target of the group: they all have the same RUN settings (solve-groups.ts). */
  target: BuildTarget;
  uncachedMountsRoot?: string;
  cacheMountSeeder?: CacheMountSeeder;
}

function solverFor({ state, registry, localDirs, fileHasher, buildPlatform, req, target: t, uncachedMountsRoot, cacheMountSeeder }: EnvInput): Solver {
  const run: RunSettings = { secrets: t.secrets ?? {}, defaultNetwork: t.network === 'none' || t.network === 'host' ? t.network : 'bridge', extraHosts: t.extraHosts, dns: t.dns, ssh: t.ssh, ...sandboxLimits(t.limits), uncachedMountsRoot, cacheMountSeeder };
  return new Solver({ state, registry, localDirs, hostPlatform: buildPlatform, pull: t.pull, fileHasher }, buildOps({ run, fetch: { denyLocalFetch: req.denyLocalFetch, localFetchAllowed: req.localFetchAllowed } }));
}
