// The embedded build engine: Dockerfile → graph (one per platform) → solve → layer blobs → image configs
// → exporters. `kiln build` calls it in-process; `kiln serve` will call the same function.
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { State } from '../../cache/state.js';
import { RegistryClient } from '../../base/oci/registry/client.js';
import type { CredentialProvider } from '../../base/oci/registry/credentials.js';
import { formatPlatform, hostPlatform, normalizePlatform } from '../../base/oci/platform.js';
import type { Platform } from '../../base/oci/types.js';
import type { NamedContext } from '../../frontends/dockerfile/convert/types.js';
import { loadDockerignore } from '../../base/patterns/dockerignore.js';
import { namedContextExcludes } from './named-context-ignore.js';
import { uncachedMountsRoot } from './uncached-mounts.js';
import type { Definition, VertexInput, Vertex } from '../../solver/graph/ops.js';
import { graphToDot, graphToJSON } from '../../solver/graph/print.js';
import { Solver, type SolveResult, type ResultCache } from '../../solver/solver.js';
import { buildRecordKey, explainMisses, loadRecord, makeRecord, type Explanation } from './explain.js';
import { PersistentResultCache } from '../../solver/persistent-cache.js';
import { defaultOps } from '../../solver/ops/index.js';
import type { ProgressSink } from '../../solver/progress.js';
import { ImageResolver } from './image-resolver.js';
import { UserError } from '../../base/errors.js';
import { StatIndex } from '../../cache/stat-index.js';
import { autoCollect } from '../../cache/gc.js';
import { prefetchLayerBlobs } from './layer-blobs.js';
import type { OutputSpec, ExportOutcome } from './exports.js';
import type { ExportImage } from '../export/types.js';
import { exportImages } from './export-images.js';
import { convertForPlatforms } from './convert-request.js';
import type { SolverEnv } from '../../solver/env.js';
import { checkEntitlements } from '../../solver/entitlements.js';
import { grantEntitlements, sandboxLimits, type BuildLimits } from './limits.js';
import { cacheMountSeederFor, importCaches, type CacheExportSpec, type CacheImportSpec } from './remote-cache.js';
import { BuildRecorder } from './history/recorder.js';
import { HistoryStore } from './history/store.js';
import type { AttestOptions } from '../attest/attach.js';
import { checkNoWasmRun } from './wasm.js';

export type BuildContextSpec = { kind: 'local'; path: string } | { kind: 'image'; ref: string } | { kind: 'oci-layout'; identifier: string };

export interface BuildRequest {
  /** The build context dir; undefined when the Dockerfile came from stdin with no context. */
  contextDir?: string;
  dockerfile: { text: string; name: string; path?: string };
  target?: string;
  buildArgs?: Record<string, string>;
  /** Empty: this machine's platform. */
  platforms?: Platform[];
  buildContexts?: Record<string, BuildContextSpec>;
  secrets?: Record<string, Buffer>;
  noCache?: boolean;
  noCacheFilter?: string[];
  pull?: boolean;
  sourceDateEpoch?: number;
  labels?: Record<string, string>;
  outputs: OutputSpec[];
  progress?: ProgressSink;
  printGraph?: 'json' | 'dot';
  /** --check: only run the build checks (with printGraph set, so nothing is solved); results come back as warnings. */
  check?: boolean;
  /** Explain every cache miss against the last build of the same Dockerfile and target (--explain). */
  explain?: boolean;
  /** ADD http(s):// may not reach this machine's own addresses (kiln serve, unless --allow-local-fetch). */
  denyLocalFetch?: boolean;
  /** With denyLocalFetch: HOST:PORT origins allowed anyway. */
  localFetchAllowed?: string[];
  /** Registry credentials (kiln serve: the tenant's); default: the user's docker config. */
  registryCredentials?: CredentialProvider;
  /** Who ran the build, for the history: `local` (default) or a kiln serve tenant. */
  historyOrigin?: string;
  /** --cache-from: caches to import (lazily) before solving. */
  cacheFrom?: CacheImportSpec[];
  /** --cache-to: where to export this build's cache records. */
  cacheTo?: CacheExportSpec[];
  /** Network for RUN steps that do not ask for one (--network). */
  network?: 'default' | 'none' | 'host';
  /** Granted entitlements (--allow): network.host, security.insecure. */
  allow?: string[];
  /** RUN networking, SSH forwarding and resource limits (see solver/env.ts). */
  extraHosts?: SolverEnv['extraHosts'];
  dns?: SolverEnv['dns'];
  ssh?: SolverEnv['ssh'];
  /** Resource limits per RUN and per build; the kiln config file's limits are the ceiling (src/engine/limits.ts). */
  limits?: BuildLimits;
  signal?: AbortSignal;
  /** kiln serve: wraps the build cache (to share steps between concurrent builds). */
  wrapCache?: (cache: ResultCache) => ResultCache;
  /** kiln serve: content sha256 (hex) of context files it already knows, by real path. */
  knownFileHash?: (realPath: string) => string | undefined;
  /** --sbom / --provenance: attestations attached to each image (src/attest). */
  attest?: AttestOptions;
}

export interface BuildResult {
  /** The printed graph, for --print-graph (nothing was built). */
  graph?: string;
  exports: ExportOutcome[];
  images: ExportImage[];
  warnings: { line?: number; message: string }[];
  /** Why each step that ran was not cached (with --explain or rawjson progress). */
  explanations: Explanation[];
}

/** Merges per-platform graphs: identical vertices (platform-independent work) appear once. */
export function mergeDefinitions(defs: Definition[], outputs: VertexInput[]): Definition {
  const seen = new Map<string, Vertex>();
  for (const d of defs) for (const v of d.vertices) if (!seen.has(v.digest)) seen.set(v.digest, v);
  return { vertices: [...seen.values()], outputs };
}

/** What the history keeps of a build besides its progress: its graph and why steps were not cached. */
interface BuildTrace {
  def?: Definition;
  explanations?: Explanation[];
}

/** Builds, recording the build in the state's history (unless only the graph is printed). */
export async function build(state: State, req: BuildRequest): Promise<BuildResult> {
  if (req.printGraph) return solveAndExport(state, req, {});
  const recorder = new BuildRecorder(new HistoryStore(state.root), {
    origin: req.historyOrigin ?? 'local',
    dockerfile: req.dockerfile,
    context: req.contextDir,
    target: req.target,
    buildArgs: req.buildArgs,
    platforms: (req.platforms?.length ? req.platforms : [hostPlatform()]).map(formatPlatform),
    cacheImports: (req.cacheFrom ?? []).map((c) => (c.type === 'registry' ? c.ref : c.src)),
    cacheExports: (req.cacheTo ?? []).map((c) => (c.type === 'registry' ? c.ref : c.type === 'local' ? c.dest : 'inline')),
  });
  const trace: BuildTrace = {};
  const progress = req.progress;
  try {
    const result = await solveAndExport(state, { ...req, progress: (ev) => (recorder.observe(ev), progress?.(ev)) }, trace);
    recorder.finish({ status: 'completed', def: trace.def, explanations: trace.explanations, results: result.exports });
    return result;
  } catch (err) {
    recorder.finish({ status: req.signal?.aborted ? 'canceled' : 'failed', def: trace.def, explanations: trace.explanations, error: (err as Error).message ?? String(err) });
    throw err;
  }
}

async function solveAndExport(state: State, req: BuildRequest, trace: BuildTrace): Promise<BuildResult> {
  const startedOn = new Date();
  const platforms = req.platforms?.length ? req.platforms : [normalizePlatform(hostPlatform())];
  const buildPlatform = normalizePlatform(hostPlatform());
  const registry = new RegistryClient({ credentials: req.registryCredentials });
  const emptyContext = req.contextDir ? undefined : mkdtempSync(join(tmpdir(), 'kiln-empty-context-'));
  let uncachedMounts: ReturnType<typeof uncachedMountsRoot> | undefined;
  const uncached = () => (uncachedMounts ??= uncachedMountsRoot(state.root));
  try {
    const contextDir = req.contextDir ?? emptyContext!;
    const ignore = req.contextDir ? loadDockerignore(contextDir, req.dockerfile.path ?? join(contextDir, 'Dockerfile')) : undefined;
    const localDirs: Record<string, string> = { context: contextDir };
    const namedContexts: Record<string, NamedContext> = {};
    for (const [name, spec] of Object.entries(req.buildContexts ?? {})) {
      if (spec.kind === 'local') {
        localDirs[`ctx-${name}`] = spec.path;
        namedContexts[name] = { kind: 'local', name: `ctx-${name}`, excludes: namedContextExcludes(spec.path) };
      } else if (spec.kind === 'image') namedContexts[name] = { kind: 'image', ref: spec.ref };
      else namedContexts[name] = { kind: 'oci-layout', identifier: spec.identifier.replace(/^oci-layout:\/\//, '') };
    }
    const resolver = new ImageResolver(state, registry, { pull: req.pull });
    const conversions = await convertForPlatforms(req, platforms, { buildPlatform, namedContexts, dockerignorePatterns: ignore?.patterns ?? [], resolver });
    const warnings: BuildResult['warnings'] = conversions.flatMap((c) => c.warnings);
    const warn = (message: string) => warnings.push({ message });
    const outputs = conversions.map((c) => c.output).filter((o): o is VertexInput => o !== null);
    const def = mergeDefinitions(
      conversions.map((c) => c.definition),
      outputs,
    );
    trace.def = def;
    if (req.printGraph) {
      return { graph: req.printGraph === 'dot' ? graphToDot(def) : graphToJSON(def), exports: [], images: [], warnings, explanations: [] };
    }

    checkEntitlements(def, grantEntitlements(req.allow ?? []), req.network);
    checkNoWasmRun(def);
    // Stat indexes of the local dirs: unchanged files are not re-read to compute COPY keys.
    const indexes = await Promise.all(Object.values(localDirs).map(async (dir) => ({ dir: `${dir.replace(/\/+$/, '')}/`, index: await StatIndex.load(state.db, dir) })));
    const fileHasher = (real: string, st?: import('node:fs').Stats) => req.knownFileHash?.(real) ?? (indexes.find((i) => real.startsWith(i.dir)) ?? indexes[0]!).index.hash(real, st);
    const imported = await importCaches(state, registry, req.cacheFrom ?? [], warn);
    const cacheMountSeeder = cacheMountSeederFor(state, imported, warn, (message) => req.progress?.({ type: 'status', message, time: Date.now() }));
    const solver = new Solver(
      { state, registry, localDirs, secrets: req.secrets ?? {}, hostPlatform: buildPlatform, pull: req.pull, defaultNetwork: req.network === 'none' || req.network === 'host' ? req.network : 'bridge', extraHosts: req.extraHosts, dns: req.dns, ssh: req.ssh, ...sandboxLimits(req.limits), fileHasher, denyLocalFetch: req.denyLocalFetch, localFetchAllowed: req.localFetchAllowed, uncachedMountsRoot: def.vertices.some((v) => v.meta.ignoreCache) ? uncached().root : undefined, cacheMountSeeder },
      defaultOps,
    );
    const cache = new PersistentResultCache(state, imported);
    // A build that only pushes can leave layers of an imported cache in the registry (mounted, not fetched).
    const pushOnly = req.outputs.length > 0 && req.outputs.every((o) => o.type === 'image' && o.push);
    let solved: Pick<SolveResult, 'refs'> & Partial<SolveResult>;
    try {
      solved = outputs.length
        ? await solver.solve(def, { progress: req.progress, signal: req.signal, cache: prefetchLayerBlobs(state, def, req.outputs, req.sourceDateEpoch)(req.wrapCache ? req.wrapCache(cache) : cache), materializeOutputs: !pushOnly })
        : { refs: [] };
    } finally {
      for (const i of indexes) await i.index.save();
    }
    // The record of this build, for explaining the next one's cache misses.
    let explanations: Explanation[] = [];
    if (solved.keyParts) {
      const recordKey = buildRecordKey([req.contextDir ?? '-', req.dockerfile.path ?? req.dockerfile.name, req.target ?? '', platforms.map(formatPlatform).join(',')]);
      const record = makeRecord(def, solved.keyParts);
      // Always worked out: the history keeps why each step ran; --explain also shows it.
      explanations = explainMisses(await loadRecord(state.db, recordKey), record, solved.executedVertices ?? new Set());
      trace.explanations = explanations;
      if (req.explain) for (const e of explanations) req.progress?.({ type: 'vertex.explain', ...e, time: Date.now() });
      await state.db.put(recordKey, record);
    }
    // A build canceled while it solved (or whose steps were all cached) exports and pushes nothing.
    req.signal?.throwIfAborted();
    const refByOutput = new Map(outputs.map((o, i) => [o.digest, solved.refs[i]!]));
    const { exports, images } = await exportImages({
      state,
      registry,
      req,
      def,
      solved,
      cache,
      conversions,
      platforms,
      refs: conversions.map((c) => (c.output ? refByOutput.get(c.output.digest)! : { kind: 'layers' as const, layers: [] })),
      ignorePatterns: ignore?.patterns,
      fileHasher,
      warn,
      progress: req.progress,
      startedOn,
    });
    // Automatic GC: keep the build cache under KILN_GC_KEEP_STORAGE (default 20 GB; 0 turns it off).
    const keep = gcKeepStorage();
    if (keep > 0) {
      const gc = await autoCollect(state, keep);
      if (gc) req.progress?.({ type: 'status', message: `gc: removed ${gc.removedRecords} cache records, ${gc.reclaimedBytes} bytes`, time: Date.now() });
    }
    return { exports, images, warnings, explanations };
  } finally {
    await registry.close();
    if (emptyContext && existsSync(emptyContext)) rmSync(emptyContext, { recursive: true, force: true });
    uncachedMounts?.remove();
  }
}

function gcKeepStorage(): number {
  const text = process.env.KILN_GC_KEEP_STORAGE;
  if (text === undefined || text === '') return 20 * 1024 ** 3;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!m) throw new UserError(`invalid KILN_GC_KEEP_STORAGE "${text}": expected a size like 10GB, or 0 to turn GC off`);
  return Math.floor(Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't']);
}
