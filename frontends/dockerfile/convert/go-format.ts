// Go formatting that BuildKit's history lines depend on (time.Duration.String, %v of a string slice).

/** time.Duration.String for a whole number of nanoseconds: "1h2m3.5s", "100ms", "0s". */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  let out: string;
  if (u < 1e9) {
    // Below one second Go picks the largest of ns, µs, ms that keeps an integer part.
    const [unit, div] = u < 1e3 ? ['ns', 1] : u < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    out = fraction(u, div) + unit;
  } else {
    const h = Math.floor(u / 3600e9);
    u -= h * 3600e9;
    const m = Math.floor(u / 60e9);
    u -= m * 60e9;
    out = fraction(u, 1e9) + 's';
    if (h > 0) out = `${h}h${m}m` + out;
    else if (m > 0) out = `${m}m` + out;
  }
  return neg ? '-' + out : out;
}

function fraction(v: number, div: number): string {
  const whole = Math.floor(v / div);
  const rest = v - whole * div;
  if (rest === 0) return String(whole);
  const digits = String(div).length - 1;
  return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
}

/** fmt %v of a []string: `[a b c]`. */
export function goSliceV(items: readonly string[] | undefined | null): string {
  return `[${(items ?? []).join(' ')}]`;
}

/** fmt %q of an integer: a quoted character literal, as strconv.QuoteRune ('\x04', 'A', '\''). */
export function goQuoteRune(n: number): string {
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (named[n]) return `'${named[n]}'`;
  if (n < 0x20 || n === 0x7f) return `'\\x${n.toString(16).padStart(2, '0')}'`;
  if (n < 0x7f) return `'${String.fromCodePoint(n)}'`;
  if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return "'\\ufffd'"; // not a rune: Go prints the replacement character escaped
  const ch = String.fromCodePoint(n);
  if (/\p{L}|\p{N}|\p{P}|\p{S}/u.test(ch)) return `'${ch}'`;
  return n <= 0xffff ? `'\\u${n.toString(16).padStart(4, '0')}'` : `'\\U${n.toString(16).padStart(8, '0')}'`;
}
