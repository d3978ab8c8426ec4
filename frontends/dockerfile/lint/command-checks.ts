// Checks BuildKit makes while it dispatches an instruction of a stage it builds: JSON form for CMD and
// ENTRYPOINT, legacy `ENV k v`, relative WORKDIR, repeated CMD/ENTRYPOINT/HEALTHCHECK, secret-looking
// ARG/ENV names, EXPOSE port format, and variables used but never defined.
import type { IgnoreMatcher } from '../../../base/patterns/dockerignore.js';
import type { Command } from '../instructions.js';
import type { EnvGetter } from '../shell-lexer.js';
import { suggest } from '../suggest.js';
import type { Linter, LintRange } from './linter.js';
import { MESSAGES } from './rules.js';

/** What a stage remembers between its instructions for the checks. */
export interface StageLintState {
  workdirSet: boolean;
  used: Map<'cmd' | 'entrypoint' | 'healthcheck', LintRange>;
}

export const newStageLintState = (): StageLintState => ({ workdirSet: false, used: new Map() });

const SECRET = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const SECRET_ALLOWED = /(?:_|^)(?:public)(?:_|$)/i; // v0.25's list; later BuildKit adds file and version

/** Build args BuildKit never puts in the environment, so using them is not "undefined". */
const NON_ENV_ARGS = new Set(['BUILDKIT_SBOM_SCAN_CONTEXT', 'BUILDKIT_SBOM_SCAN_STAGE']);

export function checkSecretName(lint: Linter, instruction: 'ARG' | 'ENV', key: string, where: LintRange): void {
  if (SECRET.test(key) && !SECRET_ALLOWED.test(key)) lint.run('SecretsUsedInArgOrEnv', where, MESSAGES.SecretsUsedInArgOrEnv(instruction, key));
}

/** Before the instruction changes the stage; `c` has its words expanded; `shell` is the SHELL in effect. */
export function checkCommand(lint: Linter, s: StageLintState, c: Command, shell: readonly string[] | undefined): void {
  switch (c.name) {
    case 'env':
      for (const e of c.env) {
        if (e.noDelim) {
          lint.run('LegacyKeyValueFormat', c, MESSAGES.LegacyKeyValueFormat(c.keyword));
        }
        checkSecretName(lint, 'ENV', e.key, c);
      }
      return;
    case 'label':
      for (const l of c.labels) if (l.noDelim) lint.run('LegacyKeyValueFormat', c, MESSAGES.LegacyKeyValueFormat(c.keyword));
      return;
    case 'cmd':
    case 'entrypoint':
      usedOnce(lint, s, c.name, c);
      if (c.prependShell && (shell ?? []).length === 0) lint.run('JSONArgsRecommended', c, MESSAGES.JSONArgsRecommended(c.keyword));
      return;
    case 'healthcheck':
      usedOnce(lint, s, 'healthcheck', c);
      return;
    case 'workdir':
      if (!s.workdirSet && !c.path.startsWith('/')) lint.run('WorkdirRelativePath', c, MESSAGES.WorkdirRelativePath(c.path));
      s.workdirSet = true;
      return;
    case 'expose':
      for (const p of c.ports) checkPort(lint, p, c);
      return;
    default:
      return;
  }
}

/** A second CMD/ENTRYPOINT/HEALTHCHECK: the earlier one is the one that is ignored, so it is reported. */
function usedOnce(lint: Linter, s: StageLintState, kind: 'cmd' | 'entrypoint' | 'healthcheck', c: Command): void {
  const prev = s.used.get(kind);
  if (prev) lint.run('MultipleInstructionsDisallowed', prev, MESSAGES.MultipleInstructionsDisallowed(c.keyword));
  s.used.set(kind, c);
}

/** `[ip:][hostPort:]port[/proto]`: the protocol should be lower case, and only the container port belongs here. */
function checkPort(lint: Linter, raw: string, where: LintRange): void {
  const parts = raw.split(':');
  const n = parts.length;
  const containerPort = parts[n - 1]!;
  const hostPart = n > 1;
  const protoParts = containerPort.split('/');
  if (containerPort === '' || protoParts[0] === '') return; // an invalid port: the build reports it
  const proto = protoParts.length === 1 || protoParts[1] === '' ? 'tcp' : protoParts[1]!;
  if (proto !== proto.toLowerCase()) lint.run('ExposeProtoCasing', where, MESSAGES.ExposeProtoCasing(raw));
  if (hostPart && (n > 3 || parts.slice(0, n - 1).some((p) => p !== ''))) lint.run('ExposeInvalidFormat', where, MESSAGES.ExposeInvalidFormat(raw));
}

/** Variables an instruction's words used that neither the environment nor a declared ARG of the stage defines. */
export function checkUndefinedVars(lint: Linter, where: LintRange, unmatched: Iterable<string>, declaredArgs: Iterable<string>, env: EnvGetter): void {
  const declared = new Set(declaredArgs);
  const options = env.keys();
  for (const name of unmatched) {
    if (declared.has(name) || NON_ENV_ARGS.has(name)) continue;
    lint.run('UndefinedVar', where, MESSAGES.UndefinedVar(name, suggest(name, options, true)));
  }
}

/** A COPY/ADD source from the context that .dockerignore leaves out (experimental in v0.25). */
export function checkCopyIgnored(lint: Linter, ignore: IgnoreMatcher | undefined, isAdd: boolean, src: string, where: LintRange): void {
  if (ignore && ignore.matches(src)) lint.run('CopyIgnoredFile', where, MESSAGES.CopyIgnoredFile(isAdd ? 'Add' : 'Copy', src));
}
