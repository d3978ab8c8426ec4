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
