// Parser directives (`# syntax=`, `# escape=`, `# check=`): only at the very top of the file, each at most once.
import { DockerfileSyntaxError } from './errors.js';
import { goTrimLeftSpace } from './go-text.js';

export interface Directive {
  name: 'syntax' | 'escape' | 'check';
  value: string;
  /** 1-based line */
  line: number;
}

const VALID = new Set(['syntax', 'escape', 'check']);
// Go's \s is [\t\n\f\r ]; the value is non-greedy and right-trimmed.
const DIRECTIVE_RE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/s;

export class DirectiveParser {
  private done = false;
  private readonly seen = new Set<string>();

  /** Looks at one line; returns the directive it holds, or undefined. Stops for good at the first other line. */
  parseLine(line: string, lineNo: number): Directive | undefined {
    if (this.done) return undefined;
    if (!line.startsWith('#')) {
      this.done = true;
      return undefined;
    }
    const m = DIRECTIVE_RE.exec(goTrimLeftSpace(line.slice(1)));
    if (!m) {
      this.done = true;
      return undefined;
    }
    const name = m[1]!.toLowerCase();
    if (!VALID.has(name)) {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(name)) throw new DockerfileSyntaxError(`only one ${name} parser directive can be used`);
    this.seen.add(name);
    return { name: name as Directive['name'], value: m[2]!, line: lineNo };
  }
}
