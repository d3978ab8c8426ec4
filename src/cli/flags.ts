// A small command-line flag parser with docker's conventions: `--flag value`, `--flag=value`, `-f value`,
// combined short booleans (`-it`), repeatable flags, `--` ends flags, and (for `run`) flags stop at the
// first positional so that `kiln run IMAGE ls -l` passes `-l` to the container.
import { FlagError } from '../../base/errors.js';

export interface FlagSpec {
  name: string;
  short?: string;
  type: 'bool' | 'string';
  multiple?: boolean;
  /** For string flags that may be given without a value (`--print-graph` / `--print-graph=dot`). */
  optionalValue?: string;
  description: string;
  valueName?: string;
}

export interface ParsedFlags {
  values: Map<string, string | boolean | string[]>;
  positionals: string[];
}

export { FlagError } from '../../base/errors.js';

export function parseFlags(command: string, argv: string[], specs: FlagSpec[], opts: { stopAtPositional?: boolean } = {}): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const values = new Map<string, string | boolean | string[]>();
  const positionals: string[] = [];
  const set = (spec: FlagSpec, value: string | boolean) => {
    if (spec.multiple) {
      const list = (values.get(spec.name) as string[] | undefined) ?? [];
      list.push(value as string);
      values.set(spec.name, list);
    } else values.set(spec.name, value);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const spec = byName.get(name);
      if (!spec) throw new FlagError(`${command}: unknown flag: --${name}`);
      if (spec.type === 'bool') {
        if (eq < 0) set(spec, true);
        else {
          const v = arg.slice(eq + 1);
          if (v !== 'true' && v !== 'false') throw new FlagError(`${command}: invalid value "${v}" for flag --${name}: expected true or false`);
          set(spec, v === 'true');
        }
      } else if (eq >= 0) set(spec, arg.slice(eq + 1));
      else if (spec.optionalValue !== undefined) set(spec, spec.optionalValue);
      else {
        if (i + 1 >= argv.length) throw new FlagError(`${command}: flag needs an argument: --${name}`);
        set(spec, argv[++i]!);
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // -it, -e K=V, -eK=V
      for (let j = 1; j < arg.length; j++) {
        const ch = arg[j]!;
        const spec = byShort.get(ch);
        if (!spec) throw new FlagError(`${command}: unknown shorthand flag: '${ch}' in ${arg}`);
        if (spec.type === 'bool') {
          set(spec, true);
          continue;
        }
        const rest = arg.slice(j + 1);
        if (rest.length > 0) set(spec, rest.startsWith('=') ? rest.slice(1) : rest);
        else {
          if (i + 1 >= argv.length) throw new FlagError(`${command}: flag needs an argument: '${ch}' in ${arg}`);
          set(spec, argv[++i]!);
        }
        break;
      }
      continue;
    }
    positionals.push(arg);
    if (opts.stopAtPositional) {
      positionals.push(...argv.slice(i + 1));
      break;
    }
  }
  return { values, positionals };
}

export function flagString(p: ParsedFlags, name: string): string | undefined {
  const v = p.values.get(name);
  return typeof v === 'string' ? v : undefined;
}
export function flagBool(p: ParsedFlags, name: string): boolean {
  return p.values.get(name) === true;
}
export function flagList(p: ParsedFlags, name: string): string[] {
  const v = p.values.get(name);
  return Array.isArray(v) ? v : [];
}

export function usageText(usage: string, specs: FlagSpec[]): string {
  const lines = [`Usage: ${usage}`, '', 'Flags:'];
  for (const s of specs) {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.type === 'string' ? ` ${s.valueName ?? 'string'}` : ''}`;
    lines.push(`  ${left.padEnd(32)} ${s.description}`);
  }
  return lines.join('\n');
}
