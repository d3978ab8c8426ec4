// Human units, one of each: sizes as docker parses (go-units RAMInBytes) and prints them (HumanSize,
// BytesSize), durations as Go parses them (time.ParseDuration, plus days for kiln's flags), short digests
// and "3 minutes ago". Every flag, config value, environment variable and Dockerfile flag uses these.
import { FlagError, InputSyntaxError, UserError } from './errors.js';

const BINARY: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * go-units RAMInBytes: "64m", "1g", "512kb", "1.5GiB", "100" (binary multiples, case-insensitive, an
 * optional b or ib, one optional space). Undefined when the text is not a size.
 */
export function bytesOf(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(text);
  return m ? Math.trunc(Number(m[1]) * BINARY[(m[2] ?? '').toLowerCase()]!) : undefined;
}

/** RAMInBytes with go-units' error, for Dockerfile flags (`RUN --mount=type=tmpfs,size=64m`). */
export function ramInBytes(size: string): number {
  const n = bytesOf(size);
  if (n === undefined) throw new InputSyntaxError(`invalid size: '${size}'`);
  return n;
}

/** A size given to a flag (`--memory 512m`, `--keep-storage 10GB`): binary multiples, as docker's flags. */
export function parseMemorySize(flag: string, s: string): number {
  const n = bytesOf(s.trim());
  if (n === undefined) throw new FlagError(`invalid value "${s}" for flag ${flag}: expected a size like 512m or 1g`);
  return n;
}

/** 1.2MB, as `docker images` shows sizes (decimal units, 3 significant digits: go-units HumanSize). */
export function formatSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toPrecision(3).replace(/\.0+$|(\.[0-9]*?)0+$/, '$1')}${units[i]}`;
}

/** "1.5 GiB", "300 MiB": binary sizes, where a limit or quota was given in binary units. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

const GO_DURATION_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const DAY_NS = 86_400e9;

/** Go's duration grammar over a unit table: nanoseconds, or Go's error message when the text is not one. */
function durationNs(text: string, units: Record<string, number>): number | string {
  const invalid = `time: invalid duration ${JSON.stringify(text)}`;
  let s = text;
  let neg = false;
  if (s[0] === '-' || s[0] === '+') {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return invalid;
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(\.[0-9]*)?/.exec(s)!;
    if (m[0] === '' || m[0] === '.') return invalid;
    s = s.slice(m[0].length);
    const u = /^[^0-9.]+/.exec(s);
    if (!u) return `time: missing unit in duration ${JSON.stringify(text)}`;
    const unit = units[u[0]];
    if (unit === undefined) return `time: unknown unit ${JSON.stringify(u[0])} in duration ${JSON.stringify(text)}`;
    s = s.slice(u[0].length);
    total += Number(m[0].startsWith('.') ? '0' + m[0] : m[0]) * unit;
  }
  if (total > 9223372036854775807) return invalid;
  return neg ? -total : total;
}

/** time.ParseDuration, in nanoseconds ("1h30m", "2.5s", "-1s", "0"), with Go's error messages. */
export function parseGoDuration(s: string): number {
  const ns = durationNs(s, GO_DURATION_NS);
  if (typeof ns === 'string') throw new InputSyntaxError(ns);
  return ns;
}

/**
 * A duration in kiln's flags, filters and environment, in milliseconds: Go's form ("90s", "1h30m",
 * "250ms") plus days ("7d"); with `bareSeconds`, a plain number counts as seconds. Never negative.
 * `what` names the flag or variable in the one-line error.
 */
export function parseDuration(what: string, text: string, opts: { bareSeconds?: boolean } = {}): number {
  const t = text.trim();
  const ns = opts.bareSeconds && /^[0-9]+(?:\.[0-9]+)?$/.test(t) ? Number(t) * 1e9 : durationNs(t, { ...GO_DURATION_NS, d: DAY_NS });
  if (typeof ns === 'string' || ns < 0) throw new UserError(`invalid ${what} "${text}": expected a duration like 90m, 24h or 7d`);
  return Math.round(ns / 1e6);
}

export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

/** "3 minutes ago", as docker does. */
export function timeAgo(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const steps: [number, string][] = [[60, 'second'], [60, 'minute'], [24, 'hour'], [7, 'day'], [4.35, 'week'], [12, 'month'], [Infinity, 'year']];
  let v = s;
  for (const [n, unit] of steps) {
    if (v < n) {
      const r = Math.floor(v);
      if (unit === 'second' && r < 1) return 'Less than a second ago';
      return `${r} ${unit}${r === 1 ? '' : 's'} ago`;
    }
    v /= n;
  }
  return 'a long time ago';
}
