// Entitlements and resource limits for RUN steps: per RUN (each sandbox's own cgroup) and per build (one cgroup that all
// of a build's sandboxes share, so parallel stages together stay within it). They come from kiln's
// config file — $KILN_CONFIG, else $XDG_CONFIG_HOME/kiln/config.json (~/.config/kiln/config.json) —
// and from the build request (each BuildTarget.limits). The config file is the ceiling: a request may ask
// for less, never for more, so a shared builder (kiln serve) keeps any one build from starving the rest.
//
//   { "limits": { "run":    { "memory": "1g", "cpus": 1,   "pids": 1024 },
//                 "build":  { "memory": "4g", "cpus": 1.5, "pids": 4096 },
//                 "tenant": { "disk": "20g", "builds": 2 } },
//     "entitlements": ["network.host"] }
//
// `kiln serve` applies defaults where neither its flags nor the file set a limit (serveLimits below):
// a shared builder is never unlimited unless the operator says so ("0" turns one limit off).
//
// "entitlements", when present, lists what this machine's builds may be granted at all (as buildkitd's
// insecure-entitlements): a request's --allow beyond it is refused when a step needs it.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, homedir, totalmem } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../../base/errors.js';
import { bytesOf } from '../../base/units.js';
import type { RunSettings } from '../../solver/ops/index.js';
import { ENTITLEMENTS, type EntitlementGrant } from '../../solver/entitlements.js';

export interface ResourceLimits {
  memoryBytes?: number;
  /** CPUs as docker's --cpus (1.5 = one and a half cores of time per period). */
  cpus?: number;
  pids?: number;
}

export interface BuildLimits {
  run?: ResourceLimits;
  build?: ResourceLimits;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_CONFIG) return env.KILN_CONFIG;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'kiln', 'config.json');
}

function parseSize(where: string, v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return Math.floor(v);
  const bytes = typeof v === 'string' ? bytesOf(v.trim()) : undefined;
  if (bytes === undefined) throw new UserError(`${where}: invalid memory size ${JSON.stringify(v)} (expected e.g. 512m or 2g)`);
  if (bytes < 4 << 20) throw new UserError(`${where}: memory limit ${JSON.stringify(v)} is below the minimum of 4m`);
  return bytes;
}

function parsePositive(where: string, what: string, v: unknown, integer: boolean): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !(v > 0) || (integer && !Number.isInteger(v))) throw new UserError(`${where}: ${what} must be a positive ${integer ? 'integer' : 'number'}, not ${JSON.stringify(v)}`);
  return v;
}

function parseLimits(where: string, o: unknown): ResourceLimits | undefined {
  if (o === undefined || o === null) return undefined;
  if (typeof o !== 'object' || Array.isArray(o)) throw new UserError(`${where}: expected an object with memory, cpus, pids`);
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!['memory', 'cpus', 'pids'].includes(k)) throw new UserError(`${where}: unknown limit "${k}" (expected memory, cpus, pids)`);
  return { memoryBytes: parseSize(`${where}.memory`, r.memory), cpus: parsePositive(where, 'cpus', r.cpus, false), pids: parsePositive(where, 'pids', r.pids, true) };
}

/** The parsed config file and its path (doc undefined when there is no file). */
function readConfig(env: NodeJS.ProcessEnv): { path: string; doc: unknown } {
  const path = configPath(env);
  if (!existsSync(path)) return { path, doc: undefined };
  try {
    return { path, doc: JSON.parse(readFileSync(path, 'utf8')) };
  } catch (err) {
    throw new UserError(`kiln config ${path}: ${(err as Error).message}`);
  }
}

/** Limits from the config file (none when it does not exist). */
export function configLimits(env: NodeJS.ProcessEnv = process.env): BuildLimits {
  const { path, doc } = readConfig(env);
  if (doc === undefined) return {};
  const limits = (doc as { limits?: unknown } | null)?.limits;
  if (limits === undefined) return {};
  if (typeof limits !== 'object' || limits === null) throw new UserError(`kiln config ${path}: "limits" must be an object`);
  const l = limits as Record<string, unknown>;
  return { run: parseLimits(`kiln config ${path}: limits.run`, l.run), build: parseLimits(`kiln config ${path}: limits.build`, l.build) };
}

const min = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

function merge(asked?: ResourceLimits, ceiling?: ResourceLimits): ResourceLimits | undefined {
  const r = { memoryBytes: min(asked?.memoryBytes, ceiling?.memoryBytes), cpus: min(asked?.cpus, ceiling?.cpus), pids: min(asked?.pids, ceiling?.pids) };
  return r.memoryBytes || r.cpus || r.pids ? r : undefined;
}

const CPU_PERIOD_US = 100_000;

function sandboxUnits(l: ResourceLimits): NonNullable<RunSettings['runLimits']> {
  const out: NonNullable<RunSettings['runLimits']> = {};
  if (l.memoryBytes) out.memoryBytes = l.memoryBytes;
  if (l.pids) out.pids = l.pids;
  if (l.cpus) {
    out.cpuPeriodUs = CPU_PERIOD_US;
    out.cpuQuotaUs = Math.max(1000, Math.round(l.cpus * CPU_PERIOD_US));
  }
  return out;
}

/** What the solver env gets: each RUN's limits, and the build's shared cgroup with its limits. */
export function sandboxLimits(asked: BuildLimits | undefined, env: NodeJS.ProcessEnv = process.env): Pick<RunSettings, 'runLimits' | 'buildCgroup'> {
  const config = configLimits(env);
  const run = merge(asked?.run, config.run);
  const build = merge(asked?.build, config.build);
  const out: Pick<RunSettings, 'runLimits' | 'buildCgroup'> = {};
  if (run) out.runLimits = sandboxUnits(run);
  if (build) out.buildCgroup = { name: `kiln-build-${process.pid}-${randomBytes(4).toString('hex')}`, limits: sandboxUnits(build) };
  return out;
}

/** The entitlements a build gets: what it asked for, within the config file's "entitlements" list if any. */
export function grantEntitlements(asked: readonly string[], env: NodeJS.ProcessEnv = process.env): EntitlementGrant {
  const { path, doc } = readConfig(env);
  if (doc === undefined) return { granted: [...asked] };
  const list = (doc as { entitlements?: unknown } | null)?.entitlements;
  if (list === undefined) return { granted: [...asked] };
  if (!Array.isArray(list) || list.some((e) => typeof e !== 'string' || !(ENTITLEMENTS as readonly string[]).includes(e)))
    throw new UserError(`kiln config ${path}: "entitlements" must be a list of ${ENTITLEMENTS.join(', ')}`);
  return { granted: asked.filter((e) => list.includes(e)), refused: asked.filter((e) => !list.includes(e)), by: `kiln config ${path}: entitlements` };
}

// ---- kiln serve: defaults, flags and the config file, per build and per tenant ----

export interface TenantLimits {
  /** The tenant's state dir (cache, synced context files) may not grow past this. */
  diskBytes?: number;
  /** Builds of one tenant running at once. */
  builds?: number;
}

export interface ServeLimits {
  run?: ResourceLimits;
  build: ResourceLimits;
  tenant: TenantLimits;
}

/** What `kiln serve` takes as flags (strings as typed; "0" turns a limit off). */
export interface ServeLimitFlags {
  buildMemory?: string;
  buildCpus?: string;
  buildPids?: string;
  tenantDisk?: string;
  tenantBuilds?: string;
}

const GiB = 1024 ** 3;

/** Defaults of a shared builder: half the machine for one build (at most 4 GiB), 4096 processes, 20 GiB per tenant. */
export function serveDefaults(): ServeLimits {
  return {
    build: { memoryBytes: Math.min(4 * GiB, Math.floor(totalmem() / 2)), cpus: Math.max(1, Math.floor(availableParallelism() / 2)), pids: 4096 },
    tenant: { diskBytes: 20 * GiB },
  };
}

function parseTenant(where: string, o: unknown): TenantLimits | undefined {
  if (o === undefined || o === null) return undefined;
  if (typeof o !== 'object' || Array.isArray(o)) throw new UserError(`${where}: expected an object with disk, builds`);
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!['disk', 'builds'].includes(k)) throw new UserError(`${where}: unknown limit "${k}" (expected disk, builds)`);
  return { diskBytes: r.disk === 0 || r.disk === '0' ? 0 : parseSize(`${where}.disk`, r.disk), builds: parsePositive(where, 'builds', r.builds, true) };
}

/** The config file's `limits.tenant` (its run and build limits come from configLimits). */
export function configTenantLimits(env: NodeJS.ProcessEnv = process.env): TenantLimits {
  const { path, doc } = readConfig(env);
  if (doc === undefined) return {};
  const limits = (doc as { limits?: { tenant?: unknown } } | null)?.limits;
  return parseTenant(`kiln config ${path}: limits.tenant`, limits?.tenant) ?? {};
}

/** A flag's value: undefined when not given, 0 for "0" (off). */
function flagNumber(flag: string, text: string | undefined, kind: 'size' | 'integer' | 'number'): number | undefined {
  if (text === undefined) return undefined;
  if (text.trim() === '0') return 0;
  if (kind === 'size') return parseSize(`--${flag}`, text);
  const v = Number(text);
  return parsePositive(`invalid value "${text}" for flag --${flag}`, 'it', Number.isFinite(v) ? v : text, kind === 'integer');
}

/**
 * The limits `kiln serve` applies: a flag wins, then the config file, then the defaults; 0 means none.
 * (The config file's run/build limits stay a ceiling for every build too: see sandboxLimits.)
 */
export function serveLimits(flags: ServeLimitFlags, env: NodeJS.ProcessEnv = process.env): ServeLimits {
  const config = configLimits(env);
  const tenant = configTenantLimits(env);
  const d = serveDefaults();
  const pick = (flag: number | undefined, conf: number | undefined, def: number | undefined) => {
    const v = flag ?? conf ?? def;
    return v ? v : undefined;
  };
  return {
    run: config.run,
    build: {
      memoryBytes: pick(flagNumber('build-memory', flags.buildMemory, 'size'), config.build?.memoryBytes, d.build.memoryBytes),
      cpus: pick(flagNumber('build-cpus', flags.buildCpus, 'number'), config.build?.cpus, d.build.cpus),
      pids: pick(flagNumber('build-pids', flags.buildPids, 'integer'), config.build?.pids, d.build.pids),
    },
    tenant: {
      diskBytes: pick(flagNumber('tenant-disk', flags.tenantDisk, 'size'), tenant.diskBytes, d.tenant.diskBytes),
      builds: pick(flagNumber('tenant-builds', flags.tenantBuilds, 'integer'), tenant.builds, undefined),
    },
  };
}
