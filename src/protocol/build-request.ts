// The codec of the engine's BuildRequest on kiln's builder protocol: one target of a request becomes one
// Solve's `start` message (encodeTarget, on the client) and comes back as the same BuildTarget on the
// builder (decodeTarget). What travels beside it: the context manifests (the files follow on request),
// secret values (asked for by id), registry credentials. Nothing else turns a start message into a build.
import { formatPlatform, parsePlatform } from '../../base/oci/platform.js';
import { UserError } from '../../base/errors.js';
import type { BuildRequest, BuildTarget } from '../engine/request.js';
import type { OutputSpec } from '../engine/exports.js';
import type { CacheExportSpec } from '../engine/remote-cache.js';
import { PROTOCOL_VERSION, type BuildStart, type ContextEntry, type OutputMsg } from './builder.js';

/** The target's settings the protocol does not carry yet: refused by the client rather than dropped. */
export function unsupportedRemotely(t: BuildTarget): string | undefined {
  if (Object.keys(t.ssh ?? {}).length) return '--ssh';
  if (t.dns && Object.values(t.dns).some((v) => v?.length)) return '--dns';
  if (t.limits && Object.values(t.limits).some((v) => v && Object.values(v).some((x) => x !== undefined))) return '--memory/--cpu limits';
  if (t.attest && (t.attest.sbom || t.attest.provenance)) return '--sbom/--provenance';
  return undefined;
}

/** Settings that name something on the client machine, which a builder cannot reach. */
function checkReachable(t: BuildTarget): void {
  for (const [name, spec] of Object.entries(t.buildContexts ?? {})) if (spec.kind === 'oci-layout') throw new UserError(`--build-context ${name}=oci-layout://… is not supported with a remote builder yet`);
  if (t.cacheFrom?.some((c) => c.type === 'local')) throw new UserError('--cache-from type=local reads a directory of this machine: not supported with a remote builder (use type=registry)');
  if (t.cacheTo?.some((c) => c.type === 'local')) throw new UserError('--cache-to type=local writes a directory of this machine: not supported with a remote builder (use type=registry or inline)');
}

/** What the client's context sync adds to a target: the manifests of its local contexts. */
export interface WireContexts {
  context?: ContextEntry[];
  /** The Dockerfile's path inside the context ('' when it is not in it). */
  dockerfilePath: string;
  /** The ignore patterns the client applied, when the Dockerfile is not in the context. */
  dockerignore?: string[];
  /** Manifests of local named contexts, by name. */
  named: Record<string, ContextEntry[]>;
}

function outputMsg(o: OutputSpec): OutputMsg {
  if (o.type === 'image') return { type: 'image', attrs: o.attrs, names: o.names, push: o.push };
  if (o.type === 'local') return { type: 'local', attrs: o.attrs, names: [], push: false };
  return { type: o.type, attrs: o.attrs, names: o.names, push: false };
}

export function encodeTarget(t: BuildTarget, req: Pick<BuildRequest, 'explain'>, wire: WireContexts, client: string): BuildStart {
  const refused = unsupportedRemotely(t);
  if (refused) throw new UserError(`${refused} is not supported with a remote builder yet`);
  checkReachable(t);
  const named: BuildStart['named_contexts'] = Object.entries(t.buildContexts ?? {}).map(([name, spec]) =>
    spec.kind === 'image' ? { name, image: spec.ref, local: null } : { name, image: '', local: { entries: wire.named[name] ?? [] } },
  );
  return {
    protocol_version: PROTOCOL_VERSION,
    frontend: 'dockerfile.v0',
    dockerfile_text: t.dockerfile.text,
    dockerfile_name: t.dockerfile.name,
    dockerfile_path: wire.dockerfilePath,
    has_dockerignore: !wire.dockerfilePath && wire.dockerignore !== undefined,
    dockerignore: !wire.dockerfilePath ? (wire.dockerignore ?? []) : [],
    target: t.target ?? '',
    build_args: t.buildArgs ?? {},
    platforms: (t.platforms ?? []).map(formatPlatform),
    no_cache: !!t.noCache,
    no_cache_filter: t.noCacheFilter ?? [],
    pull: !!t.pull,
    has_source_date_epoch: t.sourceDateEpoch !== undefined,
    source_date_epoch: String(t.sourceDateEpoch ?? 0),
    labels: t.labels ?? {},
    outputs: t.outputs.map(outputMsg),
    network: t.network ?? '',
    context: wire.context ? { entries: wire.context } : null,
    secret_ids: Object.keys(t.secrets ?? {}),
    explain: !!req.explain,
    client,
    named_contexts: named,
    allow: t.allow ?? [],
    extra_hosts: t.extraHosts ?? [],
    session_credentials: true,
    cache_from: (t.cacheFrom ?? []).map((c) => ({ type: 'registry', ref: c.type === 'registry' ? c.ref : '', mode: '', attrs: {} })),
    cache_to: (t.cacheTo ?? []).map((c) => (c.type === 'registry' ? { type: 'registry', ref: c.ref, mode: c.mode, attrs: c.attrs } : { type: 'inline', ref: '', mode: '', attrs: c.attrs })),
  };
}

/** Where the builder put what the client sent: the materialised contexts, the secrets, each output's destination. */
export interface DecodeInput {
  contextDir?: string;
  /** The Dockerfile's path on the builder (inside contextDir), if it has one there. */
  dockerfilePath?: string;
  namedDirs: Record<string, string>;
  secrets: Record<string, Buffer>;
  /** The builder's own spec of each output (files it streams back). */
  output: (o: OutputMsg, index: number) => OutputSpec;
}

export function decodeTarget(start: BuildStart, x: DecodeInput): { target: BuildTarget; explain: boolean } {
  const buildContexts: NonNullable<BuildTarget['buildContexts']> = {};
  for (const n of start.named_contexts) {
    if (n.image) buildContexts[n.name] = { kind: 'image', ref: n.image };
    else if (n.local && x.namedDirs[n.name]) buildContexts[n.name] = { kind: 'local', path: x.namedDirs[n.name]! };
  }
  const network = start.network || undefined;
  if (network !== undefined && !['default', 'none', 'host'].includes(network)) throw new UserError(`invalid network "${network}": expected default, none or host`);
  const target: BuildTarget = {
    contextDir: x.contextDir,
    dockerfile: { text: start.dockerfile_text, name: start.dockerfile_name || 'Dockerfile', path: x.dockerfilePath },
    target: start.target || undefined,
    buildArgs: start.build_args,
    platforms: start.platforms.map((p) => parsePlatform(p)),
    secrets: x.secrets,
    noCache: start.no_cache,
    noCacheFilter: start.no_cache_filter,
    pull: start.pull,
    sourceDateEpoch: start.has_source_date_epoch ? Number(start.source_date_epoch) : undefined,
    labels: start.labels,
    buildContexts,
    allow: start.allow,
    extraHosts: start.extra_hosts.map((h) => ({ host: h.host, ip: h.ip })),
    cacheFrom: start.cache_from.map((c) => {
      if (c.type !== 'registry') throw new UserError(`cache import type=${c.type} is not supported by this builder (type=registry is)`);
      return { type: 'registry' as const, ref: c.ref };
    }),
    cacheTo: start.cache_to.map((c): CacheExportSpec => (c.type === 'inline' ? { type: 'inline', attrs: c.attrs } : { type: 'registry', ref: c.ref, mode: c.mode === 'max' ? 'max' : 'min', attrs: c.attrs })),
    outputs: start.outputs.map((o, i) => x.output(o, i)),
    network: network as BuildTarget['network'],
  };
  return { target, explain: start.explain };
}
