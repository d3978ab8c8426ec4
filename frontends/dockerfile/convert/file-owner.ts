// `--chown=user:group` and `--chmod=0755|go-w` values as the graph's file actions carry them.
import type { ChownOpt } from '../../../solver/graph/ops.js';
import { DockerfileSyntaxError } from '../errors.js';
import { parseSymbolicMode, SymbolicModeError } from '../../../solver/ops/file-op/symbolic-mode.js';

function idOrName(s: string): { id?: number; name?: string } {
  return /^\d+$/.test(s) ? { id: Number(s) } : { name: s };
}

/** `user[:group]`; names stay names, resolved later in the destination's /etc/passwd and /etc/group. */
export function parseChown(spec: string): ChownOpt | undefined {
  if (spec === '') return undefined;
  const i = spec.indexOf(':');
  if (i < 0) return { user: idOrName(spec) };
  const user = spec.slice(0, i);
  const group = spec.slice(i + 1);
  const out: ChownOpt = {};
  if (user !== '') out.user = idOrName(user);
  if (group !== '') out.group = idOrName(group);
  return out;
}

/**
 * `--chmod`: an octal mode, or a symbolic one (`go-w`, `u=rw,g=r`, `a+X`) that the copy applies to each
 * file relative to its own mode. BuildKit's messages for a bad numeric value and a bad symbolic one.
 */
export function parseChmod(spec: string): { mode?: number; modeStr?: string } {
  if (spec === '') return {};
  const nonOctal = `invalid chmod parameter: '${spec}'. it should be octal string and between 0 and 07777`;
  if (/^[0-7]+$/.test(spec)) {
    const n = Number.parseInt(spec, 8);
    if (n > 0o7777) throw new DockerfileSyntaxError(nonOctal);
    return { mode: n };
  }
  if (/^[0-9]/.test(spec)) throw new DockerfileSyntaxError(nonOctal);
  try {
    parseSymbolicMode(spec);
  } catch (e) {
    if (e instanceof SymbolicModeError) throw new DockerfileSyntaxError(`invalid chmod parameter: '${spec}': invalid syntax`);
    throw e;
  }
  return { modeStr: spec };
}
