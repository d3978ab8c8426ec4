// Checks of the FROM lines against the global ARGs (BuildKit's validateBaseImagesWithDefaultArgs,
// reportUnusedFromArgs, reportRedundantTargetPlatform, reportConstPlatformDisallowed).
import type { Stage } from '../instructions.js';
import { processWithMatches } from '../shell-lexer.js';
import { suggest } from '../suggest.js';
import { parseImageReference } from '../convert/reference.js';
import { parsePlatform } from '../convert/platform.js';
import type { EnvList } from '../convert/env-list.js';
import type { GraphPlatform } from '../../../solver/graph/ops.js';
import type { Linter } from './linter.js';
import { MESSAGES } from './rules.js';

/** FROM names that are no valid image reference when every global ARG keeps its default value. */
export function checkDefaultBaseNames(lint: Linter, stages: Stage[], defaultArgs: EnvList | undefined, escapeToken: string): void {
  if (!defaultArgs) return; // the defaults themselves fail: the build reports that error
  for (const st of stages) {
    let name: string;
    try {
      name = processWithMatches(st.baseName, defaultArgs, { escapeToken }).result;
    } catch {
      return;
    }
    let valid = name !== '';
    if (valid) {
      try {
        parseImageReference(name);
      } catch {
        valid = false;
      }
    }
    if (!valid) lint.run('InvalidDefaultArgInFrom', st, MESSAGES.InvalidDefaultArgInFrom(st.baseName));
  }
}

/** The checks of each FROM line's image name and --platform against the global ARGs (`known`: their names). */
export function checkFromLines(lint: Linter, stages: Stage[], globalArgs: EnvList, known: ReadonlySet<string>, defaults: GraphPlatform, escapeToken: string): void {
  for (const st of stages) {
    try {
      checkUndeclaredFromArgs(lint, st, processWithMatches(st.baseName, globalArgs, { escapeToken }).unmatched, known);
    } catch {
      /* a word that does not expand: the conversion reports it */
    }
    if (st.platform === '') continue;
    try {
      const p = processWithMatches(st.platform, globalArgs, { escapeToken });
      checkUndeclaredFromArgs(lint, st, p.unmatched, known);
      checkRedundantTargetPlatform(lint, st, p.matched, p.unmatched, p.result, globalArgs);
      checkConstPlatform(lint, st, p.matched, p.unmatched, p.result, defaults);
    } catch {
      /* as above */
    }
  }
}

/** Variables a FROM line uses that no global ARG declares. */
export function checkUndeclaredFromArgs(lint: Linter, st: Stage, unmatched: Iterable<string>, known: ReadonlySet<string>): void {
  const options = [...known];
  for (const arg of unmatched) {
    if (known.has(arg)) continue;
    lint.run('UndefinedArgInFrom', st, MESSAGES.UndefinedArgInFrom(arg, suggest(arg, options, true)));
  }
}

/** `FROM --platform=$TARGETPLATFORM`: the default anyway. */
export function checkRedundantTargetPlatform(lint: Linter, st: Stage, matched: ReadonlySet<string>, unmatched: ReadonlySet<string>, result: string, env: EnvList): void {
  if (matched.size !== 1 || unmatched.size !== 0 || !matched.has('TARGETPLATFORM')) return;
  if (env.get('TARGETPLATFORM') === result) lint.run('RedundantTargetPlatform', st, MESSAGES.RedundantTargetPlatform(st.platform));
}

/** `FROM --platform=linux/amd64` with a constant, unless the stage name says which platform it is for. */
export function checkConstPlatform(lint: Linter, st: Stage, matched: ReadonlySet<string>, unmatched: ReadonlySet<string>, result: string, defaults: GraphPlatform): void {
  if (matched.size > 0 || unmatched.size > 0) return;
  let p: GraphPlatform;
  try {
    p = parsePlatform(result, defaults);
  } catch {
    return;
  }
  if (st.stageName.includes(p.os) || st.stageName.includes(p.architecture)) return;
  lint.run('FromPlatformFlagConstDisallowed', st, MESSAGES.FromPlatformFlagConstDisallowed(result));
}
