// Small pieces of Go's standard library whose exact behaviour BuildKit's output depends on.

// unicode.IsSpace: ASCII \t\n\v\f\r and space, U+0085, U+00A0, and the Unicode White_Space runes.
const GO_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
export function isGoSpace(ch: string): boolean {
  return GO_SPACE.test(ch);
}

/** unicode.IsLetter */
export function isGoLetter(ch: string): boolean {
  return /^\p{L}$/u.test(ch);
}

/** unicode.IsDigit (decimal digits of any script) */
export function isGoDigit(ch: string): boolean {
  return /^\p{Nd}$/u.test(ch);
}

/** strings.TrimSpace */
export function goTrimSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isGoSpace(s[a]!)) a++;
  while (b > a && isGoSpace(s[b - 1]!)) b--;
  return s.slice(a, b);
}

/** bytes.TrimLeftFunc(s, unicode.IsSpace) */
export function goTrimLeftSpace(s: string): string {
  let a = 0;
  while (a < s.length && isGoSpace(s[a]!)) a++;
  return s.slice(a);
}

// unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** strconv.Quote: a double-quoted Go string literal, printable Unicode kept as is. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (ch) {
      case '"': out += '\\"'; continue;
      case '\\': out += '\\\\'; continue;
      case '\x07': out += '\\a'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
      case '\v': out += '\\v'; continue;
    }
    if (PRINTABLE.test(ch)) out += ch;
    else if (cp < 0x80) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\\ufffd'; // a lone surrogate is invalid UTF-8 to Go
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return out + '"';
}

/** fmt.Sprintf("%q", []string) */
export function goQuoteSlice(items: readonly string[]): string {
  return '[' + items.map(goQuote).join(' ') + ']';
}

/** Regexp.ReplaceAllString semantics: Go never replaces an empty match right after a previous match,
 * and expands $1/${name}/$$ in the replacement template. `re` must have the g flag. */
export function goReplaceAll(re: RegExp, src: string, template: string): string {
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (!m) break;
    const a0 = m.index;
    const a1 = a0 + m[0].length;
    out += src.slice(lastMatchEnd, a0);
    if (a1 > lastMatchEnd || a0 === 0) out += goExpandTemplate(template, m);
    lastMatchEnd = a1;
    const width = searchPos < src.length ? (src.codePointAt(searchPos)! > 0xffff ? 2 : 1) : 1;
    if (searchPos + width > a1) searchPos += width;
    else if (searchPos + 1 > a1) searchPos++;
    else searchPos = a1;
  }
  return out + src.slice(lastMatchEnd);
}

/** Regexp.Expand: $name / ${name} are groups (numbers or names), $$ is a dollar, anything else literal. */
export function goExpandTemplate(template: string, m: RegExpExecArray): string {
  let out = '';
  let i = 0;
  while (i < template.length) {
    const d = template.indexOf('$', i);
    if (d < 0) { out += template.slice(i); break; }
    out += template.slice(i, d);
    i = d + 1;
    if (template[i] === '$') { out += '$'; i++; continue; }
    let name = '';
    let end = i;
    if (template[i] === '{') {
      const close = template.indexOf('}', i + 1);
      const inner = close < 0 ? '' : template.slice(i + 1, close);
      if (close < 0 || !/^[A-Za-z0-9_]+$/.test(inner)) { out += '$'; continue; }
      name = inner;
      end = close + 1;
    } else {
      const mm = /^[A-Za-z0-9_]+/.exec(template.slice(i));
      if (!mm) { out += '$'; continue; }
      name = mm[0];
      end = i + name.length;
    }
    i = end;
    if (/^[0-9]+$/.test(name)) {
      const n = Number(name);
      if (n < m.length && m[n] !== undefined) out += m[n];
    } else if (m.groups && m.groups[name] !== undefined) {
      out += m.groups[name];
    }
  }
  return out;
}
