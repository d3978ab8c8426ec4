// Durations in flags: 90s, 30m, 48h, 7d, or plain seconds.
import { FlagError } from '../flags.js';

export function parseDuration(text: string, flag: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new FlagError(`invalid value "${text}" for flag ${flag}: expected a duration like 30s, 10m, 48h or 7d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}
