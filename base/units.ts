// Human units as docker prints and parses them.
import { FlagError } from './errors.js';

/** Parses docker's memory sizes: 512, 512b, 64k, 100m, 1g (binary multiples). */
export function parseMemorySize(flag: string, s: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new FlagError(`invalid value "${s}" for flag ${flag}: expected a size like 512m or 1g`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}

/** 1.2MB, as `docker images` shows sizes (decimal units). */
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
