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
import { parseReference } from '../../base/oci/reference.js';
export type { OutputSpec };
/** Splits `a=b,c="d,e"` (CSV with optional quotes) into key/value pairs. */
export function parseCSV(flag: string, text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    let field = '';
    if (text[i] === '"') {
      i++;
      while (i < text.length && text[i] !== '"') field += text[i++];
      if (text[i] !== '"') throw new FlagError(`invalid value "${text}" for flag ${flag}: unterminated quote`);
      i++;
    } else {
      while (i < text.length && text[i] !== ',') field += text[i++];
    }
    if (i < text.length && text[i] !== ',') throw new FlagError(`invalid value "${text}" for flag ${flag}`);
    i++;
    const eq = field.indexOf('=');
    if (eq <= 0) throw new FlagError(`invalid value "${text}" for flag ${flag}: "${field}" is not key=value`);
    let value = field.slice(eq + 1);
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    out[field.slice(0, eq).trim().toLowerCase()] = value;
  }
  return out;
}

const truthy = (v: string | undefined) => v === 'true' || v === '1';

export function parseOutput(text: string, tags: string[]): OutputSpec {
  // buildx shorthands: `-o DIR` is a local export, `-o -` a tar on stdout.
  if (text === '-') return { type: 'tar', dest: '-', names: tags, attrs: {} };
  if (!text.includes('=')) return { type: 'local', dest: text, attrs: {} };
  const attrs = parseCSV('--output', text);
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
  const attrs = parseCSV('--secret', text);
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

export type BuildContextSpec = { kind: 'local'; path: string } | { kind: 'image'; ref: string } | { kind: 'oci-layout'; identifier: string };

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
  const attrs = parseCSV('--cache-from', text);
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
  const attrs = parseCSV('--cache-to', text);
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
