// The check configuration (`# check=skip=A,B;error=true;experimental=C`, or the BUILDKIT_DOCKERFILE_CHECK
// build arg, which replaces the directive) and the collector every rule reports into.
import { DockerfileSyntaxError } from '../errors.js';
import { RULES, type LintRule, type RuleName } from './rules.js';

export interface LintConfig {
  skipAll: boolean;
  skip: Set<string>;
  experimentalAll: boolean;
  experimental: Set<string>;
  /** `error=true`: any reported rule fails the build. */
  error: boolean;
}

/** One reported check, in the shape of BuildKit's lint result (`--call=check,format=json`). */
export interface LintWarning {
  ruleName: string;
  description: string;
  url: string;
  detail: string;
  /** 1-based first and last line of the instruction it is about (0 when about the whole file). */
  startLine: number;
  endLine: number;
}

/** Go's strconv.ParseBool. */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

const names = (v: string): Set<string> => new Set(v.split(',').map((s) => s.trim()));

/** BuildKit's linter.ParseLintOptions. */
export function parseCheckOptions(text: string): LintConfig {
  const cfg: LintConfig = { skipAll: false, skip: new Set(), experimentalAll: false, experimental: new Set(), error: false };
  const s = text.trim();
  if (s === '') return cfg;
  // strings.SplitN(s, ";", 3): a third part keeps any further semicolons
  const parts = s.split(';');
  const limited = parts.length > 3 ? [parts[0]!, parts[1]!, parts.slice(2).join(';')] : parts;
  for (const p of limited) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new DockerfileSyntaxError(`invalid check option ${JSON.stringify(p)}`);
    const k = p.slice(0, eq).trim();
    const v = p.slice(eq + 1).trim();
    if (k === 'skip') {
      if (v === 'all') cfg.skipAll = true;
      else cfg.skip = names(v);
    } else if (k === 'experimental') {
      if (v === 'all') cfg.experimentalAll = true;
      else cfg.experimental = names(v);
    } else if (k === 'error') {
      const b = parseBool(v);
      if (b === undefined) throw new DockerfileSyntaxError(`failed to parse check option ${JSON.stringify(p)}: strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`);
      cfg.error = b;
    } else {
      throw new DockerfileSyntaxError(`invalid check option ${JSON.stringify(k)}`);
    }
  }
  return cfg;
}

/** The configuration in effect: the build arg wins over the directive, as in BuildKit's dockerui. */
export function checkConfig(directive: string | undefined, buildArg: string | undefined): LintConfig {
  if (buildArg !== undefined) {
    try {
      return parseCheckOptions(buildArg);
    } catch (e) {
      throw new DockerfileSyntaxError(`failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: ${(e as Error).message}`);
    }
  }
  try {
    return parseCheckOptions(directive ?? '');
  } catch (e) {
    throw new DockerfileSyntaxError(`failed to parse check options: ${(e as Error).message}`);
  }
}

/** A location: an instruction's line range. */
export interface LintRange {
  line: number;
  endLine: number;
}

export class Linter {
  readonly warnings: LintWarning[] = [];

  constructor(private config: LintConfig = checkConfig(undefined, undefined)) {}

  /** The configuration becomes known once the Dockerfile's directives and build args are read. */
  configure(config: LintConfig): void {
    this.config = config;
  }

  private enabled(r: LintRule): boolean {
    if (r.experimental) return this.config.experimentalAll || this.config.experimental.has(r.name);
    return !(this.config.skipAll || this.config.skip.has(r.name));
  }

  run(name: RuleName, where: LintRange | undefined, detail: string): void {
    const r: LintRule = RULES[name];
    if (!this.enabled(r)) return;
    this.warnings.push({
      ruleName: r.name, description: r.description, url: r.url, detail,
      startLine: where?.line ?? 0, endLine: where?.endLine ?? where?.line ?? 0,
    });
  }

  /** With `error=true`: the message of the error that fails the build, naming each reported rule once. */
  violation(): string | undefined {
    if (!this.config.error || this.warnings.length === 0) return undefined;
    const rules = [...new Set(this.warnings.map((w) => w.ruleName))].sort();
    return `lint violation found for rules: ${rules.join(', ')}`;
  }
}
