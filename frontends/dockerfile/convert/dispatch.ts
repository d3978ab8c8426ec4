// Runs one instruction of a stage: expands its words with the stage's ARG/ENV, then hands it to the
// handler that owns it. Errors leave with the instruction's Dockerfile line.
import { InputSyntaxError } from '../../../base/errors.js';
import { DockerfileParseError, DockerfileSyntaxError } from '../errors.js';
import { expandHeredocSources, expandInstruction, type Expander } from '../expand.js';
import { checkCommand, checkSecretName, checkUndefinedVars } from '../lint/command-checks.js';
import type { Command } from '../instructions.js';
import { processWithMatches, processWords } from '../shell-lexer.js';
import { dispatchArg } from './args.js';
import type { DispatchContext } from './context.js';
import { dispatchCopy } from './copy.js';
import {
  dispatchCmd, dispatchEntrypoint, dispatchEnv, dispatchExpose, dispatchHealthcheck, dispatchLabel, dispatchMaintainer,
  dispatchOnbuild, dispatchShell, dispatchStopSignal, dispatchUser, dispatchVolume, dispatchWorkdir,
} from './instructions-meta.js';
import { dispatchRun } from './run.js';
import type { StageCommand, StageState } from './stage-state.js';

/**
 * Expands with the stage's env; every variable a word uses that is not set is checked (UndefinedVar).
 * EXPOSE's split words and COPY --from are expanded without that check, as in BuildKit.
 */
function expanderFor(ctx: DispatchContext, d: StageState, c: Command): Expander & { raw(s: string): string } {
  const skip = c.name === 'copy' && c.from !== '' ? c.from : undefined;
  const checked = (s: string, raw: boolean): string => {
    const r = processWithMatches(s, d.state.env, raw ? { escapeToken: '\\', skipProcessQuotes: true } : { escapeToken: ctx.escapeToken });
    if (s !== skip && r.unmatched.size > 0) checkUndefinedVars(ctx.lint, c, r.unmatched, d.buildArgs.map((a) => a.key), d.state.env);
    return r.result;
  };
  return {
    word: (s) => checked(s, false),
    words: (s) => processWords(s, d.state.env, { escapeToken: ctx.escapeToken }),
    raw: (s) => checked(s, true),
  };
}

export function dispatchCommand(ctx: DispatchContext, d: StageState, entry: StageCommand): void {
  const line = entry.command.line;
  try {
    d.cmdIsOnBuild = entry.isOnBuild;
    if (entry.command.name === 'arg') {
      for (const a of entry.command.args) checkSecretName(ctx.lint, 'ARG', a.key, entry.command);
      dispatchArg(d, entry.command, ctx.globalArgs, ctx.buildArgs, ctx.escapeToken, ctx.epoch);
      return;
    }
    const expander = expanderFor(ctx, d, entry.command);
    let c = expandInstruction(entry.command, expander);
    if (c.name === 'copy' || c.name === 'add') c = expandHeredocSources(c, expander.raw);
    checkCommand(ctx.lint, d.lintState, c, d.image.config?.Shell);
    switch (c.name) {
      case 'env': return dispatchEnv(ctx, d, c);
      case 'label': return dispatchLabel(ctx, d, c);
      case 'maintainer': return dispatchMaintainer(ctx, d, c);
      case 'user': return dispatchUser(ctx, d, c.user);
      case 'workdir': return dispatchWorkdir(ctx, d, c.path, c);
      case 'cmd': return dispatchCmd(ctx, d, c);
      case 'entrypoint': return dispatchEntrypoint(ctx, d, c);
      case 'healthcheck': return dispatchHealthcheck(ctx, d, c);
      case 'expose': return dispatchExpose(ctx, d, c);
      case 'volume': return dispatchVolume(ctx, d, c);
      case 'stopsignal': return dispatchStopSignal(ctx, d, c);
      case 'shell': return dispatchShell(ctx, d, c);
      case 'onbuild': return dispatchOnbuild(d, c);
      case 'run': return dispatchRun(ctx, d, c, entry.sources);
      case 'add': return dispatchCopy(ctx, d, c, undefined);
      case 'copy': {
        const src = c.from !== '' ? entry.sources[0] : undefined;
        if (src && !src.dispatched) {
          throw new DockerfileSyntaxError(`cannot copy from stage ${JSON.stringify(c.from)}, it needs to be defined before current stage ${JSON.stringify(d.stageName)}`);
        }
        return dispatchCopy(ctx, d, c, src);
      }
    }
  } catch (e) {
    const end = entry.command.endLine;
    if (e instanceof DockerfileParseError) {
      if (e.line === line || e.line === 0) throw new DockerfileParseError(e.detail, line, ctx.fileName, end);
      throw e;
    }
    if (e instanceof InputSyntaxError) throw new DockerfileParseError(e.message, line, ctx.fileName, end);
    throw e;
  }
}
