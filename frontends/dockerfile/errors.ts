// The one error type the Dockerfile frontend throws for problems a user caused.
import type { LintWarning } from './lint/linter.js';
import { InputSyntaxError } from '../../base/errors.js';
// Messages read "Dockerfile:<line>: <what>" so the CLI can print them as one line.

export class DockerfileParseError extends Error {
  readonly userFacing = true;
  /** 1-based line of the Dockerfile the error is about (0 when it is about the whole file). */
  readonly line: number;
  /** Last line of the instruction (an instruction continued over several lines is named by its whole range). */
  readonly endLine: number;
  /** The message without the "Dockerfile:N: " prefix. */
  readonly detail: string;
  /** Build-check findings made before the error, printed ahead of it as BuildKit does. */
  lintWarnings?: LintWarning[];
  /** Raised while typing an instruction (BuildKit's "dockerfile parse error on line N: …"). */
  inInstruction = false;

  constructor(detail: string, line: number, fileName = 'Dockerfile', endLine = line) {
    const where = line <= 0 ? '' : endLine > line ? `:${line}-${endLine}` : `:${line}`;
    super(`${fileName}${where}: ${detail}`);
    this.name = 'DockerfileParseError';
    this.line = line;
    this.endLine = Math.max(line, endLine);
    this.detail = detail;
  }
}

/** An error from a helper (lexer, flag parser…) that does not know its line yet; callers attach it. */
export class DockerfileSyntaxError extends InputSyntaxError {}

/** Re-throws `err` as a DockerfileParseError at `line` (to `endLine`) if it is one of ours; other errors (bugs) pass through. */
export function atLine(err: unknown, line: number, endLine = line): never {
  if (err instanceof DockerfileParseError) throw err;
  if (err instanceof InputSyntaxError) throw new DockerfileParseError(err.message, line, 'Dockerfile', endLine);
  throw err;
}
