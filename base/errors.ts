/**
 * Errors a user can cause (bad flag, bad Dockerfile, unknown image, auth failure…) are UserErrors: the CLI
 * prints their message as one line, without a stack, and exits non-zero. Anything else is a bug and keeps
 * its stack. Modules that may not import this file (native/, solver/graph) mark their own error classes
 * with `userFacing = true`; the CLI only looks at that property.
 */
export class UserError extends Error {
  readonly userFacing = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function isUserFacing(err: unknown): err is Error & { userFacing: true } {
  return err instanceof Error && (err as { userFacing?: unknown }).userFacing === true;
}

/** Message of any thrown value, for one-line reports. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A bad command-line flag or flag value. */
export class FlagError extends UserError {}

/**
 * A syntax error found by a helper (pattern matcher, lexer, flag parser…) that does not know which line of
 * its input it came from; the caller that knows attaches the line.
 */
export class InputSyntaxError extends UserError {}
