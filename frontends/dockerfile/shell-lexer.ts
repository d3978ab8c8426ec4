// BuildKit's shell lexer (frontend/dockerfile/shell): quotes, escapes and $var / ${var...} expansion
// for one word (processWord) or a list of words split on unquoted whitespace (processWords).
import { InputSyntaxError } from '../../base/errors.js';
import { DockerfileSyntaxError } from './errors.js';
import { isGoDigit, isGoLetter, isGoSpace } from './go-text.js';
import { replacePattern, trimPrefixPattern, trimSuffixPattern } from './shell-pattern.js';

/** Variables visible to the lexer. */
export interface EnvGetter {
  get(name: string): string | undefined;
  keys(): string[];
}

/** Anything callers commonly hold an environment in; later entries win (like ENV lines). */
export type EnvInput = EnvGetter | ReadonlyMap<string, string> | Readonly<Record<string, string>> | Iterable<readonly [string, string]> | readonly string[];

export function toEnvGetter(env: EnvInput | undefined): EnvGetter {
  if (env === undefined) return { get: () => undefined, keys: () => [] };
  if (typeof (env as EnvGetter).get === 'function' && typeof (env as EnvGetter).keys === 'function' && !(env instanceof Map)) {
    return env as EnvGetter;
  }
  const map = new Map<string, string>();
  const keys: string[] = [];
  const add = (k: string, v: string): void => { keys.push(k); map.set(k, v); };
  if (env instanceof Map) for (const [k, v] of env) add(k, v);
  else if (Array.isArray(env)) {
    for (const e of env as readonly unknown[]) {
      if (typeof e === 'string') {
        const i = e.indexOf('=');
        if (i < 0) add(e, ''); else add(e.slice(0, i), e.slice(i + 1));
      } else {
        const [k, v] = e as [string, string];
        add(k, v);
      }
    }
  } else if (typeof (env as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of env as Iterable<readonly [string, string]>) add(k, v);
  } else {
    for (const [k, v] of Object.entries(env as Record<string, string>)) add(k, v);
  }
  return { get: (k) => map.get(k), keys: () => keys };
}

export interface LexOptions {
  /** `\` (default) or `` ` ``, from the escape directive. */
  escapeToken?: string;
  /** Keep quote characters in the output. */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters. */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written (`$x`, `${x:-y}`). */
  skipUnsetEnv?: boolean;
}

export interface ProcessResult {
  result: string;
  words: string[];
  matched: Set<string>;
  unmatched: Set<string>;
}

const EOF = '';

// A rune scanner over the input (text/scanner's Next/Peek).
class Scanner {
  private readonly runes: string[];
  private pos = 0;
  constructor(src: string) {
    this.runes = Array.from(src);
  }
  peek(): string {
    return this.pos < this.runes.length ? this.runes[this.pos]! : EOF;
  }
  next(): string {
    return this.pos < this.runes.length ? this.runes[this.pos++]! : EOF;
  }
}

// Accumulates words split on whitespace; the buffer is shared between nested ${...} scans, as upstream.
class WordBuffer {
  buf = '';
}
class Words {
  words: string[] = [];
  inWord = false;
  constructor(private readonly b: WordBuffer) {}
  addChar(ch: string): void {
    if (isGoSpace(ch) && this.inWord) {
      if (this.b.buf.length !== 0) {
        this.words.push(this.b.buf);
        this.b.buf = '';
        this.inWord = false;
      }
    } else if (!isGoSpace(ch)) {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.b.buf += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.b.buf += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.b.buf.length > 0) {
      this.words.push(this.b.buf);
      this.b.buf = '';
      this.inWord = false;
    }
    return this.words;
  }
}

const syntax = (msg: string): DockerfileSyntaxError => new DockerfileSyntaxError(msg);

function isSpecialParam(ch: string): boolean {
  return '@*#?-$!0'.includes(ch) && ch !== '';
}

function isHeredocSpace(ch: string): boolean {
  return ch === '\t' || ch === '\r' || ch === ' ';
}

/**
 * How deep `${a:-${b:-…}}` may nest. BuildKit (Go, growable stacks) has no limit; kiln's recursive lexer
 * would overflow the JS stack somewhere past a few thousand levels, so it stops with a clear error first.
 */
export const MAX_EXPANSION_NESTING = 1000;

class ShellWord {
  private depth = 0;
  private readonly sc: Scanner;
  private readonly wordBuffer = new WordBuffer();
  private rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private readonly escape: string;

  constructor(src: string, private readonly env: EnvGetter, private readonly opts: LexOptions) {
    this.sc = new Scanner(src);
    this.rawEscapes = !!opts.rawEscapes;
    this.escape = opts.escapeToken ?? '\\';
  }

  process(): { result: string; words: string[] } {
    return this.processStopOn(EOF, this.rawEscapes);
  }

  private processStopOn(stopChar: string, rawEscapes: boolean): { result: string; words: string[] } {
    let result = '';
    this.wordBuffer.buf = '';
    const words = new Words(this.wordBuffer);
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    if (++this.depth > MAX_EXPANSION_NESTING) throw new DockerfileSyntaxError(`variable substitutions nested more than ${MAX_EXPANSION_NESTING} levels deep`);
    try {
      while (this.sc.peek() !== EOF) {
        let ch = this.sc.peek();
        if (stopChar !== EOF && ch === stopChar) {
          this.sc.next();
          return { result, words: words.getWords() };
        }
        const special = ch === '$' || ch === '<' || (!this.opts.skipProcessQuotes && (ch === "'" || ch === '"'));
        if (special) {
          let tmp: string;
          if (ch === '$') tmp = this.processDollar();
          else if (ch === '<') tmp = this.processPossibleHeredoc();
          else if (ch === "'") tmp = this.processSingleQuote();
          else tmp = this.processDoubleQuote();
          result += tmp;
          if (ch === '$') words.addString(tmp);
          else words.addRawString(tmp);
        } else {
          ch = this.sc.next();
          if (ch === this.escape) {
            if (this.rawEscapes) {
              words.addRawChar(ch);
              result += ch;
            }
            ch = this.sc.next();
            if (ch === EOF) break;
            words.addRawChar(ch);
          } else {
            words.addChar(ch);
          }
          result += ch;
        }
      }
      if (stopChar !== EOF) throw syntax(`unexpected end of statement while looking for matching ${stopChar}`);
      return { result, words: words.getWords() };
    } finally {
      this.depth--;
      if (rawEscapes !== saved) this.rawEscapes = !rawEscapes;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    let ch = this.sc.next();
    if (this.opts.rawQuotes) result += ch;
    for (;;) {
      ch = this.sc.next();
      if (ch === EOF) throw syntax('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    let ch = this.sc.next();
    if (this.opts.rawQuotes) result += ch;
    for (;;) {
      const peek = this.sc.peek();
      if (peek === EOF) throw syntax('unexpected end of statement while looking for matching double-quote');
      if (peek === '"') {
        ch = this.sc.next();
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      if (peek === '$') {
        result += this.processDollar();
        continue;
      }
      ch = this.sc.next();
      if (ch === this.escape) {
        if (this.rawEscapes) result += ch;
        const p = this.sc.peek();
        if (p === EOF) continue; // a trailing escape is dropped
        if (p === '"' || p === '$' || p === this.escape) ch = this.sc.next();
      }
      result += ch;
    }
  }

  private processDollar(): string {
    this.sc.next();
    if (this.sc.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '$' + name;
      return value ?? '';
    }
    this.sc.next();
    const first = this.sc.peek();
    if (first === EOF) throw syntax("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw syntax('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.sc.next();
    let chs = ch;
    let nullIsUnset = false;

    if (ch === '}') {
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return `\${${name}}`;
      return value ?? '';
    }
    if (ch === ':' || ch === '+' || ch === '-' || ch === '?' || ch === '#' || ch === '%') {
      if (ch === ':') {
        nullIsUnset = true;
        ch = this.sc.next();
        chs += ch;
      }
      const raw = ch === '#' || ch === '%';
      if (nullIsUnset && raw) throw syntax(`unsupported modifier (${chs}) in substitution`);
      let word: string;
      try {
        word = this.processStopOn('}', raw).result;
      } catch (err) {
        if (this.sc.peek() === EOF) throw syntax("syntax error: missing '}'");
        throw err;
      }
      const value = this.getEnv(name);
      const set = value !== undefined;
      if (this.opts.skipUnsetEnv && !set) return `\${${name}${chs}${word}}`;
      const v = value ?? '';
      switch (ch) {
        case '-':
          return !set || (nullIsUnset && v === '') ? word : v;
        case '+':
          return !set || (nullIsUnset && v === '') ? '' : word;
        case '?':
          if (!set) throw syntax(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (nullIsUnset && v === '') throw syntax(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return v;
        case '%':
        case '#': {
          let greedy = false;
          if (word.length > 0 && word[0] === ch) {
            greedy = true;
            word = word.slice(1);
          }
          return ch === '%' ? trimSuffixPattern(word, v, greedy) : trimPrefixPattern(word, v, greedy);
        }
        default:
          throw syntax(`unsupported modifier (${chs}) in substitution`);
      }
    }
    if (ch === '/') {
      const all = this.sc.peek() === '/';
      if (all) this.sc.next();
      let pattern: string;
      try {
        pattern = this.processStopOn('/', true).result;
      } catch (err) {
        if (this.sc.peek() === EOF) throw syntax("syntax error: missing '/' in ${}");
        throw err;
      }
      let replacement: string;
      try {
        replacement = this.processStopOn('}', true).result;
      } catch (err) {
        if (this.sc.peek() === EOF) throw syntax("syntax error: missing '}'");
        throw err;
      }
      const value = this.getEnv(name);
      if (this.opts.skipUnsetEnv && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
      return replacePattern(value ?? '', pattern, replacement, all);
    }
    throw syntax(`unsupported modifier (${chs === EOF ? '\uFFFD' : chs}) in substitution`);
  }

  private processName(): string {
    let name = '';
    while (this.sc.peek() !== EOF) {
      let ch = this.sc.peek();
      if (name.length === 0 && isGoDigit(ch)) {
        while (this.sc.peek() !== EOF && isGoDigit(this.sc.peek())) {
          ch = this.sc.next();
          name += ch;
        }
        return name;
      }
      if (name.length === 0 && isSpecialParam(ch)) return this.sc.next();
      if (!isGoLetter(ch) && !isGoDigit(ch) && ch !== '_') break;
      name += this.sc.next();
    }
    return name;
  }

  private processPossibleHeredoc(): string {
    this.sc.next();
    if (this.sc.peek() !== '<') return '<';
    this.sc.next();
    let space = '';
    while (isHeredocSpace(this.sc.peek())) space += this.sc.next();
    return '<<' + space;
  }

  private getEnv(name: string): string | undefined {
    const v = this.env.get(name);
    if (v !== undefined) this.matched.add(name);
    else this.unmatched.add(name);
    return v;
  }
}

function run(word: string, env: EnvInput | undefined, opts: LexOptions): ProcessResult {
  const sw = new ShellWord(word, toEnvGetter(env), opts);
  try {
    const { result, words } = sw.process();
    return { result, words, matched: sw.matched, unmatched: sw.unmatched };
  } catch (err) {
    if (err instanceof InputSyntaxError) {
      // a word too long to repeat whole (a 60 kB nested expansion) is shortened, so the error stays one readable line
      const shown = word.length > 120 ? `${JSON.stringify(word.slice(0, 60))}… (${word.length} characters)` : JSON.stringify(word);
      throw new DockerfileSyntaxError(`failed to process ${shown}: ${err.message}`);
    }
    throw err;
  }
}

/** Expands one word: quotes removed, variables substituted, whitespace kept. */
export function processWord(word: string, env?: EnvInput, opts: LexOptions = {}): string {
  return run(word, env, opts).result;
}

/** Expands and splits into words on unquoted whitespace (after substitution). */
export function processWords(word: string, env?: EnvInput, opts: LexOptions = {}): string[] {
  return run(word, env, opts).words;
}

/** processWord plus which variable names were found (matched) or referenced but unset (unmatched). */
export function processWithMatches(word: string, env?: EnvInput, opts: LexOptions = {}): ProcessResult {
  return run(word, env, opts);
}
