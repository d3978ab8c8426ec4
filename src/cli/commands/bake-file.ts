// Bake definitions: a Compose file's `build:` sections (one target per service that has one) or a JSON
// bake file (buildx's docker-bake.json form: "target" and "group" maps, `inherits`). Both become the same
// resolved target specs; the bake command turns those into build requests.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../../../base/errors.js';

export interface BakeTargetSpec {
  name: string;
  /** Absolute context directory. */
  context: string;
  /** Dockerfile path (absolute), unless dockerfileInline is set. */
  dockerfile: string;
  dockerfileInline?: string;
  args: Record<string, string>;
  labels: Record<string, string>;
  contexts: Record<string, string>;
  target?: string;
  platforms: string[];
  tags: string[];
  cacheFrom: string[];
  cacheTo: string[];
  outputs: string[];
  noCache?: boolean;
  pull?: boolean;
  /** What this target's RUN steps see, in the flags' spelling (--secret, --ssh, --network, --add-host). */
  secrets: string[];
  ssh: string[];
  network?: string;
  extraHosts: string[];
}

/** A target before inheritance: every field optional. */
type RawTarget = Partial<Omit<BakeTargetSpec, 'name'>> & { inherits?: string[] };

export interface BakeDefinition {
  targets: Map<string, RawTarget>;
  groups: Map<string, string[]>;
  /** Where each definition came from (for messages). */
  files: string[];
}

export const DEFAULT_BAKE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml', 'kiln-bake.json', 'docker-bake.json'];

class BakeFileError extends UserError {}

const fail = (file: string, msg: string): never => {
  throw new BakeFileError(`${basename(file)}: ${msg}`);
};

/** ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and $$ as Compose interpolates them. */
function interpolate(text: string, file: string): string {
  return text.replace(/\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (all, dollar, braced, op, def, bare) => {
    if (dollar === '$') return '$';
    const name = braced ?? bare;
    const v = process.env[name];
    if (op === ':-') return v ? v : def;
    if (op === '-') return v ?? def;
    if (all.startsWith('${') && !braced) fail(file, `invalid interpolation "${all}"`);
    return v ?? '';
  });
}

function strList(v: unknown, what: string, file: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) return fail(file, `${what} must be a list`);
  return v.map((x) => {
    if (typeof x === 'string') return x;
    // buildx also takes cache entries as objects: {type: registry, ref: …}
    if (x && typeof x === 'object') return Object.entries(x).map(([k, val]) => `${k}=${String(val)}`).join(',');
    return fail(file, `${what} must be a list of strings`);
  });
}

/** A map, or a Compose list of KEY=VALUE (a bare KEY takes the value from the environment). */
function strMap(v: unknown, what: string, file: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      if (typeof item !== 'string') fail(file, `${what} entries must be KEY=VALUE strings`);
      const eq = item.indexOf('=');
      if (eq < 0) {
        if (process.env[item] !== undefined) out[item] = process.env[item]!;
      } else out[item.slice(0, eq)] = item.slice(eq + 1);
    }
    return out;
  }
  if (typeof v !== 'object') return fail(file, `${what} must be a map or a list of KEY=VALUE`);
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (val === null || val === undefined) {
      if (process.env[k] !== undefined) out[k] = process.env[k]!;
    } else out[k] = String(val);
  }
  return out;
}

function bool(v: unknown, what: string, file: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  return fail(file, `${what} must be true or false`);
}

function deepInterpolate(v: unknown, file: string): unknown {
  if (typeof v === 'string') return interpolate(v, file);
  if (Array.isArray(v)) return v.map((x) => deepInterpolate(x, file));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deepInterpolate(x, file)]));
  return v;
}

/** Compose: every service with a `build:` is a target named after the service; `image:` is its tag. */
function loadCompose(file: string, text: string, def: BakeDefinition): void {
  let doc: any;
  try {
    doc = parseYaml(text);
  } catch (err) {
    fail(file, `invalid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!doc || typeof doc !== 'object' || typeof doc.services !== 'object' || !doc.services) fail(file, 'no services: a Compose file needs a "services" map');
  doc = deepInterpolate(doc, file);
  const base = dirname(resolve(file));
  const names: string[] = [];
  for (const [service, sv] of Object.entries<any>(doc.services)) {
    if (!sv || typeof sv !== 'object' || sv.build === undefined) continue;
    const b = typeof sv.build === 'string' ? { context: sv.build } : sv.build;
    if (!b || typeof b !== 'object') fail(file, `services.${service}.build must be a path or a map`);
    const where = `services.${service}.build`;
    const known = new Set(['context', 'dockerfile', 'dockerfile_inline', 'args', 'target', 'platforms', 'cache_from', 'cache_to', 'tags', 'labels', 'no_cache', 'pull', 'additional_contexts', 'shm_size', 'isolation', 'network', 'extra_hosts', 'secrets', 'ssh']);
    // Build options Compose has that kiln bake does not apply yet: refused rather than ignored.
    const unsupported = new Set(['privileged', 'entitlements']);
    for (const k of Object.keys(b)) {
      if (unsupported.has(k)) fail(file, `${where}.${k} is not supported by kiln bake yet`);
      if (!known.has(k)) fail(file, `${where}: unknown key "${k}"`);
    }
    const context = resolve(base, typeof b.context === 'string' ? b.context : '.');
    const tags = [...(typeof sv.image === 'string' ? [sv.image] : []), ...strList(b.tags, `${where}.tags`, file)];
    names.push(service);
    def.targets.set(service, {
      context,
      dockerfile: resolve(context, typeof b.dockerfile === 'string' ? b.dockerfile : 'Dockerfile'),
      ...(typeof b.dockerfile_inline === 'string' ? { dockerfileInline: b.dockerfile_inline } : {}),
      args: strMap(b.args, `${where}.args`, file),
      labels: strMap(b.labels, `${where}.labels`, file),
      contexts: strMap(b.additional_contexts, `${where}.additional_contexts`, file),
      ...(typeof b.target === 'string' ? { target: b.target } : {}),
      platforms: strList(b.platforms, `${where}.platforms`, file),
      tags,
      cacheFrom: strList(b.cache_from, `${where}.cache_from`, file),
      cacheTo: strList(b.cache_to, `${where}.cache_to`, file),
      noCache: bool(b.no_cache, `${where}.no_cache`, file),
      pull: bool(b.pull, `${where}.pull`, file),
      secrets: strList(b.secrets, `${where}.secrets`, file).map((name) => composeSecret(doc.secrets, name, base, `${where}.secrets`, file)),
      ssh: Array.isArray(b.ssh) || typeof b.ssh === 'string' ? strList(b.ssh, `${where}.ssh`, file) : Object.entries(strMap(b.ssh, `${where}.ssh`, file)).map(([id, path]) => `${id}=${path}`),
      ...(typeof b.network === 'string' ? { network: b.network } : {}),
      extraHosts: Array.isArray(b.extra_hosts) ? strList(b.extra_hosts, `${where}.extra_hosts`, file) : Object.entries(strMap(b.extra_hosts, `${where}.extra_hosts`, file)).map(([h, ip]) => `${h}:${ip}`),
    });
  }
  if (!def.groups.has('default')) def.groups.set('default', names);
  else def.groups.get('default')!.push(...names);
}

/** A Compose build secret (`secrets: [NAME]`, NAME defined under the top-level `secrets:` with `file:` or `environment:`) in --secret's spelling. */
function composeSecret(defs: unknown, entry: string, base: string, where: string, file: string): string {
  // The long syntax arrives as `source=NAME,target=ID` (strList flattens maps).
  const long = /(?:^|,)source=([^,]+)/.exec(entry);
  const name = long ? long[1]! : entry;
  const id = /(?:^|,)target=([^,]+)/.exec(entry)?.[1] ?? name;
  const d = (defs as Record<string, { file?: unknown; environment?: unknown }> | undefined)?.[name];
  if (!d || typeof d !== 'object') return fail(file, `${where}: secret "${name}" is not defined under the top-level secrets`);
  if (typeof d.file === 'string') return `id=${id},src=${resolve(base, d.file)}`;
  if (typeof d.environment === 'string') return `id=${id},env=${d.environment}`;
  return fail(file, `secrets.${name} needs file: or environment:`);
}

const JSON_KEYS: Record<string, keyof RawTarget | 'inherits'> = {
  context: 'context', dockerfile: 'dockerfile', 'dockerfile-inline': 'dockerfileInline', args: 'args', labels: 'labels', contexts: 'contexts',
  target: 'target', platforms: 'platforms', tags: 'tags', 'cache-from': 'cacheFrom', 'cache-to': 'cacheTo', output: 'outputs',
  'no-cache': 'noCache', pull: 'pull', inherits: 'inherits', secret: 'secrets', ssh: 'ssh', network: 'network', 'extra-hosts': 'extraHosts',
};

/** buildx's JSON bake file: {"group": {NAME: {"targets": [...]}}, "target": {NAME: {...}}}. Paths are relative to the working directory, as in buildx. */
function loadBakeJSON(file: string, text: string, def: BakeDefinition): void {
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    fail(file, `invalid JSON: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== 'object') fail(file, 'expected a JSON object with "target" and "group" maps');
  for (const k of Object.keys(doc)) if (!['target', 'group', 'variable', 'function'].includes(k)) fail(file, `unknown top-level key "${k}"`);
  for (const [name, g] of Object.entries<any>(doc.group ?? {})) def.groups.set(name, strList(g?.targets, `group.${name}.targets`, file));
  for (const [name, t] of Object.entries<any>(doc.target ?? {})) {
    if (!t || typeof t !== 'object') fail(file, `target.${name} must be an object`);
    const raw: RawTarget = {};
    for (const [k, v] of Object.entries<any>(t)) {
      const key = JSON_KEYS[k];
      const where = `target.${name}.${k}`;
      if (!key) fail(file, `${where}: unknown key`);
      switch (key) {
        case 'context':
        case 'dockerfile':
        case 'dockerfileInline':
        case 'target':
        case 'network':
          if (typeof v !== 'string') fail(file, `${where} must be a string`);
          raw[key] = key === 'context' ? resolve(v) : v;
          break;
        case 'args':
        case 'labels':
        case 'contexts':
          raw[key] = strMap(v, where, file);
          break;
        case 'noCache':
        case 'pull':
          raw[key] = bool(v, where, file);
          break;
        case 'extraHosts':
          // buildx writes them as a map {"host": "ip"}; a list of host:ip is taken too.
          raw.extraHosts = v && typeof v === 'object' && !Array.isArray(v) ? Object.entries(strMap(v, where, file)).map(([h, ip]) => `${h}:${ip}`) : strList(v, where, file);
          break;
        default:
          raw[key as 'platforms'] = strList(v, where, file);
      }
    }
    const prev = def.targets.get(name);
    def.targets.set(name, prev ? mergeRaw(prev, raw) : raw);
  }
}

/** `over` on top of `base`: maps merge key by key, everything else is replaced when `over` sets it. */
function mergeRaw(base: RawTarget, over: RawTarget): RawTarget {
  const out: RawTarget = { ...base };
  for (const [k, v] of Object.entries(over) as [keyof RawTarget, any][]) {
    if (v === undefined || k === 'inherits') continue;
    if (k === 'args' || k === 'labels' || k === 'contexts') out[k] = { ...(base[k] ?? {}), ...v };
    else (out as any)[k] = v;
  }
  return out;
}

export function loadBakeFiles(files: string[]): BakeDefinition {
  const def: BakeDefinition = { targets: new Map(), groups: new Map(), files };
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new BakeFileError(`cannot read bake file ${file}: no such file`);
    }
    if (/\.json$/i.test(file)) loadBakeJSON(file, text, def);
    else if (/\.ya?ml$/i.test(file)) loadCompose(file, text, def);
    else if (text.trimStart().startsWith('{')) loadBakeJSON(file, text, def);
    else loadCompose(file, text, def);
  }
  return def;
}

/** The default files in `dir`, in buildx's order. */
export function defaultBakeFiles(dir: string): string[] {
  return DEFAULT_BAKE_FILES.map((f) => resolve(dir, f)).filter((f) => existsSync(f));
}

function resolveInherits(def: BakeDefinition, name: string, chain: string[]): RawTarget {
  if (chain.includes(name)) throw new BakeFileError(`target ${name}: inheritance cycle (${[...chain, name].join(' -> ')})`);
  const raw = def.targets.get(name);
  if (!raw) throw new BakeFileError(chain.length ? `target ${chain.at(-1)}: inherits unknown target "${name}"` : `unknown target "${name}"`);
  let acc: RawTarget = {};
  for (const parent of raw.inherits ?? []) acc = mergeRaw(acc, resolveInherits(def, parent, [...chain, name]));
  return mergeRaw(acc, raw);
}

/** Expands groups (recursively) and resolves inheritance: the targets to build, each once, in order. */
export function resolveTargets(def: BakeDefinition, requested: string[]): BakeTargetSpec[] {
  let names = requested;
  if (names.length === 0) {
    if (def.groups.has('default')) names = ['default'];
    else if (def.targets.has('default')) names = ['default'];
    else throw new BakeFileError(`no targets given and no "default" group or target in ${def.files.map((f) => basename(f)).join(', ')}`);
  }
  const out: string[] = [];
  const expand = (n: string, seen: string[]) => {
    if (def.groups.has(n) && !(def.targets.has(n) && seen.length)) {
      if (seen.includes(n)) throw new BakeFileError(`group ${n}: contains itself`);
      for (const m of def.groups.get(n)!) expand(m, [...seen, n]);
    } else if (def.targets.has(n)) {
      if (!out.includes(n)) out.push(n);
    } else throw new BakeFileError(`unknown target or group "${n}"${def.targets.size ? ` (targets: ${[...def.targets.keys()].join(', ')})` : ''}`);
  };
  for (const n of names) expand(n, []);
  if (out.length === 0) throw new BakeFileError(`nothing to build: ${names.join(', ')} names no target with a build section`);
  return out.map((name) => {
    const r = resolveInherits(def, name, []);
    const context = r.context ?? resolve('.');
    const dockerfile = r.dockerfile ?? 'Dockerfile';
    return {
      name,
      context,
      dockerfile: isAbsolute(dockerfile) ? dockerfile : resolve(context, dockerfile),
      ...(r.dockerfileInline !== undefined ? { dockerfileInline: r.dockerfileInline } : {}),
      args: r.args ?? {},
      labels: r.labels ?? {},
      contexts: r.contexts ?? {},
      ...(r.target !== undefined ? { target: r.target } : {}),
      platforms: r.platforms ?? [],
      tags: r.tags ?? [],
      cacheFrom: r.cacheFrom ?? [],
      cacheTo: r.cacheTo ?? [],
      outputs: r.outputs ?? [],
      ...(r.noCache !== undefined ? { noCache: r.noCache } : {}),
      ...(r.pull !== undefined ? { pull: r.pull } : {}),
      secrets: r.secrets ?? [],
      ssh: r.ssh ?? [],
      ...(r.network !== undefined ? { network: r.network } : {}),
      extraHosts: r.extraHosts ?? [],
    };
  });
}
