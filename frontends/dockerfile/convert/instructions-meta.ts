// The instructions that only change the image config or the stage's state (no filesystem change except
// WORKDIR's mkdir): ENV, LABEL, USER, WORKDIR, CMD, ENTRYPOINT, HEALTHCHECK, EXPOSE, VOLUME, STOPSIGNAL,
// SHELL, MAINTAINER, ONBUILD — each with its history line as BuildKit writes it.
import { DockerfileSyntaxError } from '../errors.js';
import type { Command } from '../instructions.js';
import { goQuoteSlice } from '../go-text.js';
import { processWord } from '../shell-lexer.js';
import type { DispatchContext } from './context.js';
import { parseExposedPort } from './expose.js';
import { parseChown } from './file-owner.js';
import { goDuration, goQuoteRune, goSliceV } from './go-format.js';
import { addEnv, commitToHistory, withShell } from './image-config.js';
import { normalizePath } from './paths.js';
import { progressName, uppercaseCmd } from './progress.js';
import type { StageState } from './stage-state.js';

type Cmd<N extends Command['name']> = Extract<Command, { name: N }>;

const config = (d: StageState): NonNullable<StageState['image']['config']> => (d.image.config ??= {});

export function dispatchEnv(ctx: DispatchContext, d: StageState, c: Cmd<'env'>): void {
  let msg = 'ENV';
  for (const e of c.env) {
    msg += ` ${e.key}=${e.value}`;
    d.state = { ...d.state, env: d.state.env.set(e.key, e.value) };
    config(d).Env = addEnv(config(d).Env ?? [], e.key, e.value);
  }
  commitToHistory(d.image, msg, false, false, ctx.epoch);
}

export function dispatchLabel(ctx: DispatchContext, d: StageState, c: Cmd<'label'>): void {
  let msg = 'LABEL';
  const labels = (config(d).Labels ??= {});
  for (const l of c.labels) {
    labels[l.key] = l.value;
    msg += ` ${l.key}=${l.value}`;
  }
  commitToHistory(d.image, msg, false, false, ctx.epoch);
}

export function dispatchUser(ctx: DispatchContext | undefined, d: StageState, user: string): void {
  d.state = { ...d.state, user };
  config(d).User = user;
  if (ctx) commitToHistory(d.image, `USER ${user}`, false, false, ctx.epoch);
}

/** WORKDIR: resolve against the current dir; with `c` (a real instruction) also mkdir -p it, owned by USER. */
export function dispatchWorkdir(ctx: DispatchContext, d: StageState, path: string, c?: Cmd<'workdir'>): void {
  const wd = normalizePath(config(d).WorkingDir ?? '/', path, false);
  config(d).WorkingDir = wd;
  d.state = { ...d.state, dir: wd };
  if (!c) return;
  let withLayer = false;
  if (wd !== '/') {
    let shown: string;
    try { shown = processWord(c.original, d.state.env, { escapeToken: ctx.escapeToken }); } catch { shown = c.original; }
    const owner = d.image.config?.User ? parseChown(d.image.config.User) : undefined;
    const inputs = d.state.ref ? [d.state.ref] : [];
    const ref = ctx.emitter.add({
      kind: 'file', base: d.state.ref ? 0 : -1,
      actions: [{ type: 'mkdir', path: wd, mode: 0o755, makeParents: true, ...(owner ? { owner } : {}), ...(ctx.epoch !== undefined ? { timestamp: ctx.epoch } : {}) }],
    }, inputs, { platform: d.platform, description: progressName(d, uppercaseCmd(shown)), location: c, stage: d.stage.stageName, ignoreCache: d.ignoreCache });
    d.state = { ...d.state, ref };
    withLayer = true;
  }
  commitToHistory(d.image, `WORKDIR ${wd}`, withLayer, false, ctx.epoch);
}

export function dispatchCmd(ctx: DispatchContext, d: StageState, c: Cmd<'cmd'>): void {
  const args = c.prependShell ? withShell(d.image, c.cmdLine) : [...c.cmdLine];
  // An empty list is no command at all (BuildKit's config omits an empty Cmd/Entrypoint).
  config(d).Cmd = args.length > 0 ? args : null;
  config(d).ArgsEscaped = true;
  d.cmdSet = true;
  commitToHistory(d.image, `CMD ${goQuoteSlice(args)}`, false, false, ctx.epoch);
}

export function dispatchEntrypoint(ctx: DispatchContext, d: StageState, c: Cmd<'entrypoint'>): void {
  const args = c.prependShell ? withShell(d.image, c.cmdLine) : [...c.cmdLine];
  config(d).Entrypoint = args.length > 0 ? args : null;
  // An ENTRYPOINT drops the CMD inherited from the base unless this stage set one.
  if (!d.cmdSet) config(d).Cmd = null;
  commitToHistory(d.image, `ENTRYPOINT ${goQuoteSlice(args)}`, false, false, ctx.epoch);
}

export function dispatchHealthcheck(ctx: DispatchContext, d: StageState, c: Cmd<'healthcheck'>): void {
  const h = c.health;
  config(d).Healthcheck = {
    Test: [...h.test],
    ...(h.interval ? { Interval: h.interval } : {}),
    ...(h.timeout ? { Timeout: h.timeout } : {}),
    ...(h.startPeriod ? { StartPeriod: h.startPeriod } : {}),
    ...(h.startInterval ? { StartInterval: h.startInterval } : {}),
    ...(h.retries ? { Retries: h.retries } : {}),
  };
  // BuildKit v0.25 prints the config pointer with %q: &{["CMD-SHELL" "…"] "30s" "3s" "0s" "0s" '\x04'}
  const q = (ns: number): string => `"${goDuration(ns)}"`;
  const msg = `HEALTHCHECK &{${goQuoteSlice(h.test)} ${q(h.interval)} ${q(h.timeout)} ${q(h.startPeriod)} ${q(h.startInterval)} ${goQuoteRune(h.retries)}}`;
  commitToHistory(d.image, msg, false, false, ctx.epoch);
}

export function dispatchExpose(ctx: DispatchContext, d: StageState, c: Cmd<'expose'>): void {
  const ports = c.ports.flatMap((p) => parseExposedPort(p));
  const exposed = (config(d).ExposedPorts ??= {});
  for (const p of ports) exposed[p] = {};
  commitToHistory(d.image, `EXPOSE ${goSliceV(ports)}`, false, false, ctx.epoch);
}

export function dispatchVolume(ctx: DispatchContext, d: StageState, c: Cmd<'volume'>): void {
  const vols = (config(d).Volumes ??= {});
  for (const v of c.volumes) {
    if (v === '') throw new DockerfileSyntaxError('VOLUME specified can not be an empty string');
    vols[v] = {};
  }
  commitToHistory(d.image, `VOLUME ${goSliceV(c.volumes)}`, false, false, ctx.epoch);
}

const SIGNALS = new Set(['ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ', 'RTMIN', 'RTMAX']);

/** moby/sys/signal ParseSignal: a number 1-64, a name with or without SIG, or RTMIN+n / RTMAX-n. */
function checkSignal(s: string): void {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n === 0 || n > 64) throw new DockerfileSyntaxError(`invalid signal: ${s}`);
    return;
  }
  const name = s.toUpperCase().replace(/^SIG/, '');
  const rt = /^RTM(IN|AX)([+-]\d+)?$/.exec(name);
  if (SIGNALS.has(name) || (rt && Math.abs(Number(rt[2] ?? 0)) <= 15)) return;
  throw new DockerfileSyntaxError(`invalid signal: ${s}`);
}

export function dispatchStopSignal(ctx: DispatchContext, d: StageState, c: Cmd<'stopsignal'>): void {
  checkSignal(c.signal);
  config(d).StopSignal = c.signal;
  commitToHistory(d.image, `STOPSIGNAL ${c.signal}`, false, false, ctx.epoch);
}

export function dispatchShell(ctx: DispatchContext, d: StageState, c: Cmd<'shell'>): void {
  config(d).Shell = [...c.shell];
  commitToHistory(d.image, `SHELL ${goSliceV(c.shell)}`, false, false, ctx.epoch);
}

export function dispatchMaintainer(ctx: DispatchContext, d: StageState, c: Cmd<'maintainer'>): void {
  d.image.author = c.maintainer;
  commitToHistory(d.image, `MAINTAINER ${c.maintainer}`, false, false, ctx.epoch);
}

export function dispatchOnbuild(d: StageState, c: Cmd<'onbuild'>): void {
  config(d).OnBuild = [...(config(d).OnBuild ?? []), c.expression];
}
