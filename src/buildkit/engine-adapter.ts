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

export function cacheImports(solve: SolveInfo): CacheImportSpec[] {
  return solve.cacheImports.flatMap((c): CacheImportSpec[] => {
    if (c.Type === 'registry') return [{ type: 'registry', ref: c.Attrs.ref }];
    if (c.Type === 'inline') return [];
    throw new UserError(`--cache-from type=${c.Type} is not supported by this builder (type=registry is)`);
  });
}

export function cacheExports(solve: SolveInfo): CacheExportSpec[] {
  return solve.cacheExports.map((c): CacheExportSpec => {
    if (c.Type === 'inline') return { type: 'inline', attrs: c.Attrs };
    if (c.Type === 'registry') {
      if (!c.Attrs.ref) throw new UserError('--cache-to type=registry needs ref=');
      return { type: 'registry', ref: c.Attrs.ref, mode: c.Attrs.mode === 'max' ? 'max' : 'min', attrs: c.Attrs };
    }
    throw new UserError(`--cache-to type=${c.Type} is not supported by this builder (type=registry and inline are)`);
  });
}

/** Runs one dockerfile.v0 solve on kiln's engine: sync the client's files, build, export, send outputs back. */
export async function solveDockerfile(ctx: SolveContext): Promise<SolveOutcome> {
  const attrs = readAttrs(ctx.frontendOpt);
  if (attrs.subrequest) throw new UserError(`unsupported request ${attrs.subrequest}: this builder does not answer --call subrequests`);
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
    checkSyntax(syntaxDirective(text), `${filename}: # syntax`);
    let ignore = readFileInRoot(dfDir, `${filename}.dockerignore`, { maxBytes: 4 * 1024 * 1024 });
    if (!ignore) {
      const ignDir = await receive('context', 'dockerignore', 'load .dockerignore', { include: ['.dockerignore'] });
      ignore = readFileInRoot(ignDir, '.dockerignore', { maxBytes: 4 * 1024 * 1024 });
    }
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
      cacheFrom: cacheImports(ctx.solve),
      cacheTo: cacheExports(ctx.solve),
      attest: attestable && (attrs.provenance || attrs.sbom) ? { provenance: attrs.provenance, sbom: attrs.sbom || undefined } : undefined,
    };
    const req: BuildRequest = {
      targets: [target],
      registryCredentials: sessionCredentials(ctx.session),
      historyOrigin: `buildkit:${ctx.solve.tenant}`,
      denyLocalFetch: true,
    };
    const result = (await runBuild(ctx.state, req, { progress: ctx.progress, signal: ctx.signal })).targets[0]!;
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
