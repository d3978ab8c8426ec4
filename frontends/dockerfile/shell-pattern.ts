// Shell glob patterns used by ${v#p} ${v%p} ${v/p/r}: `?` is one character, `*` any run, `\` escapes
// `*`, `?` or `\` (and is dropped before `}` or `/`). No bracket expressions, as in BuildKit.
import { DockerfileSyntaxError } from './errors.js';
import { goReplaceAll } from './go-text.js';

export function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '.*' : '.*?';
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i]!;
    switch (tok) {
      case '*': out += star; continue;
      case '?': out += '.'; continue;
      case '\\': {
        const peek = chars[i + 1];
        if (peek === '}' || peek === '/') continue;
        out += '\\';
        i++;
        tok = chars[i] ?? '';
        if (tok !== '*' && tok !== '?' && tok !== '\\') {
          throw new DockerfileSyntaxError(`invalid escape '\\${tok === '' ? '\uFFFD' : tok}'`);
        }
        break;
      }
      case '[': case ']': case '{': case '}': case '.': case '+': case '(': case ')': case '|': case '^': case '$':
        out += '\\';
        break;
    }
    out += tok;
  }
  return new RegExp(out, 'gu');
}

function compile(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  try {
    return shellPatternToRegExp(pattern, greedy, anchored);
  } catch (err) {
    throw new DockerfileSyntaxError(`invalid pattern (${pattern}) in substitution: ${(err as Error).message}`);
  }
}

/** ${value#pattern} (shortest) / ${value##pattern} (greedy) */
export function trimPrefixPattern(pattern: string, value: string, greedy: boolean): string {
  const re = compile(pattern, greedy, true);
  re.lastIndex = 0;
  const m = re.exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

// Reverse a pattern keeping escapes in front of the character they escape (a\*c -> c\*a).
function reversePattern(pattern: string): string {
  const runes = Array.from(pattern);
  const out: string[] = new Array(runes.length);
  const last = runes.length - 1;
  for (let i = 0; i <= last;) {
    const tok = runes[i]!;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = runes[i + 1]!;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join('');
}

const reverseString = (s: string): string => Array.from(s).reverse().join('');

/** ${value%pattern} / ${value%%pattern}: a rightmost match is a leftmost match on the reversed strings. */
export function trimSuffixPattern(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefixPattern(reversePattern(pattern), reverseString(value), greedy));
}

/** ${value/pattern/repl} and ${value//pattern/repl} */
export function replacePattern(value: string, pattern: string, replacement: string, all: boolean): string {
  const re = compile(pattern, true, false);
  if (all) return goReplaceAll(re, value, replacement);
  re.lastIndex = 0;
  const m = re.exec(value);
  if (!m) return value;
  return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
}
