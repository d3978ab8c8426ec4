// Entitlements and resource limits for RUN steps: per RUN (each sandbox's own cgroup) and per build (one cgroup that all
// of a build's sandboxes share, so parallel stages together stay within it). They come from kiln's
// config file — $KILN_CONFIG, else $XDG_CONFIG_HOME/kiln/config.json (~/.config/kiln/config.json) —
// and from the build request (BuildRequest.limits). The config file is the ceiling: a request may ask
// for less, never for more, so a shared builder (kiln serve) keeps any one build from starving the rest.
//
//   { "limits": { "run":   { "memory": "1g", "cpus": 1,   "pids": 1024 },
//                 "build": { "memory": "4g", "cpus": 1.5, "pids": 4096 } },
//     "entitlements": ["network.host"] }
//
// "entitlements", when present, lists what this machine's builds may be granted at all (as buildkitd's
// insecure-entitlements): a request's --allow beyond it is refused when a step needs it.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../util/errors.js';
import type { SolverEnv } from '../../solver/env.js';
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
  const m = typeof v === 'string' ? /^([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)i?b?$/i.exec(v.trim()) : null;
  if (!m) throw new UserError(`${where}: invalid memory size ${JSON.stringify(v)} (expected e.g. 512m or 2g)`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g' | 't'];
  const bytes = Math.floor(Number(m[1]) * mult);
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

/** Limits from the config file (none when it does not exist). */
export function configLimits(env: NodeJS.ProcessEnv = process.env): BuildLimits {
  const path = configPath(env);
  if (!existsSync(path)) return {};
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`kiln config ${path}: ${(err as Error).message}`);
  }
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

function sandboxUnits(l: ResourceLimits): NonNullable<SolverEnv['runLimits']> {
  const out: NonNullable<SolverEnv['runLimits']> = {};
  if (l.memoryBytes) out.memoryBytes = l.memoryBytes;
  if (l.pids) out.pids = l.pids;
  if (l.cpus) {
    out.cpuPeriodUs = CPU_PERIOD_US;
    out.cpuQuotaUs = Math.max(1000, Math.round(l.cpus * CPU_PERIOD_US));
  }
  return out;
}

/** What the solver env gets: each RUN's limits, and the build's shared cgroup with its limits. */
export function sandboxLimits(asked: BuildLimits | undefined, env: NodeJS.ProcessEnv = process.env): Pick<SolverEnv, 'runLimits' | 'buildCgroup'> {
  const config = configLimits(env);
  const run = merge(asked?.run, config.run);
  const build = merge(asked?.build, config.build);
  const out: Pick<SolverEnv, 'runLimits' | 'buildCgroup'> = {};
  if (run) out.runLimits = sandboxUnits(run);
  if (build) out.buildCgroup = { name: `kiln-build-${process.pid}-${randomBytes(4).toString('hex')}`, limits: sandboxUnits(build) };
  return out;
}

/** The entitlements a build gets: what it asked for, within the config file's "entitlements" list if any. */
export function grantEntitlements(asked: readonly string[], env: NodeJS.ProcessEnv = process.env): EntitlementGrant {
  const path = configPath(env);
  if (!existsSync(path)) return { granted: [...asked] };
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UserError(`kiln config ${path}: ${(err as Error).message}`);
  }
  const list = (doc as { entitlements?: unknown } | null)?.entitlements;
  if (list === undefined) return { granted: [...asked] };
  if (!Array.isArray(list) || list.some((e) => typeof e !== 'string' || !(ENTITLEMENTS as readonly string[]).includes(e)))
    throw new UserError(`kiln config ${path}: "entitlements" must be a list of ${ENTITLEMENTS.join(', ')}`);
  return { granted: asked.filter((e) => list.includes(e)), refused: asked.filter((e) => !list.includes(e)), by: `kiln config ${path}: entitlements` };
}
