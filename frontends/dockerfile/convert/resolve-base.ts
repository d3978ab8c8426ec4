// Resolving where each needed stage starts: scratch, a --build-context, or an image whose config the
// resolver fetches (BuildKit resolveReachableStages / resolveBaseImage).
import { InputSyntaxError } from '../../../base/errors.js';
import type { GraphPlatform } from '../../../solver/graph/ops.js';
import { DockerfileParseError, DockerfileSyntaxError } from '../errors.js';
import { suggest } from '../suggest.js';
import type { GraphEmitter } from './graph-emit.js';
import { emptyImage, isLayerless } from './image-config.js';
import { normalizeImageRef } from './reference.js';
import { formatPlatform } from './platform.js';
import type { StageSet, StageState } from './stage-state.js';
import type { ConvertOptions, ImageConfigJSON, NamedContext } from './types.js';
import { progressName } from './progress.js';

export interface ResolveContext {
  opts: ConvertOptions;
  fileName: string;
  stages: StageSet;
  emitter: GraphEmitter;
}

/** The --build-context entry for a name, matching BuildKit's normalised comparison for image names. */
export function findNamedContext(named: Record<string, NamedContext> | undefined, name: string): NamedContext | undefined {
  if (!named) return undefined;
  if (Object.hasOwn(named, name)) return named[name];
  let norm: string;
  try { norm = normalizeImageRef(name); } catch { return undefined; }
  for (const [k, v] of Object.entries(named)) {
    try { if (normalizeImageRef(k) === norm) return v; } catch { /* not an image name */ }
  }
  return undefined;
}

function pinned(ref: string, digest: string): string {
  return ref.includes('@') || !digest ? ref : `${ref}@${digest}`;
}

/** Loads a named context into the stage: its filesystem, config and platform. */
async function loadNamedContext(ctx: ResolveContext, d: StageState, nc: NamedContext, platform: GraphPlatform): Promise<void> {
  if (nc.kind === 'local') {
    const attrs = nc.excludes?.length ? { excludepatterns: JSON.stringify(nc.excludes) } : undefined;
    d.state.ref = ctx.emitter.add({ kind: 'source', identifier: `local://${nc.name}`, attrs }, [], { description: `[context ${nc.name}] load from client` });
    d.image = emptyImage(platform);
    d.platform = platform;
    return;
  }
  if (nc.kind === 'image' && nc.ref === 'scratch') {
    // docker-image://scratch is the empty image, as in BuildKit: nothing to ask a registry.
    d.state.ref = null;
    d.image = emptyImage(platform);
    d.platform = platform;
    return;
  }
  const ref = nc.kind === 'image' ? normalizeImageRef(nc.ref) : `oci-layout://${nc.identifier}`;
  const r = await ctx.opts.resolver.resolve(ref, platform);
  const identifier = nc.kind === 'image' ? `docker-image://${pinned(r.ref, r.digest)}` : `oci-layout://${pinned(nc.identifier, r.digest)}`;
  setImage(d, r.config, { ref: pinned(r.ref, r.digest), digest: r.digest });
  d.state.ref = isLayerless(r.config) ? null : ctx.emitter.add({ kind: 'source', identifier }, [], { platform, description: `[context] FROM ${identifier.replace(/^[a-z-]+:\/\//, '')}` });
  d.platform = platform;
}

function setImage(d: StageState, config: ImageConfigJSON, base: { ref: string; digest: string }): void {
  const img = structuredClone(config);
  delete img.created;
  d.image = img;
  d.baseImage = base;
}

/** Resolves one stage's base (its FROM) for `platform`; `reachable` stages get a graph vertex. */
export async function resolveBase(ctx: ResolveContext, d: StageState, reachable: boolean): Promise<void> {
  const platform = d.platform ?? ctx.opts.targetPlatform;
  const line = d.stage.line;
  try {
    if (d.namedContext) {
      if (reachable) {
        await loadNamedContext(ctx, d, d.namedContext, platform);
        d.dispatched = true;
      }
      return;
    }
    const origName = d.stage.baseName;
    let normalized: string;
    try {
      normalized = normalizeImageRef(origName);
    } catch (e) {
      throw new DockerfileSyntaxError(`failed to parse stage name ${JSON.stringify(origName)}: ${(e as Error).message}`);
    }
    if (!reachable) return;
    const nc = findNamedContext(ctx.opts.namedContexts, origName);
    if (nc) {
      await loadNamedContext(ctx, d, nc, platform);
      return;
    }
    let r: Awaited<ReturnType<ConvertOptions['resolver']['resolve']>>;
    try {
      r = await ctx.opts.resolver.resolve(normalized, platform);
    } catch (e) {
      const hint = suggest(origName, ctx.stages.names(), true);
      throw new DockerfileSyntaxError(`${origName}: ${(e as Error).message}${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    const ref = pinned(r.ref, r.digest);
    setImage(d, r.config, { ref, digest: r.digest });
    d.stage = { ...d.stage, baseName: ref };
    if (isLayerless(r.config)) {
      d.state.ref = null;
    } else {
      d.state.ref = ctx.emitter.add({ kind: 'source', identifier: `docker-image://${ref}` }, [], {
        platform,
        description: progressName(d, `FROM ${ref}`),
        location: d.unregistered ? undefined : d.stage,
        stage: d.stage.stageName,
        ignoreCache: d.ignoreCache,
      });
    }
    d.platform = platform;
  } catch (e) {
    if (e instanceof DockerfileParseError) throw e;
    if (e instanceof InputSyntaxError) throw new DockerfileParseError(e.message, line, ctx.fileName);
    if (e instanceof Error && !(e as { userFacing?: boolean }).userFacing) throw e;
    throw new DockerfileParseError((e as Error).message, line, ctx.fileName);
  } finally {
    if (d.unregistered) d.dispatched = true;
  }
}

/** Stages a target needs: itself, its base chain and everything it copies or mounts from. */
export function reachableStages(target: StageState): Set<StageState> {
  const out = new Set<StageState>();
  const visit = (s: StageState): void => {
    if (out.has(s)) return;
    out.add(s);
    if (s.base) visit(s.base);
    for (const dep of s.deps.keys()) visit(dep);
  };
  visit(target);
  return out;
}

/** Resolves the bases of all reachable, not yet resolved stages (in parallel, like BuildKit's errgroup). */
export async function resolveReachable(ctx: ResolveContext, target: StageState): Promise<Set<StageState>> {
  const reachable = reachableStages(target);
  const jobs: Promise<void>[] = [];
  for (const d of ctx.stages.states) {
    const isReachable = reachable.has(d);
    if (d.base || d.dispatched || d.resolved) continue;
    d.resolved = isReachable;
    if (d.stage.baseName === 'scratch' && !d.namedContext) {
      d.state.ref = null;
      d.image = emptyImage(ctx.opts.targetPlatform);
      d.platform = ctx.opts.targetPlatform;
      if (d.unregistered) d.dispatched = true;
      continue;
    }
    jobs.push(resolveBase(ctx, d, isReachable));
  }
  const results = await Promise.allSettled(jobs);
  // Report the error of the earliest stage, so the message does not depend on network timing.
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return reachable;
}

export { formatPlatform };
