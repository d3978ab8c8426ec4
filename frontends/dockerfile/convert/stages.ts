// Stage bookkeeping before any instruction runs: FROM expansion, which stage/image each COPY --from and
// RUN --mount reads, cycle detection, and ONBUILD triggers of the bases (BuildKit buildDispatchStates,
// buildStageDependencyGraph, resolveStages).
import { InputSyntaxError } from '../../../base/errors.js';
import { DockerfileParseError, DockerfileSyntaxError } from '../errors.js';
import { parseInstruction, type Command, type Stage } from '../instructions.js';
import { parseDockerfile } from '../parser.js';
import { processWithMatches, processWord } from '../shell-lexer.js';
import type { EnvList } from './env-list.js';
import { parsePlatform } from './platform.js';
import { suggest } from '../suggest.js';
import { findNamedContext, resolveReachable, type ResolveContext } from './resolve-base.js';
import { StageSet, StageState, type StageCommand } from './stage-state.js';
import type { ConvertOptions } from './types.js';

const located = (err: unknown, line: number, file: string, endLine = line): never => {
  if (err instanceof DockerfileParseError) throw err;
  if (err instanceof InputSyntaxError) throw new DockerfileParseError(err.message, line, file, endLine);
  throw err;
};

/** BuildKit's wrapSuggestAny: ` (did you mean X?)` for the first unset variable that is close to a set one. */
function suggestAny(message: string, unmatched: Iterable<string>, options: string[]): string {
  for (const k of unmatched) {
    const m = suggest(k, options, true);
    if (m) return `${message} (did you mean ${m}?)`;
  }
  return message;
}

/** One StageState per FROM, with the base name and --platform expanded from the global ARGs. */
export function buildStageStates(stages: Stage[], globalArgs: EnvList, opts: ConvertOptions, escapeToken: string, file: string): StageSet {
  const set = new StageSet();
  stages.forEach((st, i) => {
    let baseName: string;
    try {
      baseName = processWithMatches(st.baseName, globalArgs, { escapeToken }).result;
    } catch (e) {
      return located(e, st.line, file, st.endLine);
    }
    if (baseName === '') throw new DockerfileParseError(`base name (${st.baseName}) should not be blank`, st.line, file, st.endLine);
    const d = new StageState({ ...st, baseName }, i);
    if (st.platform !== '') {
      let spec: string;
      let unmatched: Set<string>;
      try {
        ({ result: spec, unmatched } = processWithMatches(st.platform, globalArgs, { escapeToken }));
      } catch (e) {
        return located(new DockerfileSyntaxError(`failed to process arguments for platform ${st.platform}: ${(e as Error).message}`), st.line, file, st.endLine);
      }
      if (spec === '') throw new DockerfileParseError(suggestAny(`empty platform value from expression ${st.platform}`, unmatched, globalArgs.keys()), st.line, file, st.endLine);
      try {
        d.platform = parsePlatform(spec, opts.targetPlatform);
      } catch (e) {
        return located(new DockerfileSyntaxError(suggestAny(`failed to parse platform ${st.platform}: ${(e as Error).message}`, unmatched, globalArgs.keys())), st.line, file, st.endLine);
      }
    }
    if (st.stageName !== '') {
      const nc = findNamedContext(opts.namedContexts, st.stageName);
      if (nc) {
        // A --build-context named like the stage replaces the stage.
        d.namedContext = nc;
        set.add(d);
        d.base = undefined;
        return;
      }
    }
    if (st.stageName === '') d.stageName = `stage-${i}`;
    set.add(d);
    let total = baseName !== 'scratch' && !d.base ? 1 : 0;
    for (const c of st.commands) if (['add', 'copy', 'run', 'workdir'].includes(c.name)) total++;
    d.cmdTotal = total;
    d.ignoreCache = !!opts.noCacheFilter?.some((n) => n.toLowerCase() === st.stageName);
  });
  return set;
}

function unregisteredState(baseName: string, c: Command | undefined): StageState {
  const stage: Stage = {
    name: 'from', baseName, stageName: '', platform: '', commands: [], comments: [], docComment: '',
    line: c?.line ?? 0, endLine: c?.endLine ?? 0, original: `FROM ${baseName}`, keyword: 'FROM', node: c?.node as Stage['node'],
  };
  const s = new StageState(stage, -1, true);
  s.stageName = '';
  return s;
}

/** Which stages/images a command reads (BuildKit toCommand + detectRunMount). */
export function commandSources(c: Command, set: StageSet): (StageState | undefined)[] {
  if (c.name === 'copy' && c.from !== '') {
    if (processWord(c.from, []) !== c.from) {
      throw new DockerfileSyntaxError('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround');
    }
    if (/^[+-]?\d+$/.test(c.from)) {
      const n = Number(c.from);
      const s = set.byIndex(n);
      if (!s) throw new DockerfileSyntaxError(`invalid stage index ${n}`);
      return [s];
    }
    return [set.byStageName(c.from) ?? unregisteredState(c.from, c)];
  }
  if (c.name === 'run') {
    return c.mounts.map((m) => {
      const from = m.from === '' ? 'scratch' : m.from;
      return set.byStageName(from) ?? unregisteredState(from, c);
    });
  }
  return [];
}

function attachSources(d: StageState, entry: StageCommand, set: StageSet): void {
  for (const src of entry.sources) {
    if (!src) continue;
    d.deps.set(src, entry.command);
    if (src.unregistered && !set.states.includes(src)) set.add(src);
  }
}

/** Builds each stage's command list and dependency edges, then rejects cycles. */
export function linkStages(set: StageSet, file: string): void {
  for (const d of [...set.states]) {
    if (d.unregistered) continue;
    d.commands = d.stage.commands.map((command) => {
      let sources: (StageState | undefined)[];
      try {
        sources = commandSources(command, set);
      } catch (e) {
        return located(e, command.line, file);
      }
      const entry: StageCommand = { command, sources, isOnBuild: false };
      attachSources(d, entry, set);
      return entry;
    });
  }
  checkCycles(set, file);
  if (set.states.filter((s) => !s.unregistered).length === 1) set.states[0]!.stageName = '';
}

function checkCycles(set: StageSet, file: string): void {
  const visited = new Set<StageState>();
  const onPath = new Set<StageState>();
  const visit = (s: StageState, via: Command[]): Command[] | undefined => {
    if (visited.has(s)) return undefined;
    visited.add(s);
    onPath.add(s);
    for (const [dep, c] of s.deps) {
      const next = [...via, c];
      if (onPath.has(dep)) return next;
      const found = visit(dep, next);
      if (found) return found;
    }
    onPath.delete(s);
    return undefined;
  };
  for (const s of set.states) {
    const cmds = visit(s, []);
    if (cmds) throw new DockerfileParseError(`circular dependency detected on stage: ${s.stageName}`, cmds[0]!.line, file);
  }
}

/** Parses ONBUILD trigger expressions into commands placed at the start of the stage. */
function initOnBuildTriggers(d: StageState, triggers: string[], set: StageSet, file: string): boolean {
  let newDeps = false;
  const entries: StageCommand[] = [];
  for (const trigger of triggers) {
    let command: Command;
    try {
      const ast = parseDockerfile(trigger);
      if (ast.children.length !== 1) throw new DockerfileSyntaxError('onbuild trigger should be a single expression');
      const node = ast.children[0]!;
      node.startLine = d.stage.line;
      node.endLine = d.stage.endLine;
      const inst = parseInstruction(node);
      if (inst.name === 'from') throw new DockerfileSyntaxError("FROM isn't allowed as an ONBUILD trigger");
      command = inst;
    } catch (e) {
      const msg = e instanceof DockerfileParseError ? e.detail : (e as Error).message;
      if (e instanceof DockerfileParseError || e instanceof InputSyntaxError) throw new DockerfileParseError(`ONBUILD trigger ${JSON.stringify(trigger)}: ${msg}`, d.stage.line, file);
      throw e;
    }
    let sources: (StageState | undefined)[];
    try {
      sources = commandSources(command, set);
    } catch (e) {
      return located(e, d.stage.line, file);
    }
    const entry: StageCommand = { command, sources, isOnBuild: true };
    if (sources.length > 0) newDeps = true;
    attachSources(d, entry, set);
    entries.push(entry);
  }
  d.commands = [...entries, ...d.commands];
  d.cmdTotal += entries.length;
  return newDeps;
}

/** Resolves the bases of every needed stage, repeating while ONBUILD triggers add dependencies. */
export async function resolveStages(ctx: ResolveContext, target: StageState): Promise<Set<StageState>> {
  for (;;) {
    const reachable = await resolveReachable(ctx, target);
    let newDeps = false;
    for (const d of ctx.stages.states) {
      if (!reachable.has(d)) continue;
      d.init();
      const triggers = [...(d.image.config?.OnBuild ?? [])];
      if (d.base && !d.onBuildInit) {
        for (const c of d.base.commands) if (c.command.name === 'onbuild') triggers.push(c.command.expression);
        d.onBuildInit = true;
      }
      if (triggers.length > 0) {
        if (initOnBuildTriggers(d, triggers, ctx.stages, ctx.fileName)) newDeps = true;
        if (d.image.config) d.image.config.OnBuild = null;
      }
    }
    if (!newDeps) return reachable;
  }
}
