// "(did you mean X?)" hints, as BuildKit's util/suggest: the closest option at edit distance < 3.

function levenshtein(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  let prev = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[y.length]!;
}

function matchCase(val: string, orig: string): string {
  if (orig === orig.toLowerCase()) return val.toLowerCase();
  if (orig === orig.toUpperCase()) return val.toUpperCase();
  return val;
}

/** The option closest to `val`, or undefined if none is close or `val` is itself an option. */
export function suggest(val: string, options: readonly string[], caseSensitive: boolean): string | undefined {
  const v = caseSensitive ? val : val.toLowerCase();
  let match: string | undefined;
  let min = 3;
  for (const o of options) {
    const opt = caseSensitive ? o : o.toLowerCase();
    if (v === opt) return undefined;
    const d = levenshtein(v, opt);
    if (d < min) {
      match = caseSensitive ? opt : matchCase(opt, val);
      min = d;
    }
  }
  return match;
}

export function withSuggestion(message: string, val: string, options: readonly string[], caseSensitive: boolean): string {
  const m = suggest(val, options, caseSensitive);
  return m === undefined ? message : `${message} (did you mean ${m}?)`;
}
