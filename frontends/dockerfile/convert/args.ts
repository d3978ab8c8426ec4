// Build arguments: global (before the first FROM) ARGs, stage ARGs, --build-arg overrides, and the
// `|N K=V` prefix BuildKit puts in front of a RUN's history line.
import { atLine } from '../errors.js';
import type { Command } from '../instructions.js';
import { processWord } from '../shell-lexer.js';
import { EnvList } from './env-list.js';
import { commitToHistory } from './image-config.js';
import type { BuildArg, StageState } from './stage-state.js';

export type ArgCommand = Extract<Command, { name: 'arg' }>;

/** Proxy variables every build may pass without declaring them (not in history, not in the image). */
export const PROXY_ARGS: ReadonlySet<string> = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

/** Applies the global ARGs in order over the automatic platform args (BuildKit buildMetaArgs). */
export function buildMetaArgs(base: EnvList, metaArgs: ArgCommand[], buildArgs: Record<string, string>, escapeToken: string): { env: EnvList; declared: Set<string> } {
  let env = base;
  const declared = new Set<string>();
  for (const cmd of metaArgs) {
    for (const a of cmd.args) {
      declared.add(a.key);
      let value: string | undefined;
      if (Object.hasOwn(buildArgs, a.key)) value = buildArgs[a.key];
      else if (a.value !== undefined) {
        try {
          value = processWord(a.value, env, { escapeToken });
        } catch (e) {
          atLine(e, cmd.line);
        }
      }
      if (value !== undefined) env = env.set(a.key, value);
    }
  }
  return { env, declared };
}

/** ARG inside a stage: value from --build-arg, else its default, else the global ARG of that name. */
export function dispatchArg(d: StageState, c: ArgCommand, globalArgs: EnvList, buildArgs: Record<string, string>, escapeToken: string, epoch: number | undefined): void {
  const commit: string[] = [];
  for (const a of c.args) {
    let value = a.value;
    const hasBuildArg = Object.hasOwn(buildArgs, a.key);
    if (value === undefined && !hasBuildArg && globalArgs.has(a.key)) value = globalArgs.get(a.key);
    if (hasBuildArg) value = buildArgs[a.key];
    else if (a.value !== undefined) {
      try {
        value = processWord(a.value, d.state.env, { escapeToken });
      } catch (e) {
        atLine(e, c.line);
      }
    }
    if (value !== undefined) d.state = { ...d.state, env: d.state.env.set(a.key, value) };
    d.buildArgs.push({ key: a.key, value });
    commit.push(value === undefined ? a.key : `${a.key}=${value}`);
  }
  commitToHistory(d.image, 'ARG ' + commit.join(' '), false, false, epoch);
}

/** `|2 A=1 B=2 /bin/sh -c …`: the build args in effect (values as the RUN sees them), then the command. */
export function runCommandString(args: string[], buildArgs: BuildArg[], env: EnvList): string {
  const keys: string[] = [];
  const values = new Map<string, string>();
  for (const a of buildArgs) {
    if (!values.has(a.key)) keys.push(a.key);
    values.set(a.key, env.get(a.key) ?? a.value ?? '');
  }
  const prefix = keys.length > 0 ? [`|${keys.length}`, ...keys.map((k) => `${k}=${values.get(k)}`)] : [];
  return [...prefix, ...args].join(' ');
}
