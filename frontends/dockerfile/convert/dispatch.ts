// Runs one instruction of a stage: expands its words with the stage's ARG/ENV, then hands it to the
// handler that owns it. Errors leave with the instruction's Dockerfile line.
import { DockerfileParseError, DockerfileSyntaxError } from '../errors.js';
import { expandHeredocSources, expandInstruction, type Expander } from '../expand.js';
import { processWord, processWords } from '../shell-lexer.js';
import { dispatchArg } from './args.js';
import type { DispatchContext } from './context.js';
import { dispatchCopy } from './copy.js';
import {
  dispatchCmd, dispatchEntrypoint, dispatchEnv, dispatchExpose, dispatchHealthcheck, dispatchLabel, dispatchMaintainer,
  dispatchOnbuild, dispatchShell, dispatchStopSignal, dispatchUser, dispatchVolume, dispatchWorkdir,
} from './instructions-meta.js';
import { dispatchRun } from './run.js';
import type { StageCommand, StageState } from './stage-state.js';

function expanderFor(ctx: DispatchContext, d: StageState): Expander {
  return {
    word: (s) => processWord(s, d.state.env, { escapeToken: ctx.escapeToken }),
    words: (s) => processWords(s, d.state.env, { escapeToken: ctx.escapeToken }),
  };
}

export function dispatchCommand(ctx: DispatchContext, d: StageState, entry: StageCommand): void {
  const line = entry.command.line;
  try {
    d.cmdIsOnBuild = entry.isOnBuild;
    if (entry.command.name === 'arg') {
      dispatchArg(d, entry.command, ctx.globalArgs, ctx.buildArgs, ctx.escapeToken, ctx.epoch);
      return;
    }
    let c = expandInstruction(entry.command, expanderFor(ctx, d));
    if (c.name === 'copy' || c.name === 'add') {
      c = expandHeredocSources(c, (s) => processWord(s, d.state.env, { escapeToken: '\\', skipProcessQuotes: true }));
    }
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
    if (e instanceof DockerfileParseError) {
      if (e.line === line || e.line === 0) throw new DockerfileParseError(e.detail, line, ctx.fileName);
      throw e;
    }
    if (e instanceof DockerfileSyntaxError) throw new DockerfileParseError(e.message, line, ctx.fileName);
    throw e;
  }
}
