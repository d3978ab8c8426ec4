// kiln bake: several targets (each a BuildRequest: Dockerfile, context, target stage, args, platforms,
// outputs) converted separately, merged into ONE graph and solved once, so a vertex two targets share (a
// common base stage, an identical RUN on the same base) runs once. Then each target's images are made
// and exported as `kiln build` would. Local contexts are named per directory: targets reading the same
// directory share its source vertex.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { State } from '../../cache/state.js';
import { RegistryClient } from '../../base/oci/registry/client.js';
import { hostPlatform, normalizePlatform } from '../../base/oci/platform.js';
import type { ConvertResult, NamedContext } from '../../frontends/dockerfile/convert/types.js';
import { namedContextExcludes } from './named-context-ignore.js';
import { uncachedMountsRoot } from './uncached-mounts.js';
import { loadDockerignore } from '../../base/patterns/dockerignore.js';
import type { VertexInput } from '../../solver/graph/ops.js';
import { Solver, type SolveResult } from '../../solver/solver.js';
import { PersistentResultCache } from '../../solver/persistent-cache.js';
import { defaultOps } from '../../solver/ops/index.js';
import type { ProgressSink } from '../../solver/progress.js';
import type { Ref } from '../../solver/refs.js';
import { ImageResolver } from './image-resolver.js';
import { StatIndex } from '../../cache/stat-index.js';
import type { ExportOutcome } from './exports.js';
import type { ExportImage } from '../export/types.js';
import { checkEntitlements } from '../../solver/entitlements.js';
import { sandboxLimits } from './limits.js';
import { cacheMountSeederFor, importCaches } from './remote-cache.js';
import { checkNoWasmRun } from './wasm.js';
import { mergeDefinitions, type BuildRequest } from './build.js';
import { exportImages } from './export-images.js';
import { convertForPlatforms } from './convert-request.js';
import { UserError, isUserFacing } from '../../base/errors.js';

export interface BakeTarget {
  name: string;
  request: BuildRequest;
}

export interface BakeRequest {
  targets: BakeTarget[];
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface BakeTargetResult {
  name: string;
  exports: ExportOutcome[];
  images: ExportImage[];
}

export interface BakeResult {
  targets: BakeTargetResult[];
  warnings: { target: string; line?: number; message: string }[];
  /** Vertices in the merged graph, and how many the targets' graphs had together (shared ones counted per target). */
  vertices: { merged: number; perTarget: number };
}

interface Prepared {
  target: BakeTarget;
  platforms: NonNullable<BuildRequest['platforms']>;
  conversions: ConvertResult[];
  ignorePatterns?: string[];
}

export async function bake(state: State, breq: BakeRequest): Promise<BakeResult> {
  if (breq.targets.length === 0) throw new UserError('kiln bake: no targets to build');
  const first = breq.targets[0]!.request;
  const buildPlatform = normalizePlatform(hostPlatform());
  const registry = new RegistryClient();
  const emptyContext = mkdtempSync(join(tmpdir(), 'kiln-empty-context-'));
  let uncachedMounts: ReturnType<typeof uncachedMountsRoot> | undefined;
  const progress = breq.progress;
  try {
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
    const resolver = new ImageResolver(state, registry, { pull: breq.targets.some((t) => t.request.pull) });
    const prepared: Prepared[] = [];
    for (const target of breq.targets) {
      const req = target.request;
      const contextDir = req.contextDir ?? emptyContext;
      const ignore = req.contextDir ? loadDockerignore(contextDir, req.dockerfile.path ?? join(contextDir, 'Dockerfile')) : undefined;
      const contextName = localName(contextDir, 'context');
      const namedContexts: Record<string, NamedContext> = {};
      for (const [name, spec] of Object.entries(req.buildContexts ?? {})) {
        if (spec.kind === 'local') namedContexts[name] = { kind: 'local', name: localName(spec.path, `ctx-${name}`), excludes: namedContextExcludes(spec.path) };
        else if (spec.kind === 'image') namedContexts[name] = { kind: 'image', ref: spec.ref };
        else namedContexts[name] = { kind: 'oci-layout', identifier: spec.identifier.replace(/^oci-layout:\/\//, '') };
      }
      const platforms = req.platforms?.length ? req.platforms : [buildPlatform];
      const conversions = await convertForPlatforms(req, platforms, { buildPlatform, namedContexts, contextName, dockerignorePatterns: ignore?.patterns ?? [], resolver }).catch((err: unknown) => {
        throw isUserFacing(err) ? new UserError(`target ${target.name}: ${err.message}`, { cause: err }) : err;
      });
      prepared.push({ target, platforms, conversions, ignorePatterns: ignore?.patterns });
    }

    const allConversions = prepared.flatMap((p) => p.conversions);
    const outputs = allConversions.map((c) => c.output).filter((o): o is VertexInput => o !== null);
    const def = mergeDefinitions(allConversions.map((c) => c.definition), outputs);
    const perTarget = allConversions.reduce((n, c) => n + c.definition.vertices.length, 0);
    progress?.({ type: 'status', message: `bake: ${breq.targets.length} targets (${breq.targets.map((t) => t.name).join(', ')}), one graph of ${def.vertices.length} steps (${perTarget} without sharing)`, time: Date.now() });
    const allow = [...new Set(breq.targets.flatMap((t) => t.request.allow ?? []))];
    checkEntitlements(def, allow, first.network);
    checkNoWasmRun(def);

    const indexes = await Promise.all(Object.values(localDirs).map(async (dir) => ({ dir: `${dir.replace(/\/+$/, '')}/`, index: await StatIndex.load(state.db, dir) })));
    const fileHasher = (real: string, st?: import('node:fs').Stats) => (indexes.find((i) => real.startsWith(i.dir)) ?? indexes[0]!).index.hash(real, st);
    const warnings: BakeResult['warnings'] = prepared.flatMap((p) => p.conversions.flatMap((c) => c.warnings.map((w) => ({ target: p.target.name, ...w }))));
    const imported = await importCaches(state, registry, breq.targets.flatMap((t) => t.request.cacheFrom ?? []), (message) => warnings.push({ target: '', message }));
    const cacheMountSeeder = cacheMountSeederFor(state, imported, (message) => warnings.push({ target: '', message }), (message) => progress?.({ type: 'status', message, time: Date.now() }));
    const solver = new Solver(
      {
        state, registry, localDirs, secrets: first.secrets ?? {}, hostPlatform: buildPlatform, pull: first.pull,
        defaultNetwork: first.network === 'none' || first.network === 'host' ? first.network : 'bridge',
        extraHosts: first.extraHosts, dns: first.dns, ssh: first.ssh, ...sandboxLimits(first.limits), fileHasher,
        uncachedMountsRoot: def.vertices.some((v) => v.meta.ignoreCache) ? (uncachedMounts ??= uncachedMountsRoot(state.root)).root : undefined,
        cacheMountSeeder,
      },
      defaultOps,
    );
    const cache = new PersistentResultCache(state, imported);
    let solved: SolveResult | { refs: Ref[] };
    try {
      solved = outputs.length ? await solver.solve(def, { progress, signal: breq.signal, cache }) : { refs: [] };
    } finally {
      for (const i of indexes) await i.index.save();
    }
    const refByOutput = new Map(outputs.map((o, i) => [o.digest, solved.refs[i]!]));
    const results: BakeTargetResult[] = [];
    for (const p of prepared) {
      const req = p.target.request;
      const { exports, images } = await exportImages({
        state,
        registry,
        req,
        def,
        solved,
        cache,
        conversions: p.conversions,
        platforms: p.platforms,
        refs: p.conversions.map((c) => (c.output ? refByOutput.get(c.output.digest)! : { kind: 'layers' as const, layers: [] })),
        ignorePatterns: p.ignorePatterns,
        fileHasher,
        warn: (message) => warnings.push({ target: p.target.name, message }),
        progress,
        label: p.target.name,
        startedOn: new Date(),
      });
      results.push({ name: p.target.name, exports, images });
    }
    return { targets: results, warnings, vertices: { merged: def.vertices.length, perTarget } };
  } finally {
    await registry.close();
    rmSync(emptyContext, { recursive: true, force: true });
    uncachedMounts?.remove();
  }
}
