// The one place the BuildKit API calls kiln's engine: a dockerfile.v0 solve with the files the client
// shares becomes a kiln BuildRequest, and the engine's outcome becomes BuildKit's exporter response.
// (When the engine's entry point changes, this file is the one to follow it.)
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { State } from '../../cache/state.js';
import { runBuild, type BuildRequest, type BuildTarget } from '../engine/build.js';
import type { OutputSpec } from '../engine/exports.js';
import type { CacheExportSpec, CacheImportSpec } from '../engine/remote-cache.js';
import type { ProgressEvent } from '../../solver/progress.js';
import { UserError } from '../../base/errors.js';
import { formatPlatform } from '../../base/oci/platform.js';
import { readDockerignore } from '../../base/patterns/dockerignore.js';
import { readFileInRoot } from '../../native/in-root.js';
import { checkSyntax, readAttrs, secretIds, syntaxDirective } from './frontend-attrs.js';
import { receiveDir, type ReceiveStats } from './fsutil-receive.js';
import { sendDir, sendFile } from './output-send.js';
import { fetchSecrets, sessionCredentials } from './session-attachables.js';
import { forwardAgents, sshIds } from './ssh-forward.js';
import type { ClientSession } from './session-grpc.js';
import type { SolveInfo } from './build-registry.js';
import { LINT_REQUEST, lintMetadata } from './lint-request.js';
import { fetchLocalCache, localExportSpec, sendLocalCache, type LocalCacheExport } from './local-cache.js';
import type { ConvertWarning } from '../../frontends/dockerfile/convert/types.js';

export interface SolveContext {
  state: State;
  session: ClientSession;
  solve: SolveInfo;
  /** The frontend options of the gateway's solve (buildx's attributes). */
  frontendOpt: Record<string, string>;
  /** Where this tenant's synced dirs live between builds. */
  syncRoot: string;
  /** A scratch dir of this build (outputs before they go back). */
  buildDir: string;
  allowedEntitlements: string[];
  progress: (ev: ProgressEvent) => void;
  /** A builder step shown to the client (receiving files, sending outputs). */
  step: (name: string) => (error?: string, log?: string) => void;
  signal: AbortSignal;
  /** Serialises builds that use the same synced dir. */
  lock: (key: string) => Promise<() => void>;
}

export interface SolveOutcome {
  exporterResponse: Record<string, string>;
  /** The image config per platform, for the gateway's result metadata. */
  configs: { platform: string; config: string }[];
  sync: { contentBytes: number; filesRequested: number };
  /** A subrequest's answer (--call=check): result metadata, no image. */
  metadata?: Record<string, Buffer>;
}

function syncDir(ctx: SolveContext, dirName: string, purpose: string): string {
  const key = createHash('sha256').update(`${ctx.session.sharedKey}\0${dirName}\0${purpose}`).digest('hex').slice(0, 32);
  const dir = join(ctx.syncRoot, key);
  mkdirSync(ctx.syncRoot, { recursive: true });
  return dir;
}

export function outputsOf(solve: SolveInfo, buildDir: string): { outputs: OutputSpec[]; back: { id: number; kind: 'file' | 'dir'; path: string }[] } {
  const outputs: OutputSpec[] = [];
  const back: { id: number; kind: 'file' | 'dir'; path: string }[] = [];
  solve.exporters.forEach((e, id) => {
    const attrs = { ...e.Attrs };
    const names = (attrs.name ?? '').split(',').map((n) => n.trim()).filter(Boolean);
    switch (e.Type) {
      case 'image':
      case 'moby':
        outputs.push({ type: 'image', names, push: attrs.push === 'true', attrs });
        break;
      case 'oci':
      case 'docker':
      case 'tar': {
        const path = join(buildDir, `output-${id}`);
        outputs.push({ type: e.Type, dest: path, names, attrs });
        back.push({ id, kind: 'file', path });
        break;
      }
      case 'local': {
        const path = join(buildDir, `output-${id}`);
        outputs.push({ type: 'local', dest: path, attrs });
        back.push({ id, kind: 'dir', path });
        break;
      }
      case 'cacheonly':
        // Build into the cache, export nothing.
        break;
      default:
        throw new UserError(`exporter type "${e.Type}" is not supported by this builder (image, oci, docker, tar, local, cacheonly are)`);
    }
  });
  return { outputs, back };
}

/** What the cache carriers need of a solve: its request, a step to show, a scratch dir and the client's session. */
export type CacheIo = Pick<SolveContext, 'solve' | 'step' | 'buildDir'> & { session?: ClientSession };

/** --cache-from as buildx sent them; a local one is fetched from the client's session first. */
export async function cacheImports(ctx: CacheIo): Promise<CacheImportSpec[]> {
  const out: CacheImportSpec[] = [];
  for (const [i, c] of ctx.solve.cacheImports.entries()) {
    if (c.Type === 'registry') out.push({ type: 'registry', ref: c.Attrs.ref });
    else if (c.Type === 'local') {
      if (!ctx.session) throw new UserError(`--cache-from type=local needs the client's session`);
      const session = ctx.session;
      const done = ctx.step(`importing cache from client directory ${c.Attrs.src ?? ''}`);
      try {
        const got = await fetchLocalCache(session, c.Attrs, join(ctx.buildDir, `cache-from-${i}`));
        done(undefined, `${got.blobs} blobs, ${got.bytes} bytes`);
        out.push(got.spec);
      } catch (err) {
        // As in BuildKit: a cache that cannot be read makes a slower build, not a failed one.
        done(undefined, `cannot import cache: ${(err as Error).message}`);
      }
    } else if (c.Type !== 'inline') throw new UserError(`--cache-from type=${c.Type} is not supported by this builder (type=registry and local are)`);
  }
  return out;
}

export function cacheExports(solve: SolveInfo, buildDir: string): { specs: CacheExportSpec[]; local: LocalCacheExport[] } {
  const local: LocalCacheExport[] = [];
  const specs = solve.cacheExports.map((c, i): CacheExportSpec => {
    if (c.Type === 'inline') return { type: 'inline', attrs: c.Attrs };
    if (c.Type === 'registry') {
      if (!c.Attrs.ref) throw new UserError('--cache-to type=registry needs ref=');
      return { type: 'registry', ref: c.Attrs.ref, mode: c.Attrs.mode === 'max' ? 'max' : 'min', attrs: c.Attrs };
    }
    if (c.Type === 'local') {
      const { spec, pending } = localExportSpec(c.Attrs, join(buildDir, `cache-to-${i}`));
      local.push(pending);
      return spec;
    }
    throw new UserError(`--cache-to type=${c.Type} is not supported by this builder (type=registry, local and inline are)`);
  });
  return { specs, local };
}

/** The build checks on the Dockerfile (nothing is solved), as the frontend.lint subrequest's result. */
async function checkOnly(ctx: SolveContext, attrs: ReturnType<typeof readAttrs>, dockerfile: BuildTarget['dockerfile'], contextDir: string): Promise<Omit<SolveOutcome, 'sync'>> {
  const req: BuildRequest = {
    targets: [{ contextDir, dockerfile, target: attrs.target, buildArgs: attrs.buildArgs, platforms: attrs.platforms, pull: attrs.pull, outputs: [] }],
    printGraph: 'json',
    check: true,
    registryCredentials: sessionCredentials(ctx.session),
    denyLocalFetch: true,
  };
  const result = await runBuild(ctx.state, req, { progress: ctx.progress, signal: ctx.signal });
  return { exporterResponse: {}, configs: [], metadata: lintMetadata(result.warnings as ConvertWarning[], dockerfile) };
}

/** Sends each --cache-to type=local to the client; its manifest goes into the exporter response. */
export async function sendLocalCaches(ctx: CacheIo, local: LocalCacheExport[], exporterResponse: Record<string, string>): Promise<void> {
  for (const l of local) {
    if (!ctx.session) throw new UserError(`--cache-to type=local needs the client's session`);
    const done = ctx.step(`exporting cache to client directory ${l.dest}`);
    try {
      const sent = await sendLocalCache(ctx.session, l);
      if (sent) exporterResponse['cache.manifest'] = JSON.stringify(sent.descriptor);
      done(undefined, sent ? `${sent.blobs} blobs, ${sent.bytes} bytes sent` : 'nothing to export');
    } catch (err) {
      done((err as Error).message);
      throw err;
    }
  }
}

/** Runs one dockerfile.v0 solve on kiln's engine: sync the client's files, build, export, send outputs back. */
export async function solveDockerfile(ctx: SolveContext): Promise<SolveOutcome> {
  const attrs = readAttrs(ctx.frontendOpt);
  if (attrs.subrequest && attrs.subrequest !== LINT_REQUEST) throw new UserError(`unsupported request ${attrs.subrequest}: this builder answers --call=check (frontend.lint) and builds`);
  const sync = { contentBytes: 0, filesRequested: 0 };
  const unlocks: (() => void)[] = [];
  let agents: { close(): void } | undefined;
  const receive = async (dirName: string, purpose: string, label: string, opts: { include?: string[]; exclude?: string[] }) => {
    const dest = syncDir(ctx, dirName, purpose);
    unlocks.push(await ctx.lock(dest));
    const done = ctx.step(`[internal] ${label}`);
    let stats: ReceiveStats;
    try {
      stats = await receiveDir(ctx.session, dest, { dirName, includePatterns: opts.include, excludePatterns: opts.exclude, followPaths: opts.include, signal: ctx.signal });
    } catch (err) {
      done((err as Error).message);
      throw err;
    }
    done(undefined, `transferring ${dirName}: ${stats.entries} entries, ${stats.filesRequested} changed file(s), ${stats.contentBytes} bytes`);
    sync.contentBytes += stats.contentBytes;
    sync.filesRequested += stats.filesRequested;
    return dest;
  };
  try {
    // 1. The Dockerfile (and its own ignore file), then the context's .dockerignore, then the context.
    const filename = attrs.filename;
    const dfDir = await receive('dockerfile', 'dockerfile', `load build definition from ${filename}`, { include: [filename, `${filename}.dockerignore`] });
    const text = readFileInRoot(dfDir, filename, { maxBytes: 16 * 1024 * 1024 })?.toString('utf8');
    if (text === undefined) throw new UserError(`failed to read dockerfile: open ${filename}: no such file or directory`);
    if (ctx.solve.recorder) ctx.solve.recorder.record.dockerfile = { name: filename, digest: `sha256:${createHash('sha256').update(text).digest('hex')}` };
    checkSyntax(syntaxDirective(text), `${filename}: # syntax`);
    let ignore = readFileInRoot(dfDir, `${filename}.dockerignore`, { maxBytes: 4 * 1024 * 1024 });
    let ignDir: string | undefined;
    if (!ignore) {
      ignDir = await receive('context', 'dockerignore', 'load .dockerignore', { include: ['.dockerignore'] });
      ignore = readFileInRoot(ignDir, '.dockerignore', { maxBytes: 4 * 1024 * 1024 });
    }
    // --call=check: the checks need the Dockerfile and the ignore patterns, not the context.
    if (attrs.subrequest === LINT_REQUEST) return { ...(await checkOnly(ctx, attrs, { text, name: filename, path: join(dfDir, filename) }, ignDir ?? dfDir)), sync };
    const excludes = ignore ? readDockerignore(ignore.toString('utf8')) : [];
    const contextDir = await receive('context', 'context', 'transfer build context', { exclude: excludes });

    const buildContexts: NonNullable<BuildTarget['buildContexts']> = {};
    for (const [name, c] of Object.entries(attrs.namedContexts)) {
      if (c.kind === 'image') buildContexts[name] = { kind: 'image', ref: c.ref };
      else buildContexts[name] = { kind: 'local', path: await receive(c.dirName, `context ${name}`, `load build context ${name}`, {}) };
    }

    // 2. Secrets the Dockerfile names, from the client.
    const secrets = await fetchSecrets(ctx.session, secretIds(text));
    const ssh = await forwardAgents(ctx.session, sshIds(text), join(ctx.buildDir, 'ssh'));
    agents = ssh;

    // 3. The build, with the exporters buildx asked for.
    mkdirSync(ctx.buildDir, { recursive: true });
    const { outputs, back } = outputsOf(ctx.solve, ctx.buildDir);
    const cacheTo = cacheExports(ctx.solve, ctx.buildDir);
    const attestable = outputs.every((o) => o.type === 'image' || o.type === 'oci');
    const allow = ctx.solve.entitlements.filter((e) => {
      if (!ctx.allowedEntitlements.includes(e)) throw new UserError(`entitlement ${e} is not allowed by this builder (kiln serve --allow-insecure-entitlement ${e})`);
      return true;
    });
    const target: BuildTarget = {
      contextDir,
      dockerfile: { text, name: filename, path: join(dfDir, filename) },
      target: attrs.target,
      buildArgs: attrs.buildArgs,
      platforms: attrs.platforms,
      secrets,
      noCache: attrs.noCache,
      noCacheFilter: attrs.noCacheFilter,
      pull: attrs.pull,
      sourceDateEpoch: attrs.sourceDateEpoch,
      labels: attrs.labels,
      buildContexts,
      outputs,
      extraHosts: attrs.extraHosts,
      ssh: ssh.sockets,
      network: attrs.network,
      allow,
      cacheFrom: await cacheImports(ctx),
      cacheTo: cacheTo.specs,
      attest: attestable && (attrs.provenance || attrs.sbom) ? { provenance: attrs.provenance, sbom: attrs.sbom || undefined } : undefined,
    };
    const req: BuildRequest = {
      targets: [target],
      registryCredentials: sessionCredentials(ctx.session),
      historyOrigin: `buildkit:${ctx.solve.tenant}`,
      denyLocalFetch: true,
    };
    // The build's record is the one Control.Solve made (buildx's ref, the tenant's history): the engine notes into it.
    const recorder = ctx.solve.recorder;
    const progress = recorder ? (ev: ProgressEvent) => (recorder.observe(ev), ctx.progress(ev)) : ctx.progress;
    const result = (await runBuild(ctx.state, req, { progress, signal: ctx.signal, recorder })).targets[0]!;
    ctx.signal.throwIfAborted();

    // 4. Outputs that go back to the client.
    for (const b of back) {
      if (!existsSync(b.path)) continue;
      const e = ctx.solve.exporters[b.id];
      const done = ctx.step(`sending ${e.Type} output to the client`);
      let bytes = 0;
      try {
        bytes = b.kind === 'file' ? await sendFile(ctx.session, b.id, b.path, ctx.signal) : await sendDir(ctx.session, b.id, b.path, ctx.signal);
      } catch (err) {
        done((err as Error).message);
        throw err;
      }
      done(undefined, `sent ${bytes} bytes`);
    }

    const exporterResponse: Record<string, string> = {};
    // 5. A local cache goes to the client's directory; buildx writes its index.json from cache.manifest.
    await sendLocalCaches(ctx, cacheTo.local, exporterResponse);
    const digest = result.exports.find((e) => e.digest)?.digest;
    if (digest) exporterResponse['containerimage.digest'] = digest;
    const names = result.exports.flatMap((e) => e.names ?? []);
    if (names.length) exporterResponse['image.name'] = [...new Set(names)].join(',');
    return {
      exporterResponse,
      configs: result.images.map((i) => ({ platform: formatPlatform(i.platform), config: JSON.stringify(i.config) })),
      sync,
    };
  } finally {
    agents?.close();
    for (const u of unlocks.reverse()) u();
  }
}
