// Go value formats used by instruction flags: time.ParseDuration and docker/go-units RAMInBytes.
import { DockerfileSyntaxError } from './errors.js';

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** time.ParseDuration, in nanoseconds ("1h30m", "2.5s", "-1s", "0"). */
export function parseGoDuration(s: string): number {
  const orig = s;
  const bad = (): never => { throw new DockerfileSyntaxError(`time: invalid duration ${JSON.stringify(orig)}`); };
  let neg = false;
  if (s[0] === '-' || s[0] === '+') {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') bad();
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(\.[0-9]*)?/.exec(s)!;
    if (m[0] === '' || m[0] === '.') bad();
    s = s.slice(m[0].length);
    const u = /^[^0-9.]+/.exec(s);
    if (!u) throw new DockerfileSyntaxError(`time: missing unit in duration ${JSON.stringify(orig)}`);
    const unit = UNIT_NS[u[0]];
    if (unit === undefined) throw new DockerfileSyntaxError(`time: unknown unit ${JSON.stringify(u[0])} in duration ${JSON.stringify(orig)}`);
    s = s.slice(u[0].length);
    total += Number(m[0] === '' ? '0' : m[0].startsWith('.') ? '0' + m[0] : m[0]) * unit;
  }
  if (total > 9223372036854775807) bad();
  return neg ? -total : total;
}

/** go-units RAMInBytes: "64m", "1g", "512kb", "100" (binary multiples, case-insensitive, optional b/ib). */
export function ramInBytes(size: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(size);
  if (!m) throw new DockerfileSyntaxError(`invalid size: '${size}'`);
  const mult: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  const n = Number(m[1]) * (m[2] ? mult[m[2].toLowerCase()]! : 1);
  return Math.trunc(n);
}
