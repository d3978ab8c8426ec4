// Progress names for vertices, like BuildKit's prefixCommand: `[stage 2/5] RUN make`.
import type { StageState } from './stage-state.js';

export function progressName(d: StageState, text: string): string {
  if (d.cmdTotal === 0) return text;
  d.cmdIndex++;
  const width = Math.floor(1 + Math.log10(d.cmdTotal));
  let out = '[';
  if (d.stageName !== '') out += d.stageName + ' ';
  out += `${String(d.cmdIndex).padStart(width)}/${d.cmdTotal}] `;
  if (d.cmdIsOnBuild) out += 'ONBUILD ';
  return out + text;
}

/** Upper-cases the instruction keyword only. */
export function uppercaseCmd(s: string): string {
  const i = s.indexOf(' ');
  return i < 0 ? s.toUpperCase() : s.slice(0, i).toUpperCase() + s.slice(i);
}
