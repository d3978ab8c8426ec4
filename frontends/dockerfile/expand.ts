// Which words of which instruction BuildKit expands with ARG/ENV, applied with a caller-given expander
// (the graph conversion owns the variable scopes). Mirrors the instructions' Expand methods plus what
// dockerfile2llb expands itself (FROM image/platform, COPY --from, EXPOSE ports).
import { atLine } from './errors.js';
import type { Command, Instruction, KeyValue, Stage } from './instructions.js';
import { parseMount } from './run-mount.js';

export interface Expander {
  /** one word, quotes removed (shell-lexer processWord with the current env) */
  word(s: string): string;
  /** split into several words (processWords); used for EXPOSE */
  words(s: string): string[];
}

/** Instructions that have expanded words (RUN only for its --mount options; CMD/ENTRYPOINT/SHELL/ONBUILD/
 * HEALTHCHECK/MAINTAINER never). */
export const EXPANDING_INSTRUCTIONS: ReadonlySet<string> = new Set([
  'add', 'arg', 'copy', 'env', 'expose', 'from', 'label', 'run', 'stopsignal', 'user', 'volume', 'workdir',
]);

const kv = (e: Expander, list: KeyValue[]): KeyValue[] => list.map((p) => ({ ...p, key: e.word(p.key), value: e.word(p.value) }));

/** A copy of `inst` with its expandable words expanded; errors carry the instruction's line. */
export function expandInstruction<T extends Instruction>(inst: T, e: Expander): T {
  try {
    return expandInner(inst, e) as T;
  } catch (err) {
    atLine(err, inst.line, inst.endLine);
  }
}

function expandInner(inst: Instruction, e: Expander): Instruction {
  const w = (s: string): string => e.word(s);
  switch (inst.name) {
    case 'from':
      return { ...inst, baseName: w(inst.baseName), platform: inst.platform === '' ? '' : w(inst.platform) } satisfies Stage;
    case 'env':
      return { ...inst, env: kv(e, inst.env) };
    case 'label':
      return { ...inst, labels: kv(e, inst.labels) };
    case 'add':
      return { ...inst, chown: w(inst.chown), chmod: w(inst.chmod), checksum: w(inst.checksum), sources: inst.sources.map(w), dest: w(inst.dest) };
    case 'copy':
      return { ...inst, from: inst.from === '' ? '' : w(inst.from), chown: w(inst.chown), chmod: w(inst.chmod), sources: inst.sources.map(w), dest: w(inst.dest) };
    case 'workdir':
      return { ...inst, path: w(inst.path) };
    case 'user':
      return { ...inst, user: w(inst.user) };
    case 'volume':
      return { ...inst, volumes: inst.volumes.map(w) };
    case 'stopsignal':
      return { ...inst, signal: w(inst.signal) };
    case 'expose':
      return { ...inst, ports: inst.ports.flatMap((p) => e.words(p)) };
    case 'arg':
      return { ...inst, args: inst.args.map((a) => ({ ...a, key: w(a.key), value: a.value === undefined ? undefined : w(a.value) })) };
    case 'run':
      return { ...inst, mounts: inst.mountSpecs.map((spec) => parseMount(spec, w)) };
    default:
      return inst as Command;
  }
}

/** Heredoc bodies of COPY/ADD with an unquoted delimiter are expanded too (BuildKit ExpandRaw). */
export function expandHeredocSources<T extends Extract<Command, { name: 'add' | 'copy' }>>(inst: T, expandRaw: (s: string) => string): T {
  try {
    return { ...inst, sourceContents: inst.sourceContents.map((c) => (c.expand ? { ...c, data: expandRaw(c.data) } : c)) };
  } catch (err) {
    atLine(err, inst.line, inst.endLine);
  }
}
