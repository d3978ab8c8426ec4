// Chooses the progress view: tty when stderr is a terminal (auto), plain otherwise, rawjson for
// machines (one JSON event per line), quiet for none.
import type { ProgressEvent } from '../../../solver/progress.js';
import { FlagError } from '../flags.js';
import { plainRenderer } from './plain.js';
import { ttyRenderer } from './tty.js';

export type ProgressMode = 'auto' | 'plain' | 'tty' | 'rawjson' | 'quiet';

export interface ProgressView {
  onEvent(ev: ProgressEvent): void;
  finish(): void;
}

export function parseProgressMode(v: string | undefined): ProgressMode {
  const mode = v ?? process.env.BUILDKIT_PROGRESS ?? 'auto';
  if (!['auto', 'plain', 'tty', 'rawjson', 'quiet'].includes(mode)) {
    throw new FlagError(`invalid value "${mode}" for flag --progress: expected auto, plain, tty, rawjson or quiet`);
  }
  return mode as ProgressMode;
}

export function progressView(mode: ProgressMode, out: NodeJS.WriteStream = process.stderr): ProgressView {
  const view = viewFor(mode, out);
  return mode === 'rawjson' ? view : endsAtFirstError(view);
}

/**
 * The error is the last thing a user reads: once a step failed, the other steps' logs (processes being
 * cancelled flush their output) are not printed below it, and nothing is printed after finish(), when the
 * CLI prints the error line.
 */
function endsAtFirstError(view: ProgressView): ProgressView {
  let failed = false;
  let finished = false;
  return {
    onEvent(ev) {
      if (finished || (failed && ev.type === 'vertex.log')) return;
      if (ev.type === 'vertex.failed') failed = true;
      view.onEvent(ev);
    },
    finish() {
      if (finished) return;
      finished = true;
      view.finish();
    },
  };
}

function viewFor(mode: ProgressMode, out: NodeJS.WriteStream): ProgressView {
  if (mode === 'auto') mode = out.isTTY ? 'tty' : 'plain';
  switch (mode) {
    case 'tty':
      return ttyRenderer(out);
    case 'plain':
      return plainRenderer(out);
    case 'rawjson':
      return { onEvent: (ev) => out.write(JSON.stringify(ev) + '\n'), finish() {} };
    default:
      return { onEvent() {}, finish() {} };
  }
}
