// Instruction flags (`--from=x`, `--link`): BuildKit's BFlags. Each instruction declares the flags it
// accepts, then parse() checks the words the parser collected.
import { DockerfileSyntaxError } from './errors.js';
import { withSuggestion } from './suggest.js';

type FlagType = 'bool' | 'string' | 'strings';

export interface Flag {
  readonly name: string;
  readonly type: FlagType;
  value: string;
  values: string[];
  used: boolean;
}

export class InstructionFlags {
  private readonly flags = new Map<string, Flag>();

  constructor(private readonly args: readonly string[]) {}

  private add(name: string, type: FlagType, value: string): Flag {
    const f: Flag = { name, type, value, values: [], used: false };
    this.flags.set(name, f);
    return f;
  }
  bool(name: string, def = false): Flag {
    return this.add(name, 'bool', def ? 'true' : 'false');
  }
  string(name: string, def = ''): Flag {
    return this.add(name, 'string', def);
  }
  strings(name: string): Flag {
    return this.add(name, 'strings', '');
  }

  /** Names of the flags that were given. */
  used(): string[] {
    return [...this.flags.values()].filter((f) => f.used).map((f) => f.name);
  }

  parse(): void {
    for (const a of this.args) {
      if (a === '--') return;
      if (!a.startsWith('--')) throw new DockerfileSyntaxError(`arg should start with -- : ${a}`);
      const eq = a.indexOf('=');
      const flagName = eq < 0 ? a : a.slice(0, eq);
      const value = eq < 0 ? '' : a.slice(eq + 1);
      const hasValue = eq >= 0;
      const name = flagName.slice(2);
      const flag = this.flags.get(name);
      if (!flag) throw new DockerfileSyntaxError(withSuggestion(`unknown flag: ${flagName}`, name, [...this.flags.keys()], true));
      if (flag.used && flag.type !== 'strings') throw new DockerfileSyntaxError(`duplicate flag specified: ${flagName}`);
      flag.used = true;
      switch (flag.type) {
        case 'bool':
          if (hasValue && value === '') throw new DockerfileSyntaxError(`missing a value on flag: ${flagName}`);
          switch (value.toLowerCase()) {
            case 'true': case '': flag.value = 'true'; break;
            case 'false': flag.value = 'false'; break;
            default: throw new DockerfileSyntaxError(`expecting boolean value for flag ${flagName}, not: ${value}`);
          }
          break;
        case 'string':
          if (!hasValue) throw new DockerfileSyntaxError(`missing a value on flag: ${flagName}`);
          flag.value = value;
          break;
        case 'strings':
          if (!hasValue) throw new DockerfileSyntaxError(`missing a value on flag: ${flagName}`);
          flag.values.push(value);
          break;
      }
    }
  }
}
