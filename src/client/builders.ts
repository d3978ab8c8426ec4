// Builder instances, stored like buildx's: one JSON file per builder under $KILN_CONFIG_DIR/builders
// (default ~/.config/kiln/builders), and the name of the one in use in $KILN_CONFIG_DIR/current.
// "default" is the embedded engine (no daemon). A builder has one or more nodes, each with an address,
// TLS material, a token file and the platforms it builds.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../base/errors.js';
import { parseAddr, type NodeConfig } from './address.js';

export interface BuilderConfig {
  name: string;
  nodes: NodeConfig[];
}

export const DEFAULT_BUILDER = 'default';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function configDir(): string {
  return process.env.KILN_CONFIG_DIR ?? join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'kiln');
}

function buildersDir(): string {
  return join(configDir(), 'builders');
}

export function checkName(name: string, what = 'builder'): void {
  if (!NAME.test(name)) throw new UserError(`invalid ${what} name "${name}": letters, digits, . _ - (at most 64)`);
}

export function loadBuilder(name: string): BuilderConfig {
  checkName(name);
  const file = join(buildersDir(), `${name}.json`);
  if (!existsSync(file)) throw new UserError(`no builder "${name}" (see kiln builder ls)`);
  return JSON.parse(readFileSync(file, 'utf8')) as BuilderConfig;
}

export function listBuilders(): BuilderConfig[] {
  if (!existsSync(buildersDir())) return [];
  return readdirSync(buildersDir())
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(buildersDir(), f), 'utf8')) as BuilderConfig);
}

export function saveBuilder(b: BuilderConfig): void {
  mkdirSync(buildersDir(), { recursive: true });
  const file = join(buildersDir(), `${b.name}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(b, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

export function removeBuilder(name: string): void {
  loadBuilder(name);
  rmSync(join(buildersDir(), `${name}.json`));
  if (currentBuilderName() === name) rmSync(join(configDir(), 'current'), { force: true });
}

export function currentBuilderName(): string {
  try {
    return readFileSync(join(configDir(), 'current'), 'utf8').trim() || DEFAULT_BUILDER;
  } catch {
    return DEFAULT_BUILDER;
  }
}

export function useBuilder(name: string): void {
  if (name !== DEFAULT_BUILDER) loadBuilder(name);
  mkdirSync(configDir(), { recursive: true });
  writeFileSync(join(configDir(), 'current'), name + '\n');
}

/**
 * The builder a build should use: --builder NAME, --builder tcp://… / unix://… (one node, no TLS or
 * token), else $KILN_BUILDER, else the one chosen with `kiln builder use`. undefined: the embedded engine.
 */
export function resolveBuilder(flag: string | undefined): BuilderConfig | undefined {
  const value = flag ?? process.env.KILN_BUILDER ?? currentBuilderName();
  if (value === DEFAULT_BUILDER) return undefined;
  if (/^(tcp|unix):\/\//.test(value)) {
    parseAddr(value, '--builder');
    return { name: value, nodes: [{ name: value, addr: value, platforms: [] }] };
  }
  return loadBuilder(value);
}
