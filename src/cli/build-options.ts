// Parses buildx-style build flags: --output, --secret, --build-context, --build-arg, --platform.
import { writerOptions } from '../../cache/remote/writers.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FlagError, type FlagSpec } from './flags.js';
import { isIP } from 'node:net';
import { parsePlatform } from '../../base/oci/platform.js';
import type { Platform } from '../../base/oci/types.js';

import type { OutputSpec } from '../engine/exports.js';
import type { CacheExportSpec, CacheImportSpec } from '../engine/remote-cache.js';
import type { BuildContextSpec, BuildTarget } from '../engine/request.js';
import { parseReference } from '../../base/oci/reference.js';
import { parseCsvOptions } from '../../base/csv-options.js';
export type { OutputSpec };
const truthy = (v: string | undefined) => v === 'true' || v === '1';

export function parseOutput(text: string, tags: string[]): OutputSpec {
  // buildx shorthands: `-o DIR` is a local export, `-o -` a tar on stdout.
  if (text === '-') return { type: 'tar', dest: '-', names: tags, attrs: {} };
  if (!text.includes('=')) return { type: 'local', dest: text, attrs: {} };
  const attrs = parseCsvOptions('--output', text);
  const type = attrs.type;
  const names = attrs.name ? attrs.name.split(',').filter(Boolean) : tags;
  switch (type) {
    case 'image':
    case 'registry':
      return { type: 'image', names, push: type === 'registry' || truthy(attrs.push), attrs };
    case 'oci':
    case 'docker':
    case 'tar':
      if (!attrs.dest) throw new FlagError(`--output type=${type} needs dest=FILE (or dest=- for stdout)`);
      return { type, dest: attrs.dest, names, attrs };
    case 'local':
      if (!attrs.dest) throw new FlagError('--output type=local needs dest=DIR');
      return { type: 'local', dest: attrs.dest, attrs };
    case undefined:
      throw new FlagError(`invalid value "${text}" for flag --output: type= is missing`);
    default:
      throw new FlagError(`invalid value "${text}" for flag --output: unknown type "${type}" (expected image, registry, oci, docker, local or tar)`);
  }
}

export function parseSecret(text: string): { id: string; value: Buffer } {
  const attrs = parseCsvOptions('--secret', text);
  const id = attrs.id;
  if (!id) throw new FlagError(`invalid value "${text}" for flag --secret: id= is required`);
  const src = attrs.src ?? attrs.source;
  if (attrs.env !== undefined || (src === undefined && attrs.type === 'env')) {
    const name = attrs.env ?? id;
    const v = process.env[name];
    if (v === undefined) throw new FlagError(`--secret id=${id}: environment variable ${name} is not set`);
    return { id, value: Buffer.from(v) };
  }
  const file = src ?? process.env[id];
  if (!file) throw new FlagError(`invalid value "${text}" for flag --secret: src=FILE or env=VAR is required`);
  try {
    return { id, value: readFileSync(resolve(file)) };
  } catch (err) {
    throw new FlagError(`--secret id=${id}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function parseBuildContext(text: string): { name: string; spec: BuildContextSpec } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new FlagError(`invalid value "${text}" for flag --build-context: expected NAME=VALUE`);
  const name = text.slice(0, eq);
  const value = text.slice(eq + 1);
  if (value.startsWith('docker-image://')) return { name, spec: { kind: 'image', ref: value.slice('docker-image://'.length) } };
  if (value.startsWith('oci-layout://')) return { name, spec: { kind: 'oci-layout', identifier: value } };
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(value)) throw new FlagError(`--build-context ${name}: unsupported source ${value}`);
  return { name, spec: { kind: 'local', path: resolve(value) } };
}

export function parseBuildArgs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new FlagError(`invalid value "${a}" for flag --build-arg: empty name`);
    if (eq < 0) {
      // `--build-arg NAME` takes the value from this environment, as docker does.
      const v = process.env[a];
      if (v !== undefined) out[a] = v;
    } else out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

export function parsePlatforms(values: string[]): Platform[] {
  const list = values.flatMap((v) => v.split(',')).map((s) => s.trim());
  // `--platform ''` (an unset variable in a script) must not quietly build for the host.
  if (list.some((p) => p === '')) throw new FlagError(`invalid value "${values.join(',')}" for flag --platform: empty platform (expected os/arch[/variant], e.g. linux/amd64)`);
  try {
    // As given (linux/arm64 stays without a variant): TARGETPLATFORM is what the user asked for, as in
    // BuildKit; lookups that need the normalised form normalise on their own.
    return list.map((p) => parsePlatform(p));
  } catch (err) {
    throw new FlagError(`invalid value "${values.join(',')}" for flag --platform: ${(err as Error).message}`);
  }
}

function cacheRef(flag: string, ref: string | undefined, text: string): string {
  if (!ref) throw new FlagError(`invalid value "${text}" for flag ${flag}: ref=REGISTRY/REPO:TAG is required`);
  try {
    return parseReference(ref).toString();
  } catch (err) {
    throw new FlagError(`invalid value "${text}" for flag ${flag}: ${(err as Error).message}`);
  }
}

/** `--cache-from type=registry,ref=R`, `type=local,src=DIR`, or a bare image ref (its inline cache). */
export function parseCacheFrom(text: string): CacheImportSpec {
  if (!text.includes('=')) return { type: 'registry', ref: cacheRef('--cache-from', text, text) };
  const attrs = parseCsvOptions('--cache-from', text);
  switch (attrs.type ?? 'registry') {
    case 'registry':
      return { type: 'registry', ref: cacheRef('--cache-from', attrs.ref, text) };
    case 'local':
      if (!attrs.src) throw new FlagError(`invalid value "${text}" for flag --cache-from: type=local needs src=DIR`);
      return { type: 'local', src: resolve(attrs.src), tag: attrs.tag };
    default:
      throw new FlagError(`invalid value "${text}" for flag --cache-from: unsupported type "${attrs.type}" (expected registry or local)`);
  }
}

/** `--cache-to type=registry,ref=R[,mode=min|max]`, `type=local,dest=DIR[,mode=]`, `type=inline`. */
export function parseCacheTo(text: string): CacheExportSpec {
  const attrs = parseCsvOptions('--cache-to', text);
  const mode = attrs.mode ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new FlagError(`invalid value "${text}" for flag --cache-to: mode must be min or max`);
  const ignore = attrs['ignore-error'];
  if (ignore !== undefined && ignore !== 'true' && ignore !== 'false') throw new FlagError(`invalid value "${text}" for flag --cache-to: ignore-error must be true or false`);
  if (attrs.type === 'registry' || attrs.type === 'local') writerOptions(attrs, '', text); // checks writer=, keep-writers=, keep-age=
  switch (attrs.type) {
    case 'registry':
      return { type: 'registry', ref: cacheRef('--cache-to', attrs.ref, text), mode, attrs };
    case 'local':
      if (!attrs.dest) throw new FlagError(`invalid value "${text}" for flag --cache-to: type=local needs dest=DIR`);
      return { type: 'local', dest: resolve(attrs.dest), tag: attrs.tag, mode, attrs };
    case 'inline':
      return { type: 'inline', attrs };
    case undefined:
      throw new FlagError(`invalid value "${text}" for flag --cache-to: type= is missing (registry, local or inline)`);
    default:
      throw new FlagError(`invalid value "${text}" for flag --cache-to: unsupported type "${attrs.type}" (expected registry, local or inline)`);
  }
}

// --- RUN networking, entitlements, SSH forwarding (see native/network and solver/entitlements.ts) ---

export const sandboxFlags: FlagSpec[] = [
  { name: 'allow', type: 'string', multiple: true, valueName: 'ENTITLEMENT', description: 'Allow extra privileged entitlement: network.host, security.insecure' },
  { name: 'add-host', type: 'string', multiple: true, valueName: 'HOST:IP', description: 'Add a custom host-to-IP mapping to RUN\'s /etc/hosts' },
  { name: 'dns', type: 'string', multiple: true, valueName: 'IP', description: 'DNS server for RUN (instead of the host\'s resolv.conf)' },
  { name: 'ssh', type: 'string', multiple: true, valueName: 'default|ID=SOCKET|KEY[,KEY]', description: 'SSH agent socket or keys to expose to RUN --mount=type=ssh' },
];

const ENTITLEMENT_NAMES = ['network.host', 'security.insecure'];

export function parseAllow(values: string[], network?: string): string[] {
  const out = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const e of out) if (!ENTITLEMENT_NAMES.includes(e)) throw new FlagError(`invalid value "${e}" for flag --allow: expected ${ENTITLEMENT_NAMES.join(' or ')}`);
  // As buildx does, asking for the host network on the command line grants it.
  if (network === 'host' && !out.includes('network.host')) out.push('network.host');
  return out;
}

export function parseAddHost(text: string): { host: string; ip: string } {
  // host:ip or host=ip; the ip may be IPv6 (host:::1).
  const m = /^([^:=\s]+)[:=](.+)$/.exec(text);
  if (!m || isIP(m[2]!) === 0) throw new FlagError(`invalid value "${text}" for flag --add-host: expected HOST:IP`);
  return { host: m[1]!, ip: m[2]! };
}

export function parseDns(values: string[]): { nameservers: string[] } | undefined {
  const list = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const ip of list) if (isIP(ip) === 0) throw new FlagError(`invalid value "${ip}" for flag --dns: expected an IP address`);
  return list.length ? { nameservers: list } : undefined;
}

export function parseSsh(text: string): { id: string; paths: string[] } {
  const eq = text.indexOf('=');
  const id = eq < 0 ? text : text.slice(0, eq);
  if (!/^[a-zA-Z0-9_.-]+$/.test(id)) throw new FlagError(`invalid value "${text}" for flag --ssh: expected ID or ID=SOCKET|KEY[,KEY]`);
  const paths = eq < 0 ? [] : text.slice(eq + 1).split(',').filter(Boolean).map((p) => resolve(p));
  if (paths.length === 0) {
    const sock = process.env.SSH_AUTH_SOCK;
    if (!sock) throw new FlagError(`--ssh ${id}: SSH_AUTH_SOCK is not set; give a socket or key file: --ssh ${id}=PATH`);
    paths.push(sock);
  }
  return { id, paths };
}

// ---- One target's options → the engine's BuildTarget (docs/design.md, "Build pipeline") ----

/**
 * The options of one target as a user writes them: `kiln build`'s flags and a bake file's target both
 * become this, then one function (targetFromOptions) turns it into the engine's BuildTarget, so a flag
 * and the bake file key for it mean the same thing.
 */
export interface TargetOptions {
  name?: string;
  contextDir?: string;
  dockerfile: BuildTarget['dockerfile'];
  target?: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  /** NAME → PATH, docker-image://REF or oci-layout://DIR[:TAG]. */
  contexts: Record<string, string>;
  platforms: string[];
  tags: string[];
  outputs: string[];
  push?: boolean;
  cacheFrom: string[];
  cacheTo: string[];
  noCache?: boolean;
  noCacheFilter?: string[];
  pull?: boolean;
  sourceDateEpoch?: number;
  attest?: BuildTarget['attest'];
  /** id=ID,src=FILE | id=ID,env=VAR */
  secrets: string[];
  /** default | ID=SOCKET|KEY[,KEY] */
  ssh: string[];
  network?: string;
  /** HOST:IP */
  extraHosts: string[];
  dns?: string[];
  allow?: string[];
}

/** A target, and the SSH agents it asks for (started by the caller: they are processes to stop after the build). */
export interface ParsedTarget {
  target: BuildTarget;
  ssh: { id: string; paths: string[] }[];
}

/** `wrap(what, f)` runs one option's parser; a bake target names itself and the key in the error. */
export type OptionWrap = <T>(what: string, f: () => T) => T;

export function targetFromOptions(o: TargetOptions, wrap: OptionWrap = (_what, f) => f()): ParsedTarget {
  for (const t of o.tags) wrap('tags', () => parseReference(t)); // a bad tag fails before anything runs
  const outputs: OutputSpec[] = wrap('output', () => o.outputs.map((text) => parseOutput(text, o.tags)));
  if (o.push) {
    const image = outputs.find((x) => x.type === 'image');
    if (image && image.type === 'image') image.push = true;
    else outputs.push({ type: 'image', names: o.tags, push: true, attrs: {} });
  }
  if (outputs.length === 0) outputs.push({ type: 'image', names: o.tags, push: false, attrs: {} });
  const network = o.network;
  if (network !== undefined && !['default', 'none', 'host'].includes(network)) wrap('network', () => {
    throw new FlagError(`invalid value "${network}" for flag --network: expected default, none or host`);
  });
  const secrets: Record<string, Buffer> = {};
  for (const text of o.secrets) {
    const { id, value } = wrap('secret', () => parseSecret(text));
    secrets[id] = value;
  }
  const buildContexts: Record<string, BuildContextSpec> = {};
  for (const [name, value] of Object.entries(o.contexts)) buildContexts[name] = wrap('contexts', () => parseBuildContext(`${name}=${value}`)).spec;
  const buildArgs = { ...o.buildArgs };
  if (o.sourceDateEpoch !== undefined && buildArgs.SOURCE_DATE_EPOCH === undefined) buildArgs.SOURCE_DATE_EPOCH = String(o.sourceDateEpoch);
  const target: BuildTarget = {
    ...(o.name !== undefined ? { name: o.name } : {}),
    contextDir: o.contextDir,
    dockerfile: o.dockerfile,
    target: o.target,
    buildArgs,
    labels: o.labels,
    platforms: wrap('platforms', () => parsePlatforms(o.platforms)),
    buildContexts,
    secrets,
    noCache: o.noCache,
    noCacheFilter: o.noCacheFilter,
    pull: o.pull,
    cacheFrom: wrap('cache-from', () => o.cacheFrom.map(parseCacheFrom)),
    cacheTo: wrap('cache-to', () => o.cacheTo.map(parseCacheTo)),
    sourceDateEpoch: o.sourceDateEpoch,
    outputs,
    network: network as BuildTarget['network'],
    allow: wrap('entitlements', () => parseAllow(o.allow ?? [], network)),
    extraHosts: wrap('extra-hosts', () => o.extraHosts.map(parseAddHost)),
    dns: wrap('dns', () => parseDns(o.dns ?? [])),
    attest: o.attest,
  };
  return { target, ssh: wrap('ssh', () => o.ssh.map(parseSsh)) };
}
